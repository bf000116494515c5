"""The ledger's one signal, and the balance rollup that listens to it.

Lower apps tell higher ones what happened through signals (ledger <- loyalty <- perks, livestream):
loyalty keeps its own rollups (points earned this year, liability per brand...) by receiving
`transaction_posted` too, in the same database transaction as the entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.dispatch import Signal
from django.utils import timezone

from ledger.errors import InsufficientBalanceError
from ledger.models import Balance, Entry, Transaction


class TransactionPostedSignal(Signal):
    """Sent once for every newly created transaction, never for an idempotent replay.

    Sent by ledger.services.transaction_post (and so transaction_reverse) *synchronously, inside its
    atomic block*, after the transaction and its entries are inserted and while the balance rows of
    every touched account are locked (SELECT ... FOR UPDATE, in account-id order).

    Arguments:
        sender: the Transaction model class.
        transaction: the new ledger.models.Transaction (saved; `reverses_id` set for reversals).
        entries: list[ledger.models.Entry], saved, in posting order, each with `.account` loaded and its
            `seq`, `prev_hash` and `hash` set.

    Receivers run in the poster's database transaction: what they write commits or rolls back with the
    entries, and an exception they raise refuses the whole posting (the caller sees that exception).
    So a receiver must be quick, must not call the network, and must defer side effects (emails, Celery
    tasks) with `transaction.on_commit`. It must not post to the ledger itself. When it needs the new
    balance of an account, it reads it with ledger.selectors.account_balance_get: the ledger's own
    rollup receiver is connected in LedgerConfig.ready(), and `ledger` comes before the apps that
    build on it in INSTALLED_APPS, so that rollup has run by then.
    """


transaction_posted = TransactionPostedSignal()


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


def balances_roll_up(
    sender: type[Transaction], *, transaction: Transaction, entries: Sequence[Entry], **kwargs: Any
) -> None:
    """Add the new entries to the balance rows of their accounts, in one statement.

    The poster already holds the row locks and has checked the balances; the WHERE clause checks
    again anyway, because it is what the database itself guarantees: a row is only moved if its
    head is where the entries' chain starts (nobody slipped an entry in between) and if an account
    that may not go negative stays at or above zero. The CheckConstraint on the row is the third line.
    """
    rollups = _rollups(entries)
    values = ", ".join(
        ["(%s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s)"] * len(rollups)
    )
    params: list[object] = []
    for rollup in rollups:
        params += [
            rollup.account_id,
            rollup.delta,
            rollup.credited,
            rollup.debited,
            rollup.count,
            rollup.prev_seq,
            rollup.head_seq,
            rollup.head_hash,
        ]
    table = Balance._meta.db_table
    sql = f"""
        UPDATE {table} AS b
           SET balance = b.balance + v.delta,
               total_credited = b.total_credited + v.credited,
               total_debited = b.total_debited + v.debited,
               entry_count = b.entry_count + v.n,
               head_seq = v.head_seq,
               head_hash = v.head_hash,
               updated_at = %s
          FROM (VALUES {values}) AS v(account_id, delta, credited, debited, n, prev_seq, head_seq, head_hash)
         WHERE b.account_id = v.account_id
           AND b.head_seq = v.prev_seq
           AND (b.allow_negative OR b.balance + v.delta >= 0)
     RETURNING b.account_id
    """  # noqa: S608 - only the table name and placeholders are formatted in
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), *params])
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
