"""The balance rollup: every posting moves the balance row of each account it touches, in the same
database transaction as its entries, with one statement for the whole call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from config.db import bulk_cursor
from ledger.errors import InsufficientBalanceError
from ledger.models import Balance, Entry


@dataclass(frozen=True)
class _Rollup:
    account_id: int
    delta: int
    credited: int
    debited: int
    count: int
    prev_seq: int
    head_seq: int
    head_hash: str


def _rollups(entries: Sequence[Entry]) -> list[_Rollup]:
    by_account: dict[int, list[Entry]] = {}
    for entry in entries:
        by_account.setdefault(entry.account_id, []).append(entry)
    rollups = []
    for account_id in sorted(by_account):
        chain = sorted(by_account[account_id], key=lambda entry: entry.seq)
        amounts = [entry.amount for entry in chain]
        rollups.append(
            _Rollup(
                account_id=account_id,
                delta=sum(amounts),
                credited=sum(amount for amount in amounts if amount > 0),
                debited=-sum(amount for amount in amounts if amount < 0),
                count=len(chain),
                prev_seq=chain[0].seq - 1,
                head_seq=chain[-1].seq,
                head_hash=chain[-1].hash,
            )
        )
    return rollups


_UPDATE_SQL = f"""
    UPDATE {Balance._meta.db_table} AS b
       SET balance = b.balance + v.delta,
           total_credited = b.total_credited + v.credited,
           total_debited = b.total_debited + v.debited,
           entry_count = b.entry_count + v.n,
           head_seq = v.head_seq,
           head_hash = v.head_hash,
           updated_at = %b
      FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[],
                  %b::text[]) AS v(account_id, delta, credited, debited, n, prev_seq, head_seq, head_hash)
     WHERE b.account_id = v.account_id
       AND b.head_seq = v.prev_seq
       AND (b.allow_negative OR b.balance + v.delta >= 0)
 RETURNING b.account_id
"""  # noqa: S608 - only the table name is formatted in


def balances_roll_up(*, entries: Sequence[Entry]) -> None:
    """Add new entries (of one or many transactions) to the balance rows of their accounts, in one
    statement: each touched row is updated once, however many entries it got.

    The poster already holds the row locks and has checked the balances; the WHERE clause checks
    again anyway, because it is what the database itself guarantees: a row is only moved if its
    head is where the entries' chain starts (nobody slipped an entry in between) and if an account
    that may not go negative stays at or above zero. The CheckConstraint on the row is the third line.
    """
    rollups = _rollups(entries)
    if not rollups:
        return
    columns = [
        [getattr(rollup, name) for rollup in rollups]
        for name in ("account_id", "delta", "credited", "debited", "count", "prev_seq", "head_seq", "head_hash")
    ]
    with bulk_cursor() as cursor:
        cursor.execute(_UPDATE_SQL, [timezone.now(), *columns])
        moved = {row[0] for row in cursor.fetchall()}
    refused = [rollup for rollup in rollups if rollup.account_id not in moved]
    if refused:
        _raise_refusal(refused, entries)


def _raise_refusal(refused: list[_Rollup], entries: Sequence[Entry]) -> None:
    codes = {entry.account_id: entry.account.code for entry in entries}
    rows = {row.account_id: row for row in Balance.objects.filter(account_id__in=[r.account_id for r in refused])}
    for rollup in refused:
        row = rows.get(rollup.account_id)
        if row is None:
            raise RuntimeError(f"ledger: account {codes[rollup.account_id]} has no balance row")
        if row.head_seq == rollup.prev_seq and not row.allow_negative and row.balance + rollup.delta < 0:
            raise InsufficientBalanceError(missing=-(row.balance + rollup.delta), account_code=codes[rollup.account_id])
    # The head moved under us: someone posted to the account without taking the balance lock.
    raise RuntimeError(
        "ledger: balance rows changed while locked for posting: "
        + ", ".join(codes[rollup.account_id] for rollup in refused)
    )
