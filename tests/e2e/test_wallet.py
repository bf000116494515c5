"""A fan opens their wallet on a phone-sized screen (390x844) in real Chromium: every figure is there and
nothing is wider than the screen."""

import pytest
from playwright.sync_api import expect

from loyalty.models import Member
from tests.loyalty.factories import DEFAULT_PASSWORD, UserFactory
from tests.loyalty.lifecycle import EMAIL, buy, check_in, expiry_set

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_fan_sees_balance_expiring_points_and_tier_progress_on_a_phone(page, coffee):
    expiry_set(coffee, 6)
    user = UserFactory(email=EMAIL)
    Member.objects.create(email=EMAIL, user=user)
    buy(coffee, "A-1", "120.00")
    check_in(coffee)

    page.goto("/login/?next=/b/coffee/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="My Stars: pending, expiring, history").click()

    expect(page.get_by_test_id("balance")).to_have_text("125")
    expect(page.get_by_test_id("expiring")).to_contain_text("125 Stars on")
    expect(page.get_by_role("progressbar", name="Progress to Gold")).to_be_visible()
    expect(page.get_by_test_id("tier-progress")).to_have_text("125 of 500 qualifying Stars: 375 to go.")
    expect(page.get_by_test_id("history").get_by_text("Purchase A-1")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
