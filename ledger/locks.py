"""Every row lock the ledger takes, in one place, always in the same order.

Order, for any one database transaction:
  1. the original transaction rows, when posting reversals of them (transactions_lock_for_reversal,
     in id order);
  2. the balance rows of all accounts a posting touches, in ascending account id (balances_lock).

Two postings that touch the same accounts therefore queue on the same first row instead of each
holding what the other waits for, so they cannot deadlock.

A caller that must read balances under lock *before* posting (to compute how much a wallet can
give, say) calls balances_lock itself, inside its own atomic block, with *every* account the posting
will touch, and hands the rows to transactions_post (`locked=`), which then takes no lock of its own
(transaction_post re-locks the same rows, which PostgreSQL grants at once). Locking only some of them
first, then posting, would take the locks out of order and can deadlock.

Locks are a database matter here, never Redis: a Redis lock can expire while its holder still
works, so it may only reduce contention in front of these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from ledger.models import Account, Balance, Transaction


@dataclass(slots=True)
class BalanceHead:
    """A locked balance row with what posting needs of its account: plain values, no model instances
    (a batch locks a thousand of them). It also stands for its account in a Leg (`pk`, `code`, `kind`,
    `unit`): one object per account, whatever the number of its entries."""

    account_id: int
    code: str
    kind: str
    unit: str
    allow_negative: bool
    balance: int
    head_seq: int
    head_hash: str

    @property
    def pk(self) -> int:
        return self.account_id


_LOCK_SQL = f"""
    SELECT b.account_id, a.code, a.kind, a.unit, b.allow_negative, b.balance, b.head_seq, b.head_hash
      FROM {Balance._meta.db_table} b JOIN {Account._meta.db_table} a ON a.id = b.account_id
     WHERE b.account_id = ANY(%s) AND a.id = ANY(%s)
     ORDER BY b.account_id
       FOR UPDATE OF b
"""  # noqa: S608 - only table names are formatted in


def balances_lock(*, account_ids: Iterable[int]) -> dict[int, BalanceHead]:
    """Lock the balance rows of `account_ids` (SELECT ... FOR UPDATE) in ascending id order.

    Returns the locked rows by account id. Accounts without a balance row are missing from the result.
    Must run inside transaction.atomic(): the locks are held until that transaction ends.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    # Plain SQL rather than the ORM: this runs in every posting, and building the ORM query (and a model
    # per row) cost more than running it. PostgreSQL locks rows as the sorted result reaches its LockRows
    # step, so the ORDER BY is the order in which the locks are taken.
    with connection.cursor() as cursor:
        # The ids twice: on both tables, so that PostgreSQL looks both up by primary key (given only one,
        # it hashes the whole account table for a thousand ids).
        cursor.execute(_LOCK_SQL, [ids, ids])
        return {row[0]: BalanceHead(*row) for row in cursor.fetchall()}


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
