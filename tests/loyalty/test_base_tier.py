"""Every membership starts in its brand's entry tier (the one that asks for no points)."""

import io

import pytest
from django.core.management import call_command

from loyalty.models import Membership, Tier
from loyalty.services.members import member_get_or_create_by_email, membership_join
from tests.loyalty.events import accept, process
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db


def test_a_fan_who_joins_is_in_the_entry_tier_before_earning_anything(coffee):
    membership = membership_join(member=member_get_or_create_by_email(email="new@example.com"), brand=coffee)

    assert membership.tier.name == "Green"


def test_a_member_a_till_enrolled_with_a_refused_event_is_in_the_entry_tier(coffee):
    body = {"type": "purchase", "member": {"email": "till@example.com"}, "order_id": "E-1", "amount": "5.00"}
    accept(coffee, body | {"currency": "EUR"})  # the brand earns on USD: refused, nothing awarded

    process(coffee)

    membership = Membership.objects.select_related("tier").get(member__email="till@example.com")
    assert membership.events.get().reason == "currency_mismatch"
    assert membership.tier.name == "Green"


def test_a_brand_whose_first_tier_must_be_earned_gives_no_tier_on_joining():
    brand = BrandFactory()
    Tier.objects.create(brand=brand, name="Silver", rank=1, threshold=100)

    membership = membership_join(member=member_get_or_create_by_email(email="s@example.com"), brand=brand)

    assert membership.tier is None


def test_the_demo_fan_is_in_the_coffee_entry_tier():
    call_command("demo", stdout=io.StringIO())

    membership = Membership.objects.select_related("tier").get(member__email="fan@tally.example", brand__slug="coffee")
    assert membership.tier.name == "Green"
