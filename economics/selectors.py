"""What a brand's points are worth and what its program returns: reads only, nothing here writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from django.db.models import Count, Sum

from ledger.models import Balance
from loyalty.models import Brand, DailyEvents, DailyPoints, EarnRule, Membership, Tier, WeeklyActive
from perks.models import Perk

CENT = Decimal("0.01")
HUNDRED = Decimal("100")
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class PointValue:
    value: Decimal | None  # in `currency` per point; None: nothing to value it by
    currency: str
    source: str  # "override" (the brand's setting), "menu" (its perks), or "none"


@dataclass(frozen=True)
class TierReturn:
    name: str
    multiplier: Decimal
    return_rate: Decimal | None  # percent of spend returned as points' value, two places


def percent(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """`part` as a percentage of `whole`, to two places (None when there is no whole to divide by)."""
    if not whole:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(CENT, rounding=ROUND_HALF_UP)


def purchase_rule(brand: Brand) -> EarnRule | None:
    """The brand's purchase earn rule (its points per currency unit), enabled ones first."""
    return (
        EarnRule.objects.filter(brand=brand, event_type="purchase", points_per_unit__isnull=False)
        .order_by("-enabled", "id")
        .first()
    )


def brand_currency(brand: Brand, rule: EarnRule | None = None) -> str:
    """The currency the brand's figures are in: its purchase rule's, else its perks' cash values', else its
    network's, else USD."""
    rule = rule if rule is not None else purchase_rule(brand)
    if rule is not None and rule.currency:
        return rule.currency
    perk_currency = (
        Perk.objects.filter(brand=brand, cash_value__isnull=False)
        .exclude(cash_currency="")
        .values_list("cash_currency", flat=True)
        .first()
    )
    if perk_currency:
        return perk_currency
    if brand.network_id is not None:
        return brand.network.currency
    return DEFAULT_CURRENCY


def menu_point_value(brand: Brand, currency: str) -> Decimal | None:
    """The median cash value per point of the brand's active perks priced in its own points.

    The median, not a total ratio: one generous perk (merchandise worth $20 for 400 points) should not move
    what a point is worth on the rest of the menu. Starbucks' $2 off for 60 Stars gives 1/30 of a dollar.
    """
    ratios = [
        cash_value / cost
        for cash_value, cost in Perk.objects.filter(
            brand=brand, is_active=True, is_network_perk=False, cash_value__gt=0, cash_currency=currency
        ).values_list("cash_value", "cost")
    ]
    return Decimal(median(ratios)) if ratios else None


def point_value(brand: Brand, currency: str | None = None) -> PointValue:
    """The value of one of the brand's points: its own setting when it has one, else its menu's."""
    currency = currency or brand_currency(brand)
    if brand.point_value is not None:
        return PointValue(brand.point_value, currency, "override")
    value = menu_point_value(brand, currency)
    return PointValue(value, currency, "menu" if value is not None else "none")


