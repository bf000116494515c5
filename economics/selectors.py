"""What a brand's points are worth and what its program returns: reads only, nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from loyalty.models import Brand, EarnRule, Tier
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
