"""Tiers are re-qualified over the brand's window; members move down by the brand's policy; every change
is recorded. Coffee: Green 0, Gold 500, Reserve 2,500, a rolling 12 months."""

import datetime as dt

import pytest

from loyalty.models import Brand, Membership, Tier, TierChange
from loyalty.services.lifecycle import tiers_evaluate
from tests.loyalty.lifecycle import buy, membership_of, on, refund, run_lifecycle

pytestmark = pytest.mark.django_db


def tier(brand) -> str:
    return membership_of(brand).tier.name


def changes(brand) -> list[tuple[str, str, str]]:
    return [
        (change.from_name, change.to_name, change.reason)
        for change in TierChange.objects.filter(membership__brand=brand).order_by("created_at", "id")
    ]


def test_at_once_a_gold_member_whose_qualifying_points_left_the_window_moves_down_to_green(coffee):
    with on("2026-01-15"):
        buy(coffee, "G-1", "600.00")
    assert tier(coffee) == "Gold"
    assert membership_of(coffee).tier_valid_until is None

    run_lifecycle(coffee, "2026-12-31")  # January 2026 is still in the window
    assert tier(coffee) == "Gold"
    out = run_lifecycle(coffee, "2027-01-01")
    assert "tiers: 0 up, 1 down" in out
    assert tier(coffee) == "Green"
    assert changes(coffee)[-2:] == [("Green", "Gold", "earned"), ("Gold", "Green", "requalification")]
    run_lifecycle(coffee, "2027-01-02")
    assert len(changes(coffee)) == 2


def test_at_the_end_of_the_period_the_tier_is_kept_until_its_date_then_moves_down(coffee):
    coffee.tier_downgrade = Brand.TierDowngrade.END_OF_PERIOD
    coffee.save()
    with on("2026-01-15"):
        buy(coffee, "G-1", "600.00")
    membership = membership_of(coffee)
    assert membership.tier.name == "Gold"
    assert membership.tier_valid_until == dt.date(2027, 1, 31)

    out = run_lifecycle(coffee, "2027-01-15")
    assert "1 kept until their date" in out
    assert tier(coffee) == "Gold"
    run_lifecycle(coffee, "2027-02-01")
    assert tier(coffee) == "Green"


def test_a_calendar_year_tier_is_kept_through_the_following_year(coffee):
    coffee.tier_window = Brand.TierWindow.CALENDAR_YEAR
    coffee.tier_downgrade = Brand.TierDowngrade.END_OF_PERIOD
    coffee.save()
    with on("2026-03-10"):
        buy(coffee, "G-1", "600.00")
    assert membership_of(coffee).tier_valid_until == dt.date(2027, 12, 31)

    run_lifecycle(coffee, "2027-06-01")  # no points in 2027, but Gold is kept through 2027
    assert tier(coffee) == "Gold"
    run_lifecycle(coffee, "2028-01-01")
    assert tier(coffee) == "Green"


def test_re_qualifying_extends_the_kept_tier(coffee):
    coffee.tier_downgrade = Brand.TierDowngrade.END_OF_PERIOD
    coffee.save()
    with on("2026-01-15"):
        buy(coffee, "G-1", "600.00")
    with on("2026-11-20"):
        buy(coffee, "G-2", "550.00")  # Gold again on this year's points
    run_lifecycle(coffee, "2026-12-01")
    assert membership_of(coffee).tier_valid_until == dt.date(2027, 12, 31)
    run_lifecycle(coffee, "2027-11-15")  # November 2026 left the window too, but Gold is kept until its date
    assert tier(coffee) == "Gold"
    run_lifecycle(coffee, "2028-01-01")
    assert tier(coffee) == "Green"


def test_a_fully_refunded_purchase_that_made_someone_reserve_moves_them_back_at_once_whatever_the_policy(coffee):
    coffee.tier_downgrade = Brand.TierDowngrade.END_OF_PERIOD
    coffee.save()
    with on("2026-05-01"):
        buy(coffee, "A-1", "600.00")
        buy(coffee, "A-2", "2000.00")
        assert tier(coffee) == "Reserve"
        refund(coffee, "A-2", "2000.00")
    assert tier(coffee) == "Gold"
    assert changes(coffee)[-1] == ("Reserve", "Gold", "refund")


def test_editing_a_threshold_re_evaluates_members_by_the_same_rules(coffee):
    with on("2026-05-01"):
        buy(coffee, "A-1", "400.00")
        assert tier(coffee) == "Green"
        Tier.objects.filter(brand=coffee, name="Gold").update(threshold=300)
        report = tiers_evaluate(brand=coffee, as_of=dt.date(2026, 5, 1))
    assert report.tiers_up == 1
    assert tier(coffee) == "Gold"


def test_the_member_api_shows_tier_since_until_and_changes(coffee, coffee_api):
    coffee.tier_downgrade = Brand.TierDowngrade.END_OF_PERIOD
    coffee.save()
    with on("2026-01-15"):
        buy(coffee, "G-1", "600.00")
        membership = Membership.objects.get(brand=coffee)
        body = coffee_api.get(f"/api/v1/members/{membership.pk}").json()
    assert body["tier"]["name"] == "Gold"
    assert body["tier_since"].startswith("2026-01-15")
    assert body["tier_valid_until"] == "2027-01-31"
    assert body["tier_changes"][0]["from"] == "Green"
    assert body["tier_changes"][0]["to"] == "Gold"
    assert body["tier_changes"][0]["reason"] == "earned"


def test_a_calendar_year_window_counts_every_month_of_the_year_when_points_are_earned(coffee):
    coffee.tier_window = Brand.TierWindow.CALENDAR_YEAR
    coffee.tier_window_months = 3  # what a rolling window would use: not this one
    coffee.save()
    with on("2026-01-10"):
        buy(coffee, "A-1", "300.00")
    with on("2026-06-10"):
        buy(coffee, "A-2", "250.00")  # 550 this year: Gold
        assert tier(coffee) == "Gold"
        refund(coffee, "A-2", "40.00")  # 510 left this year: still Gold
    assert tier(coffee) == "Gold"


def test_the_entry_tier_keeps_no_date_and_is_never_extended(coffee):
    coffee.tier_downgrade = Brand.TierDowngrade.END_OF_PERIOD
    coffee.save()
    with on("2026-01-15"):
        buy(coffee, "A-1", "10.00")
    run_lifecycle(coffee, "2026-02-01")
    membership = membership_of(coffee)
    assert (membership.tier.name, membership.tier_valid_until) == ("Green", None)
