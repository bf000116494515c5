"""A fan spends open network points in real Chromium on a phone-sized screen: LTZ earned at the web shop
buy the artist's signed poster, with a confirmation, and the voucher shows what is left."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from loyalty.models import Brand, EarnRule, Member, Network
from perks.models import Perk
from tests.loyalty.factories import DEFAULT_PASSWORD, UserFactory
from tests.loyalty.lifecycle import buy

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_fan_redeems_a_network_perk_of_another_brand_with_ltz_earned_at_the_shop(page):
    network = Network.objects.create(name="Open network", slug="open", unit="LTZ")
    shop = Brand.objects.create(name="Web Shop", slug="shop", network=network)
    EarnRule.objects.create(brand=shop, event_type="purchase", network_points_per_unit=Decimal("10"), currency="USD")
    artist = Brand.objects.create(name="Nova Lane", slug="artist", network=network)
    Perk.objects.create(brand=artist, name="Signed poster", cost=500, stock=50, is_network_perk=True)
    user = UserFactory(email="fan@example.com")
    Member.objects.create(email="fan@example.com", user=user)
    buy(shop, "S-1", "100.00", member={"email": "fan@example.com"})

    page.goto("/login/?next=/network/")
    page.get_by_label("Email").fill("fan@example.com")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_test_id("network-balance")).to_have_text("1000")
    expect(page.get_by_text("from Nova Lane")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="Redeem").click()
    expect(page.get_by_test_id("balance-after")).to_have_text("500")
    page.get_by_role("button", name="Confirm: spend 500 LTZ").click()

    expect(page.get_by_test_id("voucher-code")).to_have_text(re.compile(r"^[0-9A-Z]{4} [0-9A-Z]{4} [0-9A-Z]{4}$"))
    expect(page.get_by_test_id("balance")).to_have_text("500")
    page.goto("/network/")
    expect(page.get_by_test_id("network-balance")).to_have_text("500")
