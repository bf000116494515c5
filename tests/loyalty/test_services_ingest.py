"""loyalty.services.ingest: what accepting answers and stores, position by position."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.api import _event_reload, _events_clean
from loyalty.models import Event
from loyalty.selectors import _EVENT_IDS_SQL, events_by_keys
from loyalty.serializers import event_out
from loyalty.services.ingest import events_accept
from tests.loyalty.factories import BrandFactory
from tests.plans import generic_plan, table_scans

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


def test_stored_events_are_found_by_key_and_order_id_and_each_lookup_probes_its_unique_index(coffee):
    """Retries and refunds look up the events they name: each by its own key in the unique index, even
    with the statistics of a young table (a prepared statement keeps the plan it made then), not by
    filtering all of the brand's events."""
    now = timezone.now()
    with connection.cursor() as cursor:  # statistics of a nearly empty table
        cursor.execute(f"ANALYZE {Event._meta.db_table}")
    events_accept(brand=coffee, items=clean(coffee, PURCHASE | {"currency": "USD"}, CHECK_IN))
    Event.objects.bulk_create(
        Event(brand=coffee, type="purchase", order_id=f"old-{n}", idempotency_key=f"key-{n}", occurred_at=now)
        for n in range(2000)
    )

    found = events_by_keys(brand_id=coffee.pk, keys=["ci-1", "key-7", "unknown"], orders=["O-1", "old-9", "nope"])

    assert sorted((event.idempotency_key or "", event.order_id) for event in found) == [
        ("", "O-1"),
        ("ci-1", ""),
        ("key-7", "old-7"),
        ("key-9", "old-9"),
    ]
    params = [["ci-1"], coffee.pk, ["O-1"], coffee.pk]
    scans = [scan for scan in table_scans(generic_plan(_EVENT_IDS_SQL, params)) if scan[1] == Event._meta.db_table]
    assert len(scans) == 2, scans
    assert all(kind == "Index Scan" for kind, _, _ in scans), scans
    assert any("= k.key" in condition for _, _, condition in scans), scans
    assert any("= o.order_id" in condition for _, _, condition in scans), scans


def test_another_brands_events_with_the_same_key_and_order_id_are_never_found_or_replayed(coffee):
    """Brand isolation on the lookups by key: a retry or refund of one brand never finds another brand's
    event with the same idempotency key or order id."""
    other = BrandFactory()
    theirs = Event.objects.bulk_create(
        [
            Event(brand=other, type="purchase", order_id="O-1", occurred_at=timezone.now()),
            Event(brand=other, type="check_in", idempotency_key="ci-1", occurred_at=timezone.now()),
        ]
    )

    assert events_by_keys(brand_id=coffee.pk, keys=["ci-1"], orders=["O-1"]) == []
    ours = events_accept(brand=coffee, items=clean(coffee, PURCHASE | {"currency": "USD"}, CHECK_IN))
    again = events_accept(brand=coffee, items=clean(coffee, PURCHASE | {"currency": "USD"}, CHECK_IN))

    assert [answer.replayed for answer in ours] == [False, False]
    assert [answer.replayed for answer in again] == [True, True]
    assert [answer.event_id for answer in again] == [answer.event_id for answer in ours]
    assert not {answer.event_id for answer in ours} & {event.pk for event in theirs}
    found = events_by_keys(brand_id=coffee.pk, keys=["ci-1"], orders=["O-1"])
    assert sorted(event.pk for event in found) == sorted(answer.event_id for answer in ours)
