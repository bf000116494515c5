"""Reads for brands, staff and memberships."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

from django.db import connection
from django.db.models import QuerySet, Sum
from django.utils import timezone

from config.db import bulk_cursor
from ledger.models import Entry
from ledger.selectors import StatementPage, account_balance_get, account_statement_list
from loyalty.models import (
    AwardCounter,
    Brand,
    BrandStaff,
    DailyEvents,
    DailyPoints,
    EarnRule,
    Event,
    Membership,
    NetworkSpend,
    NetworkWallet,
    PendingLot,
    PointsLot,
    Tier,
    TierChange,
    User,
)
from loyalty.periods import months_add, period_bounds, tier_window


def brand_list_active() -> QuerySet[Brand]:
    return Brand.objects.filter(is_active=True).order_by("name")


def brand_ids_for_staff(user: User) -> set[int]:
    """The brands whose partner portal this login may see (superusers: see every brand instead)."""
    if not user.is_authenticated or not user.is_active:
        return set()
    return set(BrandStaff.objects.filter(user=user).values_list("brand_id", flat=True))


def membership_list_for_user(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(member__user=user)
        .exclude(status=Membership.Status.LEFT)
        .select_related("brand")
        .order_by("brand__name")
    )


def membership_for_user(*, user: User, brand: Brand) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(member__user=user, brand=brand).exclude(status=Membership.Status.LEFT).first()


# --- points, tiers and history -------------------------------------------------------------------


def qualifying_window(brand: Brand, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The first and last month whose points qualify for a tier (loyalty.periods.tier_window)."""
    return tier_window(
        when=now or timezone.now(),
        zone=brand.zone,
        calendar_year=brand.tier_window == Brand.TierWindow.CALENDAR_YEAR,
        months=brand.tier_window_months,
    )


def qualifying_points(membership: Membership, *, now: dt.datetime | None = None) -> int:
    """Points earned from earn events in the brand's tier window.

    Reads at most a few dozen rollup rows (QualifyingBucket), never the ledger.
    """
    first, current = qualifying_window(membership.brand, now)
    total = membership.qualifying_buckets.filter(month__gte=first, month__lte=current).aggregate(s=Sum("points"))
    return total["s"] or 0


def network_balance(*, member_id: int, network_id: int) -> int:
    """The person's network points (0 before their first)."""
    balance = (
        NetworkWallet.objects.filter(member_id=member_id, network_id=network_id)
        .values_list("account__balance__balance", flat=True)
        .first()
    )
    return balance or 0


def membership_pending(membership: Membership) -> int:
    """Points earned inside a return window, not spendable yet."""
    return account_balance_get(membership.pending_wallet).balance if membership.pending_wallet_id else 0


def membership_expiring(membership: Membership, *, balance: int | None = None) -> list[dict]:
    """The points that will expire, by date, soonest first: [{"points": n, "on": date}].

    Spending takes the oldest points first, so of the lots up to month M what is left is
    max(0, balance - the lots after M); each lot's share is the difference to the lot before it. Reads
    the member's open lots (a few dozen rows at most), never the ledger. Empty when the brand's points
    never expire, or the member's tier keeps them.
    """
    months = membership.brand.points_expire_months
    if months is None or (membership.tier is not None and membership.tier.points_never_expire):
        return []
    balance = membership_balance(membership) if balance is None else balance
    lots = list(
        PointsLot.objects.filter(membership=membership, closed=False).order_by("month").values_list("month", "points")
    )
    start = membership.brand.points_expire_from  # points from before expiry was switched on count from then
    after = sum(points for _, points in lots)
    expiring, counted = [], 0
    for month, points in lots:
        after -= points
        left = max(0, balance - after)  # what is left of this lot and the older ones
        if left > counted:
            on = months_add(max(month, start or month), months + 1)
            if expiring and expiring[-1]["on"] == on:
                expiring[-1]["points"] += left - counted
            else:
                expiring.append({"points": left - counted, "on": on})
            counted = left
    return expiring


def membership_pending_lots(membership: Membership) -> list[PendingLot]:
    """The member's pending points by the day they become spendable, soonest first."""
    return list(
        PendingLot.objects.filter(membership=membership, released_transaction__isnull=True, points__gt=0).order_by(
            "release_on"
        )
    )


EVENT_TYPE_LABELS = {"purchase": "Purchase", "watch_minute": "Watching the livestream", "check_in": "Check-in"}


