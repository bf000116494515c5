"""Reads of the perks app: the catalog, and whether a member can redeem a perk now (and if not, why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from loyalty.models import Brand, Membership
from loyalty.periods import cap_periods
from loyalty.selectors import membership_balance
from perks.models import Perk, Redemption


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


def perk_list_active(*, brand: Brand) -> QuerySet[Perk]:
    now = timezone.now()
    return (
        Perk.objects.filter(brand=brand, is_active=True)
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
        .select_related("minimum_tier")
        .order_by("cost", "name")
    )


def perk_refusal(*, membership: Membership, perk: Perk, balance: int | None = None) -> Refusal | None:
    """Why this member cannot redeem this perk right now, or None if they can.

    Read-only; perk_redeem calls it again under the membership's row lock, which is what makes the
    limits hold under concurrency.
    """
    now = timezone.now()
    if (
        perk.brand_id != membership.brand_id
        or not perk.is_active
        or (perk.available_from and now < perk.available_from)
        or (perk.available_until and now >= perk.available_until)
        or membership.status != Membership.Status.ACTIVE
    ):
        return Refusal("not_available", f"{perk.name} is not available right now.")
    if perk.minimum_tier_id is not None:
        tier = membership.tier
        if tier is None or tier.rank < perk.minimum_tier.rank:
            return Refusal(
                "tier_required",
                f"Reach {perk.minimum_tier.name} to redeem {perk.name}.",
                {"tier": perk.minimum_tier.name},
            )
    limit = _limit_reached(membership, perk, now)
    if limit is not None:
        return limit
    if perk.stock is not None and perk.stock <= 0:
        return Refusal("out_of_stock", f"{perk.name} is sold out.")
    balance = membership_balance(membership) if balance is None else balance
    if balance < perk.cost:
        missing = perk.cost - balance
        return Refusal(
            "insufficient_points", f"{missing} more {membership.brand.points_name} needed.", {"missing": missing}
        )
    return None


def _limit_reached(membership: Membership, perk: Perk, now) -> Refusal | None:
    taken = Redemption.objects.filter(membership=membership, perk=perk).exclude(status=Redemption.Status.CANCELLED)
    if perk.limit_total is not None and taken.count() >= perk.limit_total:
        return Refusal(
            "limit_reached",
            f"You can redeem {perk.name} {perk.limit_total} time(s) in all.",
            {"period": "total", "limit": perk.limit_total},
        )
    periods = cap_periods(when=now, zone=membership.brand.zone)
    for period, limit in (("day", perk.limit_per_day), ("week", perk.limit_per_week), ("month", perk.limit_per_month)):
        if limit is not None:
            start, end = periods[period]
            if taken.filter(created_at__gte=start, created_at__lt=end).count() >= limit:
                return Refusal(
                    "limit_reached",
                    f"You can redeem {perk.name} {limit} time(s) a {period}.",
                    {"period": period, "limit": limit},
                )
    return None


def redemption_list_for_user(user) -> QuerySet[Redemption]:
    return (
        Redemption.objects.filter(membership__member__user=user)
        .select_related("perk", "brand")
        .order_by("-created_at", "-id")
    )
