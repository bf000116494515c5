"""Crediting watched minutes through the real Celery worker: exactly once per member and minute."""

import time

import pytest

from loyalty.models import Event, Membership
from loyalty.selectors import membership_balance
from loyalty.services.ingest import events_record
from tests.livestream.conftest import T0, Tab, logged_in
from tests.livestream.factories import channel_on_air, member_user, watch_rule
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not get there in time")
        time.sleep(0.05)


def balance(membership: Membership) -> int:
    return membership_balance(Membership.objects.get(pk=membership.pk))


def test_a_minute_recorded_twice_is_credited_once(celery_worker):
    brand = BrandFactory()
    watch_rule(brand, points=2)
    _user, membership = member_user(brand)

    def record(*numbers):
        return events_record(
            brand_id=brand.pk,
            membership_id=membership.pk,
            type="watch_minute",
            keys=[f"watch:{membership.pk}:2026-03-05:{n}" for n in numbers],
            occurred_at=T0,
        )

    assert record(1) == 1
    assert record(1) == 0  # a retried heartbeat, a second device
    assert record(1, 2) == 1

    wait_for(lambda: Event.objects.filter(membership=membership, status="awarded").count() == 2)
    time.sleep(0.3)  # give a wrongly duplicated credit the chance to show up
    assert Event.objects.filter(membership=membership, type="watch_minute").count() == 2
    assert balance(membership) == 4
    assert sorted(Event.objects.values_list("idempotency_key", flat=True)) == [
        f"tally:watch:{membership.pk}:2026-03-05:1",
        f"tally:watch:{membership.pk}:2026-03-05:2",
    ]


def test_heartbeats_through_the_api_are_credited_by_the_worker(celery_worker, frozen_clock):
    brand = BrandFactory()
    watch_rule(brand)
    channel = channel_on_air(brand=brand, started_at=T0)
    user, membership = member_user(brand)
    tab = Tab(logged_in(user), channel, frozen_clock)
    tab.lease()

    responses = tab.watch(120)

    assert [r.json()["minutes_completed"] for r in responses] == [0, 0, 1, 0, 1]
    wait_for(lambda: balance(membership) == 2)
    # The page's heartbeat that records the next minute reads the figures the worker left.
    frozen_clock.advance(30)
    tab.beat()
    frozen_clock.advance(30)
    answer = tab.beat().json()
    assert (answer["minutes_completed"], answer["points_today"], answer["balance"]) == (1, 2, 2)
