"""The rounding rules of earning, next to nothing else: pure functions the engine and the tests share."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal


def purchase_points(*, amount: Decimal, points_per_unit: Decimal, multiplier: Decimal) -> int:
    """floor(amount x rate x tier multiplier).

    Rounded DOWN to a whole point (ROUND_FLOOR), in exact Decimal arithmetic, never float: a member is
    never credited a point they did not fully earn, and $5.50 at 1 Star/$1 x1.2 is floor(6.6) = 6.
    """
    return int((amount * points_per_unit * multiplier).to_integral_value(rounding=ROUND_FLOOR))


def refund_points_due(*, awarded: int, purchase_amount: Decimal, refunded_total: Decimal) -> int:
    """How many of a purchase's points all its refunds so far take back: floor(awarded x refunded / amount).

    Computed on the running total, not per refund, so partial refunds add up exactly and a refund of
    the whole amount takes back exactly what was awarded. Rounded DOWN: never more than awarded.
    """
    return int((awarded * refunded_total / purchase_amount).to_integral_value(rounding=ROUND_FLOOR))
