"""Purchase points inside a return window are pending: not spendable, cancelled by a refund in the window,
released to the wallet by the lifecycle job when it ends."""

import datetime as dt

import pytest

from ledger.models import Transaction
from loyalty.models import EarnRule, Event, Membership
from perks.services import RedemptionRefusedError
from tests.loyalty.events import accept, process
from tests.loyalty.lifecycle import balance, books_clean, buy, membership_of, on, pending, refund, run_lifecycle, spend

pytestmark = pytest.mark.django_db


@pytest.fixture
def coffee14(coffee):
    EarnRule.objects.filter(brand=coffee, event_type="purchase").update(pending_days=14)
    return coffee


def test_a_purchase_is_pending_unspendable_cancelled_by_a_refund_and_another_released_on_day_15(coffee14):
    with on("2026-03-02"):  # day 1
        first = buy(coffee14, "P-1", "50.00")
        second = buy(coffee14, "P-2", "40.00")
    assert first.pending_until == dt.date(2026, 3, 16)
    assert (balance(coffee14), pending(coffee14)) == (0, 90)
    with pytest.raises(RedemptionRefusedError):
        spend(membership_of(coffee14), 10)

    with on("2026-03-04"):  # day 3: the first is returned inside its window
        returned = refund(coffee14, "P-1", "50.00")
    assert (returned.points, returned.unrecovered_points) == (-50, 0)
    assert (balance(coffee14), pending(coffee14)) == (0, 40)

    run_lifecycle(coffee14, "2026-03-15")  # day 14: still inside the window
    assert (balance(coffee14), pending(coffee14)) == (0, 40)
    out = run_lifecycle(coffee14, "2026-03-16")  # day 15
    assert "released 40 pending points of 1 members" in out
    assert (balance(coffee14), pending(coffee14)) == (40, 0)
    run_lifecycle(coffee14, "2026-03-17")
    assert Transaction.objects.filter(kind="release").count() == 1
    assert second.pending_until == dt.date(2026, 3, 16)
    # Lifetime counts what was earned (the refund took 50 back), once.
    assert membership_of(coffee14).lifetime_earned == 40
    books_clean()


def test_a_refund_after_the_release_takes_the_points_back_from_the_wallet(coffee14):
    with on("2026-03-02"):
        buy(coffee14, "P-1", "50.00")
    run_lifecycle(coffee14, "2026-03-16")
    assert balance(coffee14) == 50

    with on("2026-03-20"):
        returned = refund(coffee14, "P-1", "20.00")

    assert (returned.points, returned.unrecovered_points) == (-20, 0)
    assert (balance(coffee14), pending(coffee14)) == (30, 0)
    assert membership_of(coffee14).lifetime_earned == 30
    books_clean()


def test_the_member_api_shows_pending_points(coffee14, coffee_api):
    with on("2026-03-02"):
        buy(coffee14, "P-1", "50.00")
        membership = Membership.objects.get(brand=coffee14)
        body = coffee_api.get(f"/api/v1/members/{membership.pk}").json()
    assert (body["balance"], body["pending"]) == (0, 50)


def test_a_window_of_0_days_makes_purchase_points_spendable_at_once(coffee):
    with on("2026-03-02"):
        event = buy(coffee, "P-1", "50.00")
    assert event.pending_until is None
    assert (balance(coffee), pending(coffee)) == (50, 0)


def test_a_purchase_that_reaches_us_after_its_window_ended_is_spendable_at_once(coffee14):
    with on("2026-03-02"):
        buy(coffee14, "P-1", "50.00")
    run_lifecycle(coffee14, "2026-03-16")  # P-1's day is released
    with on("2026-03-20"):
        accept(
            coffee14,
            {
                "type": "purchase",
                "member": {"email": "fan@example.com"},
                "order_id": "LATE-1",
                "amount": "40.00",
                "currency": "USD",
                "occurred_at": "2026-03-02T18:00:00+00:00",  # the same day as P-1: its window is over
            },
        )
        process(coffee14)
    late = Event.objects.get(order_id="LATE-1")
    assert (late.status, late.pending_until) == ("awarded", None)
    assert (balance(coffee14), pending(coffee14)) == (90, 0)
    with on("2026-03-21"):
        returned = refund(coffee14, "LATE-1", "40.00")
    assert (returned.points, balance(coffee14)) == (-40, 50)
    books_clean()
