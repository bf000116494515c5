"""The rules that protect points hold when many workers process at once (threads, real connections)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from ledger.models import Transaction
from loyalty.models import Event, Membership
from loyalty.selectors import membership_balance
from loyalty.services.earning import MemberRef, event_ingest, event_process
from loyalty.signals import event_processed
from tests.loyalty.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(function, items, workers=10):
    def run(item):
        try:
            return function(item)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, items))


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

    in_threads(lambda _: event_process(event_id=event.pk), range(5), workers=5)

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

    in_threads(lambda event: event_process(event_id=event.pk), events, workers=6)

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
