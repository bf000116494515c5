"""A fan redeems a perk in real Chromium: confirm, see the code, find it in "my rewards", balance lower."""

import re

import pytest
from playwright.sync_api import expect

from tests.loyalty.factories import DEFAULT_PASSWORD, BrandFactory, UserFactory
from tests.perks.factories import PerkFactory, funded_membership

pytestmark = pytest.mark.django_db(transaction=True)


def test_fan_redeems_a_perk_with_confirmation_and_keeps_the_code(page):
    brand = BrandFactory(name="Bean & Leaf", slug="coffee", points_name="Stars")
    user = UserFactory(email="fan@example.com")
    funded_membership(brand=brand, points=150, member__user=user, member__email=user.email)
    PerkFactory(brand=brand, name="$2 off", cost=60)

    page.goto("/login/?next=/b/coffee/perks/")
    page.get_by_label("Email").fill("fan@example.com")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_test_id("balance")).to_have_text("150")
    page.get_by_role("link", name="Redeem").click()
    expect(page.get_by_role("heading", name="Redeem $2 off?")).to_be_visible()
    expect(page.get_by_test_id("balance-after")).to_have_text("90")
    page.get_by_role("button", name=re.compile("Confirm: spend 60 Stars")).click()

    code = page.get_by_test_id("voucher-code")
    expect(code).to_have_text(re.compile(r"^[0-9A-Z]{4} [0-9A-Z]{4} [0-9A-Z]{4}$"))
    voucher = code.inner_text().replace(" ", "")
    expect(page.get_by_test_id("balance")).to_have_text("90")

    page.get_by_role("link", name="My rewards").click()
    expect(page.get_by_text(voucher)).to_be_visible()
    page.goto("/b/coffee/perks/")
    expect(page.get_by_test_id("balance")).to_have_text("90")
