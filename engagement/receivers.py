"""The leaderboards' receiver of the ledger's postings: earned points (net of refunds) per membership and
period, upserted in the posting's transaction (one statement for the whole call), pushed to Redis after
the commit."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from config.db import bulk_cursor
from engagement.leaderboards import day_periods, scores_push
from engagement.models import FanScore
from ledger.models import Account, Transaction
from ledger.services import PostResult
from ledger.signals import transactions_posted
from loyalty.models import Brand
from loyalty.services.accounts import code_parts

_zones: dict[int, zoneinfo.ZoneInfo] = {}  # a brand's timezone, per process (it is set once, in practice)

_UPSERT_SQL = f"""
    INSERT INTO {FanScore._meta.db_table} AS f (brand_id, membership_id, period, points, reached_at, version)
    SELECT v.brand_id, v.membership_id, v.period, v.points, v.reached_at, 1
      FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::bigint[], %b::timestamptz[])
           AS v(brand_id, membership_id, period, points, reached_at)
     ORDER BY v.brand_id, v.period, v.membership_id
    ON CONFLICT (brand_id, period, membership_id) DO UPDATE
       SET points = f.points + EXCLUDED.points, reached_at = EXCLUDED.reached_at, version = f.version + 1
    RETURNING f.brand_id, f.membership_id, f.period, f.points, f.version
"""  # noqa: S608 - only the table name is formatted in


def earned_moves(posted: Sequence[PostResult]) -> list[tuple[int, int, int, dt.datetime, dt.datetime]]:
    """(brand id, membership id, points, when they count for, when it happened) of each earn to a member's
    wallet or pending account, and of each refund of one (negative, counted in the period of the earn)."""
    moves = []
    for result in posted:
        txn = result.transaction
        if txn.kind == "earn":
            counts_for = txn.created_at
        elif txn.reverses_id is not None and txn.reverses.kind == "earn":
            counts_for = txn.reverses.created_at
        else:
            continue
        for entry in result.entries:
            if entry.account.kind not in (Account.Kind.WALLET, Account.Kind.PENDING):
                continue
            parts = code_parts(entry.account.code)
            if parts is not None and parts.scope == "brand" and parts.owner is not None:
                moves.append((parts.scope_id, parts.owner, entry.amount, counts_for, txn.created_at))
    return moves


@receiver(transactions_posted, dispatch_uid="engagement.fan_scores")
def fan_scores(sender: type[Transaction], *, posted: Sequence[PostResult], **kwargs: Any) -> None:
    moves = earned_moves(posted)
    if not moves:
        return
    zones = _brand_zones({brand_id for brand_id, *_ in moves})
    totals: dict[tuple[int, int, str], list] = {}
    periods: dict[tuple[int, dt.date], tuple[str, str, str]] = {}  # a batch's earns fall on a few days
    for brand_id, membership_id, points, counts_for, happened in moves:
        day = counts_for.astimezone(zones[brand_id]).date()
        names = periods.get((brand_id, day))
        if names is None:
            names = periods[(brand_id, day)] = day_periods(day)
        for period in names:
            row = totals.get((brand_id, membership_id, period))
            if row is None:
                totals[(brand_id, membership_id, period)] = [points, happened]
            else:
                row[0] += points
                row[1] = max(row[1], happened)
    keys = list(totals)
    columns = [
        [key[0] for key in keys],
        [key[1] for key in keys],
        [key[2] for key in keys],
        [totals[key][0] for key in keys],
        [totals[key][1] for key in keys],
    ]
    with bulk_cursor() as cursor:
        # Binary results, and no timestamps back (we know them): parsing 3,000 of them as text cost more
        # than the statement.
        cursor.execute(_UPSERT_SQL, columns, binary=True)
        rows = [
            (brand_id, membership_id, period, points, totals[(brand_id, membership_id, period)][1], version)
            for brand_id, membership_id, period, points, version in cursor.fetchall()
        ]
    transaction.on_commit(lambda: scores_push(rows))


def _brand_zones(brand_ids: set[int]) -> dict[int, zoneinfo.ZoneInfo]:
    missing = brand_ids - _zones.keys()
    if missing:
        for brand in Brand.objects.filter(pk__in=missing).only("id", "timezone"):
            _zones[brand.pk] = brand.zone
    return {brand_id: _zones[brand_id] for brand_id in brand_ids}
