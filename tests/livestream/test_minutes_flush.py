"""Completed minutes are queued by the heartbeat and recorded by a flush: all minutes queued meanwhile
in one transaction (one commit, one wake of loyalty's worker), each exactly once, none lost when a
flush fails."""

from __future__ import annotations

import time

import pytest

from livestream import leases, selectors, services, tasks
from loyalty.models import Event
from tests.concurrency import run_concurrently
from tests.livestream.conftest import T0, Tab, logged_in
from tests.livestream.factories import channel_on_air, member_user, watch_rule
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db(transaction=True)


def watch_keys() -> list[str]:
    return sorted(Event.objects.filter(type="watch_minute").values_list("idempotency_key", flat=True))


def audience(frozen_clock, members: int):
    brand = BrandFactory()
    watch_rule(brand)
    channel = channel_on_air(brand=brand, durations=(600,), started_at=T0)
    tabs = []
    for _ in range(members):
        user, membership = member_user(brand)
        tab = Tab(logged_in(user), channel, frozen_clock)
        tab.lease()
        tab.membership = membership
        tabs.append(tab)
    return tabs


@pytest.fixture
def flushes(monkeypatch) -> list:
    """The flushes heartbeats schedule (sent to the broker, which no worker reads in these tests)."""
    scheduled = []
    real = tasks.watch_minutes_flush_task.apply_async

    def spy(*args, **kwargs):
        scheduled.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks.watch_minutes_flush_task, "apply_async", spy)
    return scheduled


def test_minutes_of_many_members_are_recorded_by_one_flush_exactly_once(frozen_clock, flushes):
    tabs = audience(frozen_clock, 6)
    for step in range(3):  # 0, 30, 60 s: every member completes a minute
        if step:
            frozen_clock.advance(30)
        for tab in tabs:
            tab.beat()

    assert leases.minutes_queued() == 6
    assert len(flushes) == 1  # only the first minute queued scheduled a flush
    assert flushes[0]["countdown"] == services.MINUTES_FLUSH_SECONDS
    assert services.watch_minutes_flush() == 6
    assert services.watch_minutes_flush() == 0
    assert watch_keys() == sorted(f"tally:watch:{tab.membership.pk}:2026-03-05:1" for tab in tabs)
    assert set(Event.objects.values_list("status", flat=True)) == {"pending"}

    frozen_clock.advance(30)
    tabs[0].beat()
    frozen_clock.advance(30)
    tabs[0].beat()  # a second minute, after the flush: it schedules the next one
    assert len(flushes) == 2
    assert services.watch_minutes_flush() == 1


def test_a_flush_that_fails_gives_the_minutes_back_and_the_next_one_records_them(frozen_clock, monkeypatch):
    tabs = audience(frozen_clock, 3)
    for step in range(3):
        if step:
            frozen_clock.advance(30)
        for tab in tabs:
            tab.beat()
    real = services.events_record
    calls = []

    def fails_on_the_second(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "events_record", fails_on_the_second)
    with pytest.raises(RuntimeError):
        services.watch_minutes_flush()
    assert watch_keys() == []  # the transaction rolled back: not even the first one
    assert leases.minutes_queued() == 3

    assert services.watch_minutes_flush() == 3
    assert len(watch_keys()) == 3


def test_minutes_queued_twice_are_recorded_once(frozen_clock):
    tabs = audience(frozen_clock, 1)
    tab = tabs[0]
    for step in range(3):
        if step:
            frozen_clock.advance(30)
        tab.beat()
    taken = leases.minutes_take(limit=10)
    leases.minutes_give_back(taken)
    leases.minutes_give_back(taken)  # a flush that failed after another had recorded them
    assert services.watch_minutes_flush() == 1
    assert watch_keys() == [f"tally:watch:{tab.membership.pk}:2026-03-05:1"]


def test_heartbeats_and_flushes_racing_record_every_minute_exactly_once(frozen_clock):
    tabs = audience(frozen_clock, 8)
    for tab in tabs:
        tab.beat()

    def work(index: int):
        if index < len(tabs):
            tab = tabs[index]
            slot = selectors.channel_on_air(channel=tab.channel, at=frozen_clock.now()).current
            body = {
                "lease": tab.token,
                "state": "playing",
                "video_id": slot.item.video_id,
                "position": slot.offset,
                "visible": True,
            }
            return tab.client.post(f"/api/v1/live/{tab.channel.slug}/heartbeat", body, content_type="application/json")
        return services.watch_minutes_flush(limit=2)

    for _step in range(4):  # 30, 60, 90, 120 s: two minutes each
        frozen_clock.advance(30)
        results = run_concurrently(work, len(tabs) + 4)
        assert not [result for result in results if isinstance(result, Exception)]
    services.watch_minutes_flush()

    assert leases.minutes_queued() == 0
    expected = [f"tally:watch:{tab.membership.pk}:2026-03-05:{n}" for tab in tabs for n in (1, 2)]
    assert watch_keys() == sorted(expected)


def test_with_the_worker_the_flushed_minutes_are_credited(celery_worker, frozen_clock):
    tabs = audience(frozen_clock, 3)
    for step in range(5):  # two minutes each
        if step:
            frozen_clock.advance(30)
        for tab in tabs:
            tab.beat()
    deadline = time.monotonic() + 15
    while Event.objects.filter(type="watch_minute", status="awarded").count() < 6:
        assert time.monotonic() < deadline, "the flush and the worker did not get there in time"
        time.sleep(0.05)
    assert leases.minutes_queued() == 0
    assert Event.objects.filter(type="watch_minute").count() == 6
