"""Reads for brands, staff and memberships."""

from __future__ import annotations

import datetime as dt
import time

from django.db.models import QuerySet, Sum
from django.utils import timezone

from ledger.selectors import StatementPage, account_balance_get, account_statement_list
from loyalty.models import AwardCounter, Brand, BrandStaff, EarnRule, Membership, Tier, User
from loyalty.periods import month_start, period_bounds


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


def qualifying_points(membership: Membership, *, now: dt.datetime | None = None) -> int:
    """Points earned from earn events in the brand's rolling window of months, the current one included.

    Reads at most `tier_window_months` rollup rows (QualifyingBucket), never the ledger.
    """
    brand = membership.brand
    current = month_start(now or timezone.now(), brand)
    first = current
    for _ in range(brand.tier_window_months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    total = membership.qualifying_buckets.filter(month__gte=first, month__lte=current).aggregate(s=Sum("points"))
    return total["s"] or 0


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
    memberships = Membership.objects.filter(brand=brand).select_related("member", "tier", "brand", "wallet")
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
