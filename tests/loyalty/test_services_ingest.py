"""loyalty.services.ingest: what accepting answers and stores, position by position."""

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.api import _event_reload, _events_clean
from loyalty.models import Event
from loyalty.serializers import event_out
from loyalty.services.ingest import events_accept

pytestmark = pytest.mark.django_db


def clean(brand, *items: dict):
    checked = _events_clean(brand, list(items))
    assert [errors for _, errors in checked] == [None] * len(items)
    return [event for event, _ in checked]


PURCHASE = {"type": "purchase", "member": {"email": "A@Example.com"}, "order_id": "O-1", "amount": "5.5"}
CHECK_IN = {"type": "check_in", "member": {"external_id": "till-7"}, "idempotency_key": "ci-1"}
REFUND = {
    "type": "refund",
    "member": {"email": "a@example.com"},
    "order_id": "O-1",
    "amount": "2.00",
    "idempotency_key": "refund-O-1",
}
# Sent with an offset of its own: shown as stored (UTC), as a reload shows it.
TWO_DAYS_AGO = (dt.datetime.now(dt.timezone(dt.timedelta(hours=2))) - dt.timedelta(days=2)).isoformat()
PAST = {**PURCHASE, "order_id": "O-2", "occurred_at": TWO_DAYS_AGO, "location_id": "store 9"}


@pytest.mark.parametrize(
    "items",
    [
        [PURCHASE | {"currency": "USD"}],
        [CHECK_IN],
        [PURCHASE | {"currency": "USD"}, CHECK_IN, PAST | {"currency": "USD"}],
        [PURCHASE | {"currency": "USD"}, REFUND, CHECK_IN],  # a refund of a purchase in the same batch
    ],
    ids=["one purchase", "one custom event", "several", "several with a refund"],
)
def test_a_new_event_is_answered_with_what_the_api_shows_of_the_stored_row(coffee, items):
    answers = events_accept(brand=coffee, items=clean(coffee, *items))

    assert [answer.http_status for answer in answers] == [202] * len(items)
    for answer in answers:
        assert answer.body == event_out(_event_reload(answer.event_id))


def test_several_events_get_increasing_ids_in_the_order_sent_and_a_taken_key_is_answered_from_the_row(coffee):
    first = {**CHECK_IN, "idempotency_key": "k-1"}
    taken_before = events_accept(brand=coffee, items=clean(coffee, first))[0]
    items = [PURCHASE | {"currency": "USD", "order_id": f"O-{n}", "amount": str(n)} for n in range(1, 6)]
    items.insert(2, first)  # replayed from the stored row
    items.append(items[0])  # the same purchase twice in one batch: stored once

    answers = events_accept(brand=coffee, items=clean(coffee, *items))

    new = [answer for answer in answers if not answer.replayed]
    assert [answer.body["amount"] for answer in new] == ["1.00", "2.00", "3.00", "4.00", "5.00"]
    assert [answer.event_id for answer in new] == sorted(answer.event_id for answer in new)
    assert answers[2].replayed and answers[2].event_id == taken_before.event_id
    assert answers[-1].replayed and answers[-1].event_id == answers[0].event_id
    assert Event.objects.count() == 6
    assert Event.objects.get(pk=answers[1].event_id).amount == Decimal("2.00")
    assert Event.objects.get(pk=answers[0].event_id).occurred_at <= dt.datetime.now(dt.UTC)
