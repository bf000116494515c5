"""Points expire 6 months after the end of the month they were earned, oldest first (FIFO), exactly once."""

import datetime as dt

import pytest
from django.test import override_settings

from ledger.models import Account, Transaction
from loyalty.models import Event, Tier
from loyalty.selectors import membership_expiring
from tests.loyalty.events import accept, process
from tests.loyalty.lifecycle import (
    balance,
    books_clean,
    buy,
    expiry_set,
    membership_of,
    on,
    refund,
    run_lifecycle,
    spend,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def coffee6(coffee):
    expiry_set(coffee, 6)
    return coffee


def expired_account_balance(brand) -> int:
    return Account.objects.get(code=f"brand:{brand.pk}:expired").balance.balance


def test_points_earned_in_january_are_there_on_31_july_and_expire_once_on_1_august(coffee6):
    with on("2026-01-15"):
        buy(coffee6, "J-1", "100.00")

    run_lifecycle(coffee6, "2026-07-31")
    assert balance(coffee6) == 100

    out = run_lifecycle(coffee6, "2026-08-01")
    assert "expired 100 points of 1 members" in out
    assert balance(coffee6) == 0

    again = run_lifecycle(coffee6, "2026-08-01")
    assert "expired 0 points" in again
    run_lifecycle(coffee6, "2026-08-15")  # a later day of the same month finds nothing left either
    assert Transaction.objects.filter(kind="expiry").count() == 1
    assert membership_of(coffee6).lifetime_expired == 100
    assert expired_account_balance(coffee6) == 100
    books_clean()


def test_spending_takes_the_oldest_points_first_so_only_what_is_left_of_march_expires(coffee6):
    with on("2026-01-15"):
        buy(coffee6, "J-1", "100.00")
    with on("2026-03-10"):
        buy(coffee6, "M-1", "100.00")
    with on("2026-04-05"):
        spend(membership_of(coffee6), 150)
        # January's lot is spent; 50 of March are left and go on 1 October.
        assert membership_expiring(membership_of(coffee6)) == [{"points": 50, "on": dt.date(2026, 10, 1)}]

    run_lifecycle(coffee6, "2026-08-01")
    assert balance(coffee6) == 50
    assert not Transaction.objects.filter(kind="expiry").exists()

    run_lifecycle(coffee6, "2026-10-01")
    assert balance(coffee6) == 0
    assert membership_of(coffee6).lifetime_expired == 50
    books_clean()


def test_a_refund_of_a_purchase_whose_points_expired_takes_back_nothing_more(coffee6):
    with on("2026-01-15"):
        buy(coffee6, "J-1", "100.00")
    with on("2026-07-20"):
        buy(coffee6, "JUL-1", "30.00")
    run_lifecycle(coffee6, "2026-08-01")
    assert balance(coffee6) == 30

    with on("2026-08-03"):
        event = refund(coffee6, "J-1", "100.00")

    assert (event.status, event.points, event.unrecovered_points) == ("awarded", 0, 0)
    assert balance(coffee6) == 30  # July's points are not taken for January's refund
    books_clean()


def test_a_brand_whose_points_never_expire_expires_nothing(coffee):
    with on("2024-01-15"):
        buy(coffee, "OLD-1", "100.00")
    run_lifecycle(coffee, "2026-12-01")
    assert balance(coffee) == 100
    assert membership_expiring(membership_of(coffee)) == []


def test_a_tier_that_keeps_points_keeps_them_until_the_member_leaves_it(coffee6):
    Tier.objects.filter(brand=coffee6, name="Gold").update(points_never_expire=True)
    with on("2026-01-15"):
        buy(coffee6, "G-1", "600.00")  # Gold
    run_lifecycle(coffee6, "2026-08-01")
    assert balance(coffee6) == 600
    assert membership_of(coffee6).tier.name == "Gold"

    # A year on, the points no longer qualify for Gold: the member moves down, then their points expire.
    run_lifecycle(coffee6, "2027-01-01")
    assert membership_of(coffee6).tier.name == "Green"
    run_lifecycle(coffee6, "2027-01-02")
    assert balance(coffee6) == 0
    books_clean()


@override_settings(EVENT_MAX_AGE_DAYS=90)
def test_points_sent_after_their_month_expired_go_into_the_oldest_month_still_live(coffee):
    expiry_set(coffee, 1)  # July's points expire on 1 September
    with on("2026-09-10"):
        accept(
            coffee,
            {
                "type": "purchase",
                "member": {"email": "fan@example.com"},
                "order_id": "LATE-1",
                "amount": "10.00",
                "currency": "USD",
                "occurred_at": "2026-07-20T18:00:00+00:00",
            },
        )
        process(coffee)
    event = Event.objects.get(order_id="LATE-1")
    # Not July's lot, expired before the points arrived: August's, the oldest still live (until 1 October).
    assert Transaction.objects.get(pk=event.ledger_transaction_id).metadata["lot"] == "2026-08-01"
    run_lifecycle(coffee, "2026-09-11")
    assert balance(coffee) == 10
    run_lifecycle(coffee, "2026-10-01")
    assert balance(coffee) == 0


def test_shortening_the_months_mid_month_expires_what_the_new_months_say_in_a_second_expiry(coffee6):
    with on("2026-01-15"):
        buy(coffee6, "J-1", "100.00")
    with on("2026-02-15"):
        buy(coffee6, "F-1", "100.00")
    run_lifecycle(coffee6, "2026-08-01")  # January's 100 go
    assert balance(coffee6) == 100

    with on("2026-08-10"):
        coffee6.points_expire_months = 5  # February's points now expired on 1 August too
        coffee6.save()
    run_lifecycle(coffee6, "2026-08-10")

    assert balance(coffee6) == 0
    assert Transaction.objects.filter(kind="expiry").count() == 2
    books_clean()


def test_switching_expiry_on_does_not_expire_at_once_what_was_earned_before(coffee):
    with on("2026-01-15"):
        buy(coffee, "J-1", "100.00")  # points that never expired when they were earned
    with on("2026-09-10"):
        coffee.points_expire_months = 6
        coffee.save()
        assert membership_expiring(membership_of(coffee)) == [{"points": 100, "on": dt.date(2027, 4, 1)}]
    run_lifecycle(coffee, "2026-10-01")
    assert balance(coffee) == 100
    run_lifecycle(coffee, "2027-04-01")  # as if earned in September, when expiry was switched on
    assert balance(coffee) == 0


def test_points_of_a_cancelled_redemption_come_back_as_points_of_the_month_they_came_back(coffee6):
    from perks.services import redemption_cancel

    with on("2026-01-15"):
        buy(coffee6, "J-1", "100.00")
    with on("2026-02-10"):
        made = spend(membership_of(coffee6), 50)
    with on("2026-05-05"):
        redemption_cancel(redemption=made.redemption)
    assert balance(coffee6) == 100

    run_lifecycle(coffee6, "2026-08-01")  # what is left of January: the 50 not spent back then
    assert balance(coffee6) == 50
    run_lifecycle(coffee6, "2026-12-01")  # the 50 that came back in May
    assert balance(coffee6) == 0
    books_clean()