def entry_reason(entry: Entry) -> str:
    """Why a wallet entry happened, in words a fan reads on their wallet page."""
    txn = entry.transaction
    meta = txn.metadata or {}
    if txn.kind == "earn":
        event_type = meta.get("event_type", "")
        label = EVENT_TYPE_LABELS.get(event_type, event_type.replace("_", " ").capitalize() or "Earned")
        if meta.get("order_id"):
            label = f"{label} {meta['order_id']}"
        if meta.get("streak_bonus"):
            label = f"{label} (with a {meta['streak_bonus']}-point streak bonus)"
        return label
    if txn.kind == "redeem":
        return f"Redeemed: {txn.memo}" if txn.memo else "Redeemed a perk"
    if txn.kind == "expiry":
        return "Points expired"
    if txn.kind == "release":
        return "Pending points became spendable"
    if txn.kind == "adjustment":
        return f"Adjustment: {txn.memo}" if txn.memo else "Adjustment"
    if txn.kind == "reversal":
        if meta.get("event_type") == "refund":
            return f"Refund of {meta.get('order_id')}" if meta.get("order_id") else "Refund"
        return txn.memo.capitalize() if txn.memo else "Reversal"
    return txn.memo or txn.kind.capitalize()


def membership_tier_changes(membership: Membership, *, limit: int = 20) -> list[TierChange]:
    return list(TierChange.objects.filter(membership=membership).order_by("-created_at", "-id")[:limit])


def base_tier_id(*, brand_id: int) -> int | None:
    """The tier a member has on joining: the brand's entry tier, if it asks for no points (None if the
    brand has no tiers, or its first one must be earned)."""
    return Tier.objects.filter(brand_id=brand_id, threshold=0).order_by("rank").values_list("pk", flat=True).first()


def next_tier(membership: Membership, qualifying: int) -> tuple[Tier, int] | None:
    """The next tier up and how many qualifying points are still needed, or None at the top."""
    current_rank = membership.tier.rank if membership.tier else 0
    upcoming = Tier.objects.filter(brand_id=membership.brand_id, rank__gt=current_rank).order_by("rank").first()
    if upcoming is None:
        return None
    return upcoming, max(0, upcoming.threshold - qualifying)


def membership_balance(membership: Membership) -> int:
    return account_balance_get(membership.wallet).balance if membership.wallet_id else 0


def membership_list_for_brand(
    *, brand: Brand, email: str | None = None, external_id: str | None = None
) -> QuerySet[Membership]:
    memberships = Membership.objects.filter(brand=brand).select_related(
        "member", "tier", "brand__network", "wallet", "pending_wallet"
    )
    if email:
        memberships = memberships.filter(member__email__iexact=email.strip())
    if external_id:
        memberships = memberships.filter(external_id=external_id)
    return memberships.order_by("pk")


def membership_statement(*, membership: Membership, cursor: str | None = None, limit: int = 50) -> StatementPage | None:
    """The member's signed points history, newest first; None before their first posting."""
    if membership.wallet_id is None:
        return None
    return account_statement_list(account=membership.wallet, cursor=cursor, limit=limit)


# --- what the accept path needs, cached in this process ---------------------------------------------

EVENT_TYPES_TTL_SECONDS = 5.0
_event_types: dict[int, tuple[float, frozenset[str]]] = {}


def brand_event_types(brand_id: int, *, fresh: bool = False) -> frozenset[str]:
    """The brand's custom event types (those of its earn rules), for validating events as they arrive.

    Cached in this process for a few seconds: the accept path runs thousands of times a second. A type
    not in the cache should be asked again with `fresh=True` before it is refused, so a rule staff just
    added is known at once; a rule just deleted is still accepted for a few seconds, and the processor
    then rejects its events with `no_rule`.
    """
    now = time.monotonic()
    cached = _event_types.get(brand_id)
    if fresh or cached is None or now - cached[0] > EVENT_TYPES_TTL_SECONDS:
        types = frozenset(EarnRule.objects.filter(brand_id=brand_id).values_list("event_type", flat=True))
        _event_types[brand_id] = (now, types)
        return types
    return cached[1]


def awarded_in_period(
    *, membership: Membership, event_type: str, period: str = "day", now: dt.datetime | None = None
) -> tuple[int, int]:
    """(events, points) a member was awarded for one event type in the current brand day / week / month,
    from the award counters (loyalty.models.AwardCounter)."""
    start, end = period_bounds(when=now or timezone.now(), zone=membership.brand.zone)[period]
    totals = AwardCounter.objects.filter(
        membership=membership, event_type=event_type, day__gte=start, day__lt=end
    ).aggregate(events=Sum("awarded"), points=Sum("points"))
    return totals["events"] or 0, totals["points"] or 0


