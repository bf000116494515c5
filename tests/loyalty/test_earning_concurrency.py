"""The rules that protect points hold when many workers process at once (threads, real connections)."""

import pytest

from config.errors import ApplicationError
from ledger.models import Transaction
from loyalty.models import Event, Membership
from loyalty.selectors import membership_balance
from loyalty.services.earning import MemberRef, adjustment_create, event_ingest, event_process
from loyalty.signals import event_processed
from tests.concurrency import run_concurrently
from tests.loyalty.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(function, items):
    """function(item) for every item, each on its own thread and connection, all at once."""
    results = run_concurrently(lambda index: function(items[index]), len(items))
    errors = [result for result in results if isinstance(result, Exception)]
    if errors:
        raise errors[0]
    return results


def test_ten_check_ins_processed_at_once_award_exactly_the_daily_cap(coffee):
    membership = MembershipFactory(brand=coffee)
    events = [
        event_ingest(brand=coffee, type="check_in", member=MemberRef(email=membership.member.email)) for _ in range(10)
    ]

    in_threads(lambda event: event_process(event_id=event.pk), events)

    statuses = sorted(Event.objects.filter(membership=membership).values_list("status", "reason"))
    assert statuses.count(("awarded", "")) == 1
    assert statuses.count(("rejected", "cap_reached")) == 9
    assert membership_balance(Membership.objects.get(pk=membership.pk)) == 5


def test_one_event_processed_by_five_workers_at_once_credits_once(coffee):
    event = event_ingest(
        brand=coffee,
        type="purchase",
        member=MemberRef(email="twice@example.com"),
        order_id="T-1",
        amount=12,
        currency="USD",
    )

    in_threads(lambda _: event_process(event_id=event.pk), list(range(5)))

    event.refresh_from_db()
    assert (event.status, event.points) == ("awarded", 12)
    assert Transaction.objects.filter(kind="earn").count() == 1
    assert membership_balance(Membership.objects.get(pk=event.membership_id)) == 12


def test_concurrent_purchases_of_one_member_all_count_towards_the_tier(coffee):
    events = [
        event_ingest(
            brand=coffee,
            type="purchase",
            member=MemberRef(email="busy@example.com"),
            order_id=f"B-{n}",
            amount=100,
            currency="USD",
        )
        for n in range(6)
    ]

    in_threads(lambda event: event_process(event_id=event.pk), events)

    membership = Membership.objects.get(member__email="busy@example.com")
    # Serialized per member: five at Green reach exactly 500 (Gold), the sixth earns at 1.2.
    assert membership_balance(membership) == 5 * 100 + 120
    assert membership.tier.name == "Gold"
    assert membership.lifetime_earned == 620


def test_event_processed_fires_once_and_only_after_commit(coffee):
    seen = []

    def receiver(sender, event, **kwargs):
        # After commit: a fresh connection (another thread) already sees the outcome.
        seen.append(in_threads(lambda _: Event.objects.get(pk=event.pk).status, [0])[0])

    event_processed.connect(receiver)
    try:
        event = event_ingest(brand=coffee, type="check_in", member=MemberRef(email="sig@example.com"))
        event_process(event_id=event.pk)
        event_process(event_id=event.pk)
    finally:
        event_processed.disconnect(receiver)
    assert seen == ["awarded"]


def test_concurrent_refunds_of_one_order_never_take_back_more_than_was_bought(coffee):
    purchase = event_ingest(
        brand=coffee,
        type="purchase",
        member=MemberRef(email="ref@example.com"),
        order_id="R-1",
        amount=10,
        currency="USD",
    )
    event_process(event_id=purchase.pk)
    # Each passes the check at ingest (4.00 <= 10.00 left); processing must hold the line under the locks.
    refunds = [
        event_ingest(brand=coffee, type="refund", member=MemberRef(email="ref@example.com"), order_id="R-1", amount=4)
        for _ in range(5)
    ]

    in_threads(lambda refund: event_process(event_id=refund.pk), refunds)

    outcomes = sorted(Event.objects.filter(type="refund").values_list("status", "reason"))
    assert outcomes.count(("awarded", "")) == 2
    assert outcomes.count(("rejected", "refund_exceeds_purchase")) == 3
    purchase.refresh_from_db()
    assert purchase.refunded_amount == 8
    assert purchase.refunded_points == 8  # floor(10 x 8 / 10)
    assert membership_balance(Membership.objects.get(pk=purchase.membership_id)) == 2


def test_concurrent_negative_adjustments_never_overdraw_the_wallet(coffee):
    membership = MembershipFactory(brand=coffee)
    adjustment_create(membership=membership, points=100, reason="seed", idempotency_key="seed")

    def remove(index):
        try:
            adjustment_create(membership=membership, points=-30, reason="fix", idempotency_key=f"fix-{index}")
            return "ok"
        except ApplicationError as error:
            return error.code

    outcomes = in_threads(remove, list(range(10)))

    assert outcomes.count("ok") == 3
    assert set(outcomes) == {"ok", "insufficient_points"}
    assert membership_balance(Membership.objects.get(pk=membership.pk)) == 10
