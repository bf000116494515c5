"""CSV exports of the partner portal: a brand's members, and one member's statement.

Both are generators of rows, streamed by the portal (loyalty.admin) so that a brand with a million
members never has them all in memory, and both pass every cell through `csv_cell`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from ledger.selectors import account_entries_oldest_first
from loyalty.models import Membership
from loyalty.selectors import entry_reason
from loyalty.serializers import statement_entry_out

CHUNK_SIZE = 2000

# What a spreadsheet reads as the start of a formula (OWASP's list): a cell of text starting with one of
# these, say a member's name typed as =HYPERLINK(...), would run when staff open the file.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """`value` as safe to put in a CSV cell: text that a spreadsheet would take for a formula gets a
    leading apostrophe; numbers (a negative balance, a debit) stay numbers, None an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return f"'{value}"
    return value


class _Echo:
    """A file whose write returns what it was given: csv.writer then formats one row at a time."""

    def write(self, value: str) -> str:
        return value


def csv_response(rows: Iterable[Iterable[Any]], *, filename: str) -> StreamingHttpResponse:
    """A streamed CSV download of `rows` (the first one the header), every cell through csv_cell."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([csv_cell(value) for value in row]) for row in rows),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


MEMBER_COLUMNS = [
    ("member_id", "pk"),  # the API's member id is the membership's
    ("email", "member__email"),
    ("external_id", "external_id"),
    # The brand's name for the member, never the person's own (Member.name): that is theirs, across brands.
    ("name", "name"),
    ("brand", "brand__slug"),
    ("tier", "tier__name"),
    # The wallets' rolled-up balance rows, joined: one query for the whole export, no sum of entries.
    ("balance", "wallet__balance__balance"),
    ("pending", "pending_wallet__balance__balance"),
    ("lifetime_earned", "lifetime_earned"),
    ("lifetime_redeemed", "lifetime_redeemed"),
    ("lifetime_expired", "lifetime_expired"),
    ("joined_at", "joined_at"),
    ("status", "status"),
]
_NUMBERS = {"balance", "pending"}  # None (no wallet yet) means 0 points, not an unknown


def member_rows(memberships: QuerySet[Membership]) -> Iterator[list[Any]]:
    """The header, then one row per membership of `memberships` (in its order), read in chunks."""
    yield [name for name, _ in MEMBER_COLUMNS] + ["active"]
    rows = memberships.values_list(*(field for _, field in MEMBER_COLUMNS))
    for values in rows.iterator(chunk_size=CHUNK_SIZE):
        row = dict(zip((name for name, _ in MEMBER_COLUMNS), values, strict=True))
        for name in _NUMBERS:
            row[name] = row[name] or 0
        row["joined_at"] = row["joined_at"].isoformat()
        yield [*row.values(), row["status"] == Membership.Status.ACTIVE]


STATEMENT_COLUMNS = ["posted_at", "kind", "reason", "reference", "points", "balance_after", "transaction_id", "key"]


def statement_rows(membership: Membership) -> Iterator[list[Any]]:
    """The header, then every entry of the member's wallet, oldest first, with the balance after it.

    The balance after an entry is the running sum from the wallet's first entry: the statement is the
    whole chain (seq 1, 2, 3...), so that sum is exact, and it ends at the balance row's figure.
    """
    yield STATEMENT_COLUMNS
    if membership.wallet_id is None:
        return
    balance = 0
    for entry in account_entries_oldest_first(account=membership.wallet).iterator(chunk_size=CHUNK_SIZE):
        balance += entry.amount
        out = statement_entry_out(entry)
        yield [
            out["created_at"],
            out["kind"],
            entry_reason(entry),
            out["reference"],
            entry.amount,
            balance,
            entry.transaction_id,
            entry.transaction.idempotency_key,
        ]
