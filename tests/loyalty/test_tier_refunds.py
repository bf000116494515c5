"""A refund takes back the tier its purchase bought, at once (Coffee: Green 0, Gold 500, Reserve 2,500)."""

import pytest

from loyalty.models import Membership
from tests.loyalty.events import accept, process

pytestmark = pytest.mark.django_db

MEMBER = {"email": "t@example.com"}


def buy(brand, order_id: str, amount: str) -> None:
    accept(brand, {"type": "purchase", "member": MEMBER, "order_id": order_id, "amount": amount, "currency": "USD"})
    process(brand)


def refund(brand, order_id: str, amount: str, key: str) -> None:
    body = {"type": "refund", "member": MEMBER, "order_id": order_id, "amount": amount, "idempotency_key": key}
    accept(brand, body)
    process(brand)


def tier_of(brand) -> str | None:
    membership = Membership.objects.select_related("tier").get(brand=brand, member__email=MEMBER["email"])
    return membership.tier.name if membership.tier else None


def test_a_full_refund_of_the_purchase_that_bought_gold_moves_the_member_back_to_green(coffee):
    buy(coffee, "A-1", "100.00")
    buy(coffee, "A-2", "450.00")
    assert tier_of(coffee) == "Gold"

    refund(coffee, "A-2", "450.00", "r-1")

    assert tier_of(coffee) == "Green"


def test_a_partial_refund_keeps_the_tier_while_the_points_left_still_reach_it(coffee):
    buy(coffee, "B-1", "600.00")
    assert tier_of(coffee) == "Gold"

    refund(coffee, "B-1", "50.00", "r-1")  # 550 qualifying points left
    assert tier_of(coffee) == "Gold"

    refund(coffee, "B-1", "60.00", "r-2")  # 490 left
    assert tier_of(coffee) == "Green"


def test_a_refund_drops_a_member_only_as_far_as_the_points_left_reach(coffee):
    buy(coffee, "C-1", "2600.00")
    assert tier_of(coffee) == "Reserve"

    refund(coffee, "C-1", "2000.00", "r-1")  # 600 left

    assert tier_of(coffee) == "Gold"
