"""Every row lock the ledger takes, in one place, always in the same order.

Order, for any one database transaction:
  1. the original transaction rows, when posting reversals of them (transactions_lock_for_reversal,
     in id order);
  2. the balance rows of all accounts a posting touches, in ascending account id (balances_lock).

Two postings that touch the same accounts therefore queue on the same first row instead of each
holding what the other waits for, so they cannot deadlock.

A caller that must read balances under lock *before* posting (to compute how much a wallet can
give, say) calls balances_lock itself, inside its own atomic block, with *every* account the posting
will touch; transaction_post then re-locks the same rows, which PostgreSQL grants at once. Locking
only some of them first, then posting, would take the locks out of order and can deadlock.

Locks are a database matter here, never Redis: a Redis lock can expire while its holder still
works, so it may only reduce contention in front of these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db import connection

from ledger.models import Account, Balance, Transaction

_BALANCE_COLUMNS = [field.column for field in Balance._meta.concrete_fields]
_ACCOUNT_COLUMNS = [field.column for field in Account._meta.concrete_fields]


def balances_lock(*, account_ids: Iterable[int]) -> dict[int, Balance]:
    """Lock the balance rows of `account_ids` (SELECT ... FOR UPDATE) in ascending id order.

    Returns the locked rows by account id, each with its account loaded (not locked: accounts are
    only read). Accounts without a balance row are missing from the result. Must run inside
    transaction.atomic(): the locks are held until that transaction ends.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    # Plain SQL rather than the ORM: this runs in every posting, and building the ORM query cost more
    # than running it. PostgreSQL locks rows as the sorted result reaches its LockRows step, so the
    # ORDER BY is the order in which the locks are taken.
    columns = ", ".join([f"b.{name}" for name in _BALANCE_COLUMNS] + [f"a.{name}" for name in _ACCOUNT_COLUMNS])
    sql = (
        f"SELECT {columns} FROM {Balance._meta.db_table} b "  # noqa: S608 - only table and column names
        f"JOIN {Account._meta.db_table} a ON a.id = b.account_id "
        "WHERE b.account_id = ANY(%s) ORDER BY b.account_id FOR UPDATE OF b"
    )
    rows: dict[int, Balance] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids])
        for row in cursor.fetchall():
            balance = Balance.from_db(connection.alias, _BALANCE_COLUMNS, row[: len(_BALANCE_COLUMNS)])
            account_values = list(row[len(_BALANCE_COLUMNS) :])
            metadata_at = _ACCOUNT_COLUMNS.index("metadata")
            if isinstance(account_values[metadata_at], str):  # jsonb comes back as text for JSONField to decode
                account_values[metadata_at] = json.loads(account_values[metadata_at])
            balance.account = Account.from_db(connection.alias, _ACCOUNT_COLUMNS, account_values)
            rows[balance.account_id] = balance
    return rows


def transaction_lock_for_reversal(*, transaction_id: int) -> Transaction:
    """Lock an original transaction while a reversal of it is computed and posted.

    Reversals of one original are serialized by this lock, so two partial reversals running at once
    cannot both see the same "remaining" and together reverse more than the original. The row is
    never updated (transactions are append-only); the lock only queues the reversers. NO KEY: it must
    not block the foreign-key checks of rows that merely point at the original.
    """
    return Transaction.objects.select_for_update(no_key=True).get(pk=transaction_id)


def transactions_lock_for_reversal(*, transaction_ids: Iterable[int]) -> dict[int, Transaction]:
    """transaction_lock_for_reversal for many originals at once, in id order (no deadlock between two
    batches that reverse some of the same originals)."""
    locked = Transaction.objects.select_for_update(no_key=True).filter(pk__in=sorted(set(transaction_ids)))
    return {txn.pk: txn for txn in locked.order_by("pk")}
