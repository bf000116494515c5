"""Reads from the ledger. Balances come from the rollup row, never from summing entries."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet, Sum

from ledger.errors import AccountNotFoundError, InvalidCursorError
from ledger.models import Account, Balance, Entry, Transaction

REVERSAL_KIND = "reversal"
STATEMENT_MAX_LIMIT = 500


def account_get(*, code: str) -> Account:
    try:
        return Account.objects.get(code=code)
    except Account.DoesNotExist:
        raise AccountNotFoundError(f"No ledger account {code!r}.") from None


def account_balance_get(account: Account | str) -> Balance:
    """The balance row of an account (an Account or its code): balance, totals, entry count, head.

    One primary-key lookup whatever the size of the ledger. It is a plain read: a caller that
    decides something from it and then posts must hold the lock (ledger.locks.balances_lock) or
    rely on transaction_post's own check, which is made under the lock.
    """
    if isinstance(account, Account):
        row = Balance.objects.filter(account_id=account.pk).first()
        if row is None:
            # Only accounts made without account_get_or_create lack a row, and nothing was ever posted
            # to them (posting creates the row first), so zero is their true balance.
            return Balance(account=account, allow_negative=account.allow_negative)
        row.account = account
        return row
    row = Balance.objects.select_related("account").filter(account__code=account).first()
    if row is None:
        return account_balance_get(account_get(code=account))
    return row


@dataclass(frozen=True)
class StatementPage:
    entries: list[Entry]
    next_cursor: str | None  # None on the last page


def _cursor_encode(account_id: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{account_id}:{seq}".encode()).decode().rstrip("=")


def _cursor_decode(cursor: str, account_id: int) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        cursor_account, seq = (int(part) for part in raw.split(":"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError("This cursor is not one the statement gave out.") from None
    if cursor_account != account_id:
        raise InvalidCursorError("This cursor belongs to another account's statement.")
    return seq


def account_statement_list(*, account: Account, cursor: str | None = None, limit: int = 50) -> StatementPage:
    """An account's entries, newest first, each with its transaction loaded; `limit` is capped at 500.

    Pages are cut on the account's entry sequence number, not on an offset: entries posted while a
    client pages through the statement get higher numbers and appear on no later page, so nothing
    is shown twice or skipped. Pass the returned `next_cursor` to get the next (older) page.
    """
    limit = max(1, min(int(limit), STATEMENT_MAX_LIMIT))
    entries = Entry.objects.filter(account_id=account.pk).select_related("transaction", "account")
    if cursor:
        entries = entries.filter(seq__lt=_cursor_decode(cursor, account.pk))
    rows = list(entries.order_by("-seq")[: limit + 1])
    if len(rows) <= limit:
        return StatementPage(entries=rows, next_cursor=None)
    rows = rows[:limit]
    return StatementPage(entries=rows, next_cursor=_cursor_encode(account.pk, rows[-1].seq))


def account_entries_oldest_first(*, account: Account) -> QuerySet[Entry]:
    """Every entry of an account in posting order (its seq), each with its transaction: for exports,
    which read the whole statement in chunks (`.iterator()`) rather than page through it."""
    return Entry.objects.filter(account_id=account.pk).select_related("transaction").order_by("seq")


def transaction_get(*, idempotency_key: str) -> Transaction | None:
    return Transaction.objects.filter(idempotency_key=idempotency_key).first()


def transaction_reversible_amounts(*, original: Transaction) -> dict[int, int]:
    """What is left to reverse of `original`, per account id, in the original's signs.

    The original's net amount on each account plus the (opposite-signed) amounts of every reversal
    posted against it so far. Accounts fully reversed show 0.
    """
    rows = (
        Entry.objects.filter(
            Q(transaction=original) | Q(transaction__reverses=original, transaction__kind=REVERSAL_KIND)
        )
        .values("account_id")
        .annotate(total=Sum("amount"))
    )
    return {row["account_id"]: int(row["total"]) for row in rows}


def transactions_reversible_amounts(*, original_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """transaction_reversible_amounts of many originals in one query: original id -> account id -> left."""
    ids = sorted(set(original_ids))
    if not ids:
        return {}
    sql = f"""
        SELECT e.transaction_id, e.account_id, SUM(e.amount)
          FROM {Entry._meta.db_table} e
         WHERE e.transaction_id = ANY(%s)
         GROUP BY 1, 2
        UNION ALL
        SELECT t.reverses_id, e.account_id, SUM(e.amount)
          FROM {Transaction._meta.db_table} t JOIN {Entry._meta.db_table} e ON e.transaction_id = t.id
         WHERE t.reverses_id = ANY(%s) AND t.kind = %s
         GROUP BY 1, 2
    """  # noqa: S608 - only table names are formatted in
    left: dict[int, dict[int, int]] = {original: {} for original in ids}
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids, ids, REVERSAL_KIND])
        for original, account_id, amount in cursor.fetchall():
            left[original][account_id] = left[original].get(account_id, 0) + int(amount)
    return left
