"""The economics rollups under concurrency, on real connections: redemptions of many members at once, a
member's own redemptions at once, and the event processor earning for the same members meanwhile. No
point or active member is counted twice or lost, and nothing deadlocks."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db.models import Sum

from config.errors import ApplicationError
from loyalty.models import DailyPoints, EarnRule, MemberWeek, WeeklyActive
from perks.services import perk_redeem
from tests.concurrency import run_concurrently
from tests.loyalty.events import accept, process
from tests.loyalty.factories import BrandFactory
from tests.perks.factories import PerkFactory, funded_membership

pytestmark = pytest.mark.django_db(transaction=True)


def total(kind: str, field: str = "points"):
    return DailyPoints.objects.filter(kind=kind).aggregate(n=Sum(field))["n"] or 0


def active_members() -> int:
    return WeeklyActive.objects.aggregate(n=Sum("members"))["n"] or 0


def test_redemptions_and_earning_at_once_are_each_counted_once():
    brand = BrandFactory(slug="busy")
    EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=1, currency="USD")
    perk = PerkFactory(brand=brand, cost=10, cash_value=Decimal("1.50"), cash_currency="USD")
    members = [funded_membership(brand=brand, points=30) for _ in range(24)]
    accept(
        brand,
        *[
            {"type": "purchase", "member": {"email": m.member.email}, "order_id": f"o-{m.pk}", "amount": "7.00",
             "currency": "USD"}
            for m in members
        ],
    )  # fmt: skip

    def call(index: int):
        if index == len(members):
            return process(brand)  # the processor earns for the same members meanwhile
        return perk_redeem(membership=members[index], perk=perk, request_key=uuid.uuid4().hex)

    outcomes = run_concurrently(call, len(members) + 1)

    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert failures == []
    assert (total("redeemed"), total("redeemed", "value")) == (240, Decimal("36.00"))
    assert total("issued") == 24 * 7
    assert total("adjusted") == 24 * 30
    assert MemberWeek.objects.count() == 24  # each member earned and redeemed: active once this week
    assert active_members() == 24


def test_one_members_redemptions_at_once_make_them_active_once():
    membership = funded_membership(points=55)
    perk = PerkFactory(brand=membership.brand, cost=10, cash_value=Decimal("2.00"), cash_currency="USD")

    outcomes = run_concurrently(
        lambda _: perk_redeem(membership=membership, perk=perk, request_key=uuid.uuid4().hex), 12
    )

    refused = [outcome for outcome in outcomes if isinstance(outcome, ApplicationError)]
    assert len(refused) == 7  # five perks of 10 in 55 points
    assert (total("redeemed"), total("redeemed", "value")) == (50, Decimal("10.00"))
    assert (MemberWeek.objects.count(), active_members()) == (1, 1)