def network_acquisition(*, brand: Brand) -> dict[str, list[dict]]:
    """What the network brought the brand, by month: members who first joined another brand of the network
    and then earned or redeemed here (by the month they joined here), and where the brand's members spent
    their network points (by month and honoring brand)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT to_char(date_trunc('month', m.joined_at AT TIME ZONE 'UTC'), 'YYYY-MM'), count(*)
              FROM {Membership._meta.db_table} m
             WHERE m.brand_id = %s
               AND EXISTS (SELECT 1 FROM {Membership._meta.db_table} o
                             JOIN {Brand._meta.db_table} ob ON ob.id = o.brand_id
                            WHERE o.member_id = m.member_id AND o.brand_id <> m.brand_id
                              AND ob.network_id = %s AND o.joined_at < m.joined_at)
               AND (EXISTS (SELECT 1 FROM {Event._meta.db_table} e
                             WHERE e.membership_id = m.id AND e.status = 'awarded')
                    OR EXISTS (SELECT 1 FROM {NetworkSpend._meta.db_table} s
                                WHERE s.member_id = m.member_id AND s.honoring_id = m.brand_id))
             GROUP BY 1 ORDER BY 1
            """,  # noqa: S608 - only table names are formatted in
            [brand.pk, brand.network_id],
        )
        acquired = [{"month": month, "members": count} for month, count in cursor.fetchall()]
    spent = (
        NetworkSpend.objects.filter(issuer=brand)
        .values_list("month", "honoring__slug")
        .annotate(points=Sum("points"))
        .order_by("month", "honoring__slug")
    )
    return {
        "acquired": acquired,
        "spent_elsewhere": [
            {"month": f"{month:%Y-%m}", "brand": slug, "points": points} for month, slug, points in spent if points
        ],
    }


# --- installation-wide totals (GET /metrics, loyalty.metrics) ------------------------------------------


def events_totals() -> list[tuple[str, str, str, int]]:
    """(brand slug, event type, status, events) of every event ever processed: the DailyEvents rollups
    added up over days, reasons and tiers (one grouped query; never the events table)."""
    rows = (
        DailyEvents.objects.values_list("brand__slug", "type", "status")
        .annotate(events=Sum("events"))
        .order_by("brand__slug", "type", "status")
    )
    return [(slug, type_, status, int(events)) for slug, type_, status, events in rows]


def points_totals() -> list[tuple[str, str, int]]:
    """(brand slug, kind, points) of every move of points ever: the DailyPoints rollups added up over days,
    tiers and shards. Every kind is a magnitude that only grows, except `adjusted` (signed, net)."""
    rows = (
        DailyPoints.objects.values_list("brand__slug", "kind")
        .annotate(points=Sum("points"))
        .order_by("brand__slug", "kind")
    )
    return [(slug, kind, int(points)) for slug, kind, points in rows]


def events_pending_by_brand() -> list[tuple[str, int, float]]:
    """(brand slug, events pending, seconds the oldest has waited; 0 when none) of every brand, in one
    statement on the partial index of pending events: the count reads that index (as small as the
    backlog), the oldest is each brand's first entry in it (the event its processor takes next)."""
    table, brands = Event._meta.db_table, Brand._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT b.slug, coalesce(c.pending, 0),
                   coalesce(extract(epoch FROM statement_timestamp() - o.created_at), 0)
              FROM {brands} b
              LEFT JOIN (SELECT brand_id, count(*) AS pending FROM {table}
                          WHERE status = 'pending' GROUP BY brand_id) c ON c.brand_id = b.id
              LEFT JOIN LATERAL (SELECT e.created_at FROM {table} e
                                  WHERE e.brand_id = b.id AND e.status = 'pending'
                                  ORDER BY e.id LIMIT 1) o ON true
             ORDER BY b.slug
            """  # noqa: S608 - only table names are formatted in
        )
        return [(slug, int(pending), max(0.0, float(age))) for slug, pending, age in cursor.fetchall()]


# The ids of a brand's events with the given idempotency keys, and of its purchases with the given order
# ids: one probe of the unique index per key (a LATERAL ... LIMIT 1, which PostgreSQL does not flatten).
# As a plain `order_id IN (...)`, a planner with the statistics of a young table (before autovacuum's
# next ANALYZE) looked the brand up in that index and filtered all of its events by order id.
_EVENT_IDS_SQL = f"""
    SELECT e.id FROM unnest(%b::text[]) AS k(key)
     CROSS JOIN LATERAL (
           SELECT id FROM {Event._meta.db_table} e
            WHERE e.brand_id = %b AND e.idempotency_key = k.key LIMIT 1
          ) e
    UNION
    SELECT e.id FROM unnest(%b::text[]) AS o(order_id)
     CROSS JOIN LATERAL (
           SELECT id FROM {Event._meta.db_table} e
            WHERE e.brand_id = %b AND e.type = '{EarnRule.PURCHASE}' AND e.order_id = o.order_id LIMIT 1
          ) e
"""  # noqa: S608 - only the table name and a constant are formatted in


def events_by_keys(*, brand_id: int, keys: Sequence[str], orders: Sequence[str]) -> list[Event]:
    """The brand's events with these idempotency keys, and its purchases with these order ids (with their
    membership, member and tier)."""
    with bulk_cursor() as cursor:
        cursor.execute(_EVENT_IDS_SQL, [list(keys), brand_id, list(orders), brand_id], prepare=True)
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    return list(Event.objects.filter(pk__any=ids).select_related("membership__member", "membership__tier"))