def return_rate(*, points_per_unit: Decimal, multiplier: Decimal, value: Decimal | None) -> Decimal | None:
    """Percent of a purchase given back as points' value: points per currency unit x multiplier x value."""
    if value is None:
        return None
    return (points_per_unit * multiplier * value * HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def tier_return_rates(brand: Brand, value: Decimal | None, rule: EarnRule | None = None) -> list[TierReturn]:
    """The return rate of each tier (lowest first); a brand without tiers has one row, "All members"."""
    rule = rule if rule is not None else purchase_rule(brand)
    rate = rule.points_per_unit if rule is not None else Decimal("0")
    tiers = list(Tier.objects.filter(brand=brand).order_by("rank").values_list("name", "multiplier"))
    rows = tiers or [("All members", Decimal("1"))]
    return [
        TierReturn(name, multiplier, return_rate(points_per_unit=rate, multiplier=multiplier, value=value))
        for name, multiplier in rows
    ]


# --- Figures over a range, from the rollups --------------------------------------------------------------

# How each kind of DailyPoints moves what members hold.
_OUTSTANDING_SIGN = {"issued": 1, "refunded": -1, "redeemed": -1, "cancelled": 1, "expired": -1, "adjusted": 1}


@dataclass(frozen=True)
class TierFigures:
    name: str
    issued: int
    redeemed: int
    expired: int
    spend: Decimal
    return_rate: Decimal | None  # realised: value of the points issued / spend, percent


@dataclass(frozen=True)
class Figures:
    """A brand's realised economics over [start, end] (brand days, both included)."""

    start: dt.date
    end: dt.date
    point_value: PointValue
    tiers: list[TierReturn]
    issued: int  # net of refunds
    redeemed: int  # net of cancelled redemptions
    expired: int
    adjusted: int
    outstanding: int  # at the end of the range: what members hold (pending points included)
    liability: Decimal | None  # outstanding x point value
    spend: Decimal  # awarded purchases minus refunds
    redeemed_value: Decimal  # the perks' cash value
    cost_pct_of_revenue: Decimal | None  # redeemed value / spend
    redemption_rate: Decimal | None  # redeemed / issued
    breakage_rate: Decimal | None  # expired / issued
    projected_breakage: int | None  # of the outstanding points, how many will likely never be redeemed
    by_tier: list[TierFigures]
    days: list[dict]  # per day: issued, redeemed, expired (the charts)


def brand_accounts(brand: Brand) -> dict[str, int]:
    """The balances of the brand's own accounts (issuance, adjustments, redemptions, expired), by kind: what
    the brand ever issued, adjusted, had redeemed and saw expire, net, in four balance rows."""
    codes = {f"brand:{brand.pk}:{kind}": kind for kind in ("issuance", "adjustments", "redemptions", "expired")}
    rows = Balance.objects.filter(account__code__in=codes).values_list("account__code", "balance")
    return {kind: 0 for kind in codes.values()} | {codes[code]: balance for code, balance in rows}


def outstanding_now(brand: Brand, accounts: dict[str, int] | None = None) -> int:
    """What the brand's members hold now (wallets and pending points): double entry makes it minus the sum
    of the brand's own accounts."""
    return -sum((accounts if accounts is not None else brand_accounts(brand)).values())


def figures(brand: Brand, *, start: dt.date, end: dt.date) -> Figures:
    """The realised figures of [start, end]: a few hundred rollup rows and four balance rows, however
    big the ledger."""
    rule = purchase_rule(brand)
    value = point_value(brand, brand_currency(brand, rule))
    rows = (
        DailyPoints.objects.filter(brand=brand, day__gte=start, day__lte=end)
        .values("day", "tier_name", "kind")
        .annotate(points=Sum("points"), value=Sum("value"))
    )
    totals: dict[str, int] = dict.fromkeys(_OUTSTANDING_SIGN, 0)
    per_day: dict[dt.date, dict[str, int]] = {}
    per_tier: dict[str, dict[str, int]] = {}
    redeemed_value = Decimal("0")
    for row in rows:
        kind, points = row["kind"], row["points"]
        totals[kind] += points
        day = per_day.setdefault(row["day"], dict.fromkeys(_OUTSTANDING_SIGN, 0))
        day[kind] += points
        tier = per_tier.setdefault(row["tier_name"], dict.fromkeys(_OUTSTANDING_SIGN, 0))
        tier[kind] += points
        if kind == "redeemed":
            redeemed_value += row["value"]
        elif kind == "cancelled":
            redeemed_value -= row["value"]
    after = DailyPoints.objects.filter(brand=brand, day__gt=end).values("kind").annotate(points=Sum("points"))
    moved_since = sum(_OUTSTANDING_SIGN[row["kind"]] * row["points"] for row in after)
    accounts = brand_accounts(brand)
    outstanding = outstanding_now(brand, accounts) - moved_since
    spend_by_tier = _spend_by_tier(brand, start, end)
    spend = sum(spend_by_tier.values(), Decimal("0"))
    issued = totals["issued"] - totals["refunded"]
    redeemed = totals["redeemed"] - totals["cancelled"]
    # Of the points whose fate is settled (redeemed or expired, ever), the share that expired: what the
    # outstanding points will likely come to.
    settled = accounts["redemptions"] + accounts["expired"]
    projected = outstanding * accounts["expired"] // settled if settled > 0 else None
    by_tier = []
    for name in sorted(set(per_tier) | set(spend_by_tier), key=_tier_order(brand)):
        moved = per_tier.get(name, dict.fromkeys(_OUTSTANDING_SIGN, 0))
        tier_issued = moved["issued"] - moved["refunded"]
        tier_spend = spend_by_tier.get(name, Decimal("0"))
        by_tier.append(
            TierFigures(
                name=name or "No tier",
                issued=tier_issued,
                redeemed=moved["redeemed"] - moved["cancelled"],
                expired=moved["expired"],
                spend=tier_spend,
                return_rate=percent(tier_issued * value.value, tier_spend) if value.value is not None else None,
            )
        )
    return Figures(
        start=start,
        end=end,
        point_value=value,
        tiers=tier_return_rates(brand, value.value, rule),
        issued=issued,
        redeemed=redeemed,
        expired=totals["expired"],
        adjusted=totals["adjusted"],
        outstanding=outstanding,
        liability=(outstanding * value.value).quantize(CENT, rounding=ROUND_HALF_UP)
        if value.value is not None
        else None,
        spend=spend,
        redeemed_value=redeemed_value,
        cost_pct_of_revenue=percent(redeemed_value, spend),
        redemption_rate=percent(redeemed, issued),
        breakage_rate=percent(totals["expired"], issued),
        projected_breakage=projected,
        by_tier=by_tier,
        days=[
            {
                "day": day,
                "issued": moved["issued"] - moved["refunded"],
                "redeemed": moved["redeemed"] - moved["cancelled"],
                "expired": moved["expired"],
            }
            for day, moved in sorted(per_day.items())
        ],
    )


def _spend_by_tier(brand: Brand, start: dt.date, end: dt.date) -> dict[str, Decimal]:
    """Awarded purchases minus awarded refunds, by the tier the purchase earned in (refunds have none: they
    count under "")."""
    rows = (
        DailyEvents.objects.filter(
            brand=brand, day__gte=start, day__lte=end, type__in=["purchase", "refund"], status="awarded"
        )
        .values("type", "tier_name")
        .annotate(amount=Sum("amount"))
    )
    spend: dict[str, Decimal] = {}
    for row in rows:
        sign = 1 if row["type"] == "purchase" else -1
        spend[row["tier_name"]] = spend.get(row["tier_name"], Decimal("0")) + sign * row["amount"]
    return spend


def _tier_order(brand: Brand):
    ranks = dict(Tier.objects.filter(brand=brand).values_list("name", "rank"))
    return lambda name: (ranks.get(name, 0 if not name else 10_000), name)


@dataclass(frozen=True)
class Dashboard:
    figures: Figures
    active_weeks: list[tuple[dt.date, int]]  # (Monday, members who earned or redeemed that week)
    members_by_tier: list[tuple[str, int]]  # now, lowest tier first
    events: list[dict]  # by type: {"type", "awarded", "rejected", "failed"} over the range
    rejections: list[tuple[str, int]]  # by reason, most first


def dashboard(brand: Brand, *, start: dt.date, end: dt.date) -> Dashboard:
    """Everything the portal's dashboard shows for [start, end]: rollup rows only (and one index-only count
    of the brand's memberships by tier)."""
    active = (
        WeeklyActive.objects.filter(brand=brand, week__gte=start - dt.timedelta(days=start.weekday()), week__lte=end)
        .values("week")
        .annotate(members=Sum("members"))
        .order_by("week")
    )
    tiers = dict(Tier.objects.filter(brand=brand).values_list("id", "name"))
    order = _tier_order(brand)
    counts = Membership.objects.filter(brand=brand).values("tier_id").annotate(members=Count("id")).order_by()
    by_tier = sorted(((tiers.get(row["tier_id"], ""), row["members"]) for row in counts), key=lambda r: order(r[0]))
    events: dict[str, dict] = {}
    rejections: dict[str, int] = {}
    rows = (
        DailyEvents.objects.filter(brand=brand, day__gte=start, day__lte=end)
        .values("type", "status", "reason")
        .annotate(events=Sum("events"))
    )
    for row in rows:
        by_status = events.setdefault(row["type"], {"type": row["type"], "awarded": 0, "rejected": 0, "failed": 0})
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["events"]
        if row["status"] != "awarded":
            rejections[row["reason"]] = rejections.get(row["reason"], 0) + row["events"]
    return Dashboard(
        figures=figures(brand, start=start, end=end),
        active_weeks=[(row["week"], row["members"]) for row in active],
        members_by_tier=[(name or "No tier", members) for name, members in by_tier],
        events=sorted(events.values(), key=lambda row: row["type"]),
        rejections=sorted(rejections.items(), key=lambda item: (-item[1], item[0])),
    )
