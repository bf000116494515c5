"""Loyalty's signals, and its receiver of the ledger's posted signal.

`events_processed` is sent after the commit of a batch of processed events (awarded, rejected or
refunds applied), for the analytics and webhooks that come later. Arguments: sender=Event,
events=list of the processed Event rows (as the processor wrote them).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from decimal import Decimal
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


@receiver(transactions_posted, dispatch_uid="loyalty.memberships_roll_up")
def memberships_roll_up(sender: type[Transaction], *, posted: Sequence[PostResult], **kwargs: Any) -> None:
    """Keep the rollups of memberships and brands in step with the ledger, inside the posting's database
    transaction, in one statement for the whole call (it runs with every redemption: one round trip).

    - Membership.lifetime_*: a wallet entry moves `earned`, `redeemed` or `expired` by the kind of its
      transaction (LIFETIME_FIELDS); an earn into a pending account moves `earned` too.
    - The economics rollups (loyalty.models.DailyPoints, MemberWeek, WeeklyActive): each entry on a
      brand's issuance, redemptions, expired or adjustments account is a move of points to or from a
      member (the transaction's wallet or pending leg), counted on the brand day it was posted under the
      member's tier then. A redemption carries the cash value of its perk (`value` in its metadata), its
      cancellation gives it back. Releases of pending points (pending to wallet) move nothing there. A
      member who earned or redeemed counts as active in that week, once.
    """
    lifetime: dict[int, list[int]] = {}  # wallet or pending account -> [earned, redeemed, expired]
    moves: list[tuple] = []
    for result in posted:
        txn = result.transaction
        kind = txn.reverses.kind if txn.reverses_id is not None else txn.kind
        field = LIFETIME_FIELDS.get(kind)
        member_account = None
        for entry in result.entries:
            account_kind = entry.account.kind
            if account_kind in _MEMBER_KINDS:
                member_account = member_account or entry.account_id
                if field is not None and (account_kind == Account.Kind.WALLET or kind == "earn"):
                    name, sign = field
                    lifetime.setdefault(entry.account_id, [0, 0, 0])[_FIELDS.index(name)] += sign * entry.amount
        for entry in result.entries:
            move = _move_of(entry)
            if move is not None:
                moves.append((*move, member_account, txn))
    if not lifetime and not moves:
        return
    accounts = sorted(lifetime)
    rows = [(brand_id, account, move, points, _value_of(move, txn), move in ("issued", "redeemed"), txn.created_at)
            for brand_id, move, points, account, txn in moves]  # fmt: skip
    params = [accounts, *([lifetime[account][slot] for account in accounts] for slot in range(3))]
    params += [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 7
    with bulk_cursor() as cursor:
        cursor.execute(_rollups_sql(), params, prepare=True)  # planned once per connection


# What an entry on one of a brand's own accounts says happened, by the account's kind and the entry's sign.
_MOVES = {
    (Account.Kind.ISSUANCE, -1): "issued",
    (Account.Kind.ISSUANCE, 1): "refunded",
    (Account.Kind.REDEMPTIONS, 1): "redeemed",
    (Account.Kind.REDEMPTIONS, -1): "cancelled",
    (Account.Kind.EXPIRED, 1): "expired",
    (Account.Kind.ADJUSTMENTS, -1): "adjusted",
    (Account.Kind.ADJUSTMENTS, 1): "adjusted",
}
_MEMBER_KINDS = (Account.Kind.WALLET, Account.Kind.PENDING)


def _move_of(entry) -> tuple[int, str, int] | None:
    """(brand id, kind of move, points) of an entry on one of a brand's own accounts, else None. The brand
    is in the account's code ("brand:<id>:<kind>", loyalty.services.accounts); network accounts and the
    ledger bench's are not a brand's."""
    move = _MOVES.get((entry.account.kind, 1 if entry.amount > 0 else -1))
    if move is None or not entry.account.code.startswith("brand:"):
        return None
    points = entry.amount if move in ("refunded", "redeemed", "expired") else -entry.amount
    return int(entry.account.code.split(":", 2)[1]), move, points


def _value_of(move: str, txn: Transaction) -> Decimal:
    if move == "redeemed":
        return Decimal(txn.metadata.get("value") or 0)
    if move == "cancelled" and txn.reverses is not None:
        return Decimal(txn.reverses.metadata.get("value") or 0)
    return Decimal(0)


@functools.cache
def _rollups_sql() -> str:
    from loyalty.models import ROLLUP_SHARDS, Brand, DailyPoints, Membership, MemberWeek, Tier, WeeklyActive

    membership = Membership._meta.db_table
    shard = f"pg_backend_pid() %% {ROLLUP_SHARDS}"
    # The CTEs all run, each once; `v` reads the memberships as they were before `lifetime` moved them
    # (one snapshot per statement), which changes nothing it reads. Every insert takes its rows in key
    # order, so that two postings moving the same rows lock them in the same order (no deadlock); a
    # membership's week row is only ever inserted under its membership's row lock, which every earning
    # and spending path holds.
    return f"""
        WITH lifetime AS (
            UPDATE {membership} AS m
               SET lifetime_earned = m.lifetime_earned + d.earned,
                   lifetime_redeemed = m.lifetime_redeemed + d.redeemed,
                   lifetime_expired = m.lifetime_expired + d.expired
              FROM (SELECT COALESCE(mw.id, mp.id) AS id, sum(l.earned) AS earned, sum(l.redeemed) AS redeemed,
                           sum(l.expired) AS expired
                      FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[])
                           AS l(account_id, earned, redeemed, expired)
                      LEFT JOIN {membership} mw ON mw.wallet_id = l.account_id
                      LEFT JOIN {membership} mp ON mp.pending_wallet_id = l.account_id
                     GROUP BY 1) d
             WHERE m.id = d.id
        ),
        v AS (
            SELECT v.brand_id, v.kind, v.points, v.value, v.active, v.at AT TIME ZONE b.timezone AS local,
                   COALESCE(mw.id, mp.id) AS membership_id, COALESCE(t.name, '') AS tier_name
              FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::bigint[], %b::numeric[], %b::boolean[],
                          %b::timestamptz[]) AS v(brand_id, account_id, kind, points, value, active, at)
              JOIN {Brand._meta.db_table} b ON b.id = v.brand_id
              LEFT JOIN {membership} mw ON mw.wallet_id = v.account_id
              LEFT JOIN {membership} mp ON mp.pending_wallet_id = v.account_id
              LEFT JOIN {Tier._meta.db_table} t ON t.id = COALESCE(mw.tier_id, mp.tier_id)
        ),
        daily AS (
            INSERT INTO {DailyPoints._meta.db_table} AS d
                   (brand_id, day, tier_name, kind, shard, points, value, transactions)
            SELECT brand_id, local::date, tier_name, kind, {shard}, sum(points), sum(value), count(*)
              FROM v GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            ON CONFLICT (brand_id, day, tier_name, kind, shard) DO UPDATE
               SET points = d.points + EXCLUDED.points, value = d.value + EXCLUDED.value,
                   transactions = d.transactions + EXCLUDED.transactions
        ),
        weeks AS (
            INSERT INTO {MemberWeek._meta.db_table} (membership_id, week)
            SELECT DISTINCT membership_id, date_trunc('week', local)::date
              FROM v WHERE active AND membership_id IS NOT NULL ORDER BY 1, 2
            ON CONFLICT (membership_id, week) DO NOTHING
            RETURNING membership_id, week
        )
        INSERT INTO {WeeklyActive._meta.db_table} AS a (brand_id, week, shard, members)
        SELECT m.brand_id, w.week, {shard}, count(*)
          FROM weeks w JOIN {membership} m ON m.id = w.membership_id
         GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (brand_id, week, shard) DO UPDATE SET members = a.members + EXCLUDED.members
    """  # noqa: S608 - only table names and a constant are formatted in


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
