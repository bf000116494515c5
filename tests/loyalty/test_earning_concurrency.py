"""The rules that protect points hold when many workers process at once (threads, real connections).

Processing is serialized per brand by its processing lock, but correctness must not rest on it: the
tests that call events_process_batch directly bypass it, and the row locks and ledger keys still hold.
"""

import itertools

import pytest

from config.errors import ApplicationError
from ledger.models import Transaction
from loyalty.models import Event, Membership
from loyalty.selectors import membership_balance
from loyalty.services.earning import adjustment_create
from loyalty.services.processing import events_process_batch
from loyalty.signals import events_processed
from tests.concurrency import run_concurrently
from tests.loyalty.events import accept, accept_one, process
from tests.loyalty.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(function, items):
    """function(item) for every item, each on its own thread and connection, all at once."""
    results = run_concurrently(lambda index: function(items[index]), len(items))
    errors = [result for result in results if isinstance(result, Exception)]
    if errors:
        raise errors[0]
    return results


_check_in_keys = itertools.count()


def check_in(email: str) -> dict:
    return {"type": "check_in", "member": {"email": email}, "idempotency_key": f"ci-{next(_check_in_keys)}"}


def purchase(email: str, order_id: str, amount: str) -> dict:
    return {"type": "purchase", "member": {"email": email}, "order_id": order_id, "amount": amount, "currency": "USD"}


def test_ten_batches_at_once_over_ten_check_ins_award_exactly_the_daily_cap(coffee):
    membership = MembershipFactory(brand=coffee)
    accept(coffee, *[check_in(membership.member.email) for _ in range(10)])

    # Every thread claims the same ten events; the row locks let one process them, the others none.
    in_threads(lambda _: events_process_batch(brand_id=coffee.pk, limit=10), list(range(10)))

    statuses = sorted(Event.objects.filter(membership=membership).values_list("status", "reason"))
    assert statuses.count(("awarded", "")) == 1
    assert statuses.count(("rejected", "cap_reached")) == 9
    assert membership_balance(Membership.objects.get(pk=membership.pk)) == 5
    assert Transaction.objects.filter(kind="earn").count() == 1


def test_ten_drains_at_once_award_exactly_the_daily_cap(coffee):
    membership = MembershipFactory(brand=coffee)
    accept(coffee, *[check_in(membership.member.email) for _ in range(10)])

    in_threads(lambda _: process(coffee, batch_size=1), list(range(10)))

    statuses = sorted(Event.objects.filter(membership=membership).values_list("status", "reason"))
    assert statuses == [("awarded", "")] + [("rejected", "cap_reached")] * 9
    assert membership_balance(Membership.objects.get(pk=membership.pk)) == 5


def test_one_event_processed_by_five_workers_at_once_credits_once(coffee):
    event = accept_one(coffee, purchase("twice@example.com", "T-1", "12"))

    in_threads(lambda _: events_process_batch(brand_id=coffee.pk, limit=1), list(range(5)))

    event.refresh_from_db()
    assert (event.status, event.points) == ("awarded", 12)
    assert Transaction.objects.filter(kind="earn").count() == 1
    assert membership_balance(Membership.objects.get(pk=event.membership_id)) == 12


def test_concurrent_purchases_of_one_member_all_count_towards_the_tier_in_order(coffee):
    accept(coffee, *[purchase("busy@example.com", f"B-{n}", "100") for n in range(6)])

    in_threads(lambda _: process(coffee, batch_size=1), list(range(6)))

    membership = Membership.objects.get(member__email="busy@example.com")
    # In event order: five at Green reach exactly 500 (Gold), the sixth earns at 1.2.
    assert membership_balance(membership) == 5 * 100 + 120
    assert membership.tier.name == "Gold"
    assert membership.lifetime_earned == 620
    assert list(Event.objects.order_by("id").values_list("points", flat=True)) == [100] * 5 + [120]


def test_events_processed_is_sent_once_per_batch_and_only_after_commit(coffee):
    seen = []

    def receiver(sender, events, **kwargs):
        # After commit: a fresh connection (another thread) already sees the outcome.
        seen.append(in_threads(lambda event: Event.objects.get(pk=event.pk).status, events))

    events_processed.connect(receiver)
    try:
        accept(coffee, check_in("sig@example.com"), purchase("sig@example.com", "S-1", "3"))
        process(coffee)
        process(coffee)
    finally:
        events_processed.disconnect(receiver)
    assert seen == [["awarded", "awarded"]]


def test_concurrent_refunds_of_one_order_never_take_back_more_than_was_bought(coffee):
    accept_one(coffee, purchase("ref@example.com", "R-1", "10"))
    process(coffee)
    refund = {"type": "refund", "member": {"email": "ref@example.com"}, "order_id": "R-1", "amount": "4"}
    # Each passes the check at accept (4.00 <= 10.00 left); processing must hold the line under the locks.
    answers = [accept(coffee, {**refund, "idempotency_key": f"r-{n}"})[0] for n in range(5)]
    assert [answer.http_status for answer in answers] == [202] * 5

    in_threads(lambda _: process(coffee, batch_size=1), list(range(5)))

    outcomes = sorted(Event.objects.filter(type="refund").values_list("status", "reason"))
    assert outcomes == [("awarded", "")] * 2 + [("rejected", "refund_exceeds_purchase")] * 3
    purchase_event = Event.objects.get(type="purchase")
    assert purchase_event.refunded_amount == 8
    assert purchase_event.refunded_points == 8  # floor(10 x 8 / 10)
    assert membership_balance(Membership.objects.get(pk=purchase_event.membership_id)) == 2


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
