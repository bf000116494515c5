"""Loyalty's signals, and its receiver of the ledger's posted signal.

`events_processed` is sent after the commit of a batch of processed events (awarded, rejected or
refunds applied), for the analytics and webhooks that come later. Arguments: sender=Event,
events=list of the processed Event rows (as the processor wrote them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.dispatch import Signal, receiver

from config.db import bulk_cursor
from ledger.models import Account, Transaction
from ledger.services import PostResult
from ledger.signals import transactions_posted

events_processed = Signal()

# Which lifetime rollup of a membership a wallet entry moves, by the kind of transaction, and in which
# direction: earned counts credits, redeemed and expired count debits. A reversal moves the rollup of
# the transaction it reverses, the other way (a refund lowers `earned`, a cancelled redemption lowers
# `redeemed`).
LIFETIME_FIELDS = {
    "earn": ("lifetime_earned", 1),
    "redeem": ("lifetime_redeemed", -1),
    "expiry": ("lifetime_expired", -1),
}
_FIELDS = ("lifetime_earned", "lifetime_redeemed", "lifetime_expired")


@receiver(transactions_posted, dispatch_uid="loyalty.membership_lifetime_roll_up")
def membership_lifetime_roll_up(sender: type[Transaction], *, posted: Sequence[PostResult], **kwargs: Any) -> None:
    """Keep Membership.lifetime_* in step with the wallets, inside the posting's database transaction:
    one UPDATE for every membership the call touched."""
    deltas: dict[int, list[int]] = {}
    pending: dict[int, int] = {}  # pending account -> earned (points earned inside a return window)
    for result in posted:
        txn = result.transaction
        kind = txn.reverses.kind if txn.reverses_id is not None else txn.kind
        if kind not in LIFETIME_FIELDS:
            continue
        field, sign = LIFETIME_FIELDS[kind]
        slot = _FIELDS.index(field)
        for entry in result.entries:
            if entry.account.kind == Account.Kind.WALLET:
                deltas.setdefault(entry.account_id, [0, 0, 0])[slot] += sign * entry.amount
            elif entry.account.kind == Account.Kind.PENDING and kind == "earn":
                pending[entry.account_id] = pending.get(entry.account_id, 0) + entry.amount
    from loyalty.models import Membership

    if deltas:
        wallets = sorted(deltas)
        columns = [wallets] + [[deltas[wallet][slot] for wallet in wallets] for slot in range(3)]
        sql = f"""
            UPDATE {Membership._meta.db_table} AS m
               SET lifetime_earned = m.lifetime_earned + v.earned,
                   lifetime_redeemed = m.lifetime_redeemed + v.redeemed,
                   lifetime_expired = m.lifetime_expired + v.expired
              FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[])
                   AS v(wallet_id, earned, redeemed, expired)
             WHERE m.wallet_id = v.wallet_id
        """  # noqa: S608 - only the table name is formatted in
        with bulk_cursor() as cursor:
            cursor.execute(sql, columns, prepare=True)  # planned once per connection: it runs with every posting
    if pending:
        accounts = sorted(pending)
        sql = f"""
            UPDATE {Membership._meta.db_table} AS m SET lifetime_earned = m.lifetime_earned + v.earned
              FROM unnest(%b::bigint[], %b::bigint[]) AS v(account_id, earned)
             WHERE m.pending_wallet_id = v.account_id
        """  # noqa: S608 - only the table name is formatted in
        with bulk_cursor() as cursor:
            cursor.execute(sql, [accounts, [pending[account] for account in accounts]])


@receiver(transactions_posted, dispatch_uid="loyalty.points_lots_roll_up")
def points_lots_roll_up(sender: type[Transaction], *, posted: Sequence[PostResult], **kwargs: Any) -> None:
    """Keep each wallet's points lots (loyalty.models.PointsLot) in step, inside the posting's database
    transaction: one upsert for every lot the call touched, none for a call that only spends.

    A credit adds to its lot: the `lot` its transaction names (earns: the month earned), else the month it
    was posted (adjustments, cancelled redemptions, released pending points). A reversal that takes
    points back from the wallet (a refund) takes them from the lot of the transaction it reverses.
    Debits that are not reversals (spending, expiry, negative adjustments) leave the lots alone: what
    is left of the wallet is always its newest points (loyalty.services.lifecycle).
    """
    wallets, lots, moments, points = [], [], [], []
    for result in posted:
        txn = result.transaction
        for entry in result.entries:
            if entry.account.kind != Account.Kind.WALLET:
                continue
            if txn.reverses_id is None:
                if entry.amount < 0:
                    continue  # spending, expiry, a negative adjustment
                source = txn  # a credit: into its own lot
            elif entry.amount < 0:
                source = txn.reverses  # a refund: back out of the lot the points went into
            else:
                source = None  # points coming back (a cancelled redemption): into this month's lot
            lot = (source.metadata.get("lot") if source is not None else None) or None
            wallets.append(entry.account_id)
            lots.append(dt.date.fromisoformat(lot) if lot else None)
            moments.append(source.created_at if source is not None else txn.created_at)
            points.append(entry.amount)
    if not wallets:
        return
    from loyalty.models import Brand, Membership, PointsLot

    sql = f"""
        INSERT INTO {PointsLot._meta.db_table} AS l (membership_id, brand_id, month, points, closed)
        SELECT m.id, m.brand_id, COALESCE(v.lot, date_trunc('month', v.at AT TIME ZONE b.timezone)::date),
               sum(v.points), false
          FROM unnest(%b::bigint[], %b::date[], %b::timestamptz[], %b::bigint[]) AS v(wallet_id, lot, at, points)
          JOIN {Membership._meta.db_table} m ON m.wallet_id = v.wallet_id
          JOIN {Brand._meta.db_table} b ON b.id = m.brand_id
         GROUP BY 1, 2, 3
        ON CONFLICT (membership_id, month) DO UPDATE SET points = l.points + EXCLUDED.points
    """  # noqa: S608 - only table names are formatted in
    with bulk_cursor() as cursor:
        cursor.execute(sql, [wallets, lots, moments, points], prepare=True)
