"""Livestream fixtures: a server clock the test moves, Celery tasks run in the request, a channel on air."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.test import Client

from livestream import clock as live_clock
from livestream import selectors
from loyalty.models import Brand, Membership
from tests.livestream.factories import channel_on_air, member_user, watch_rule
from tests.loyalty.factories import BrandFactory

# Noon in New York (the factories' brand timezone): a brand day has hours on both sides.
T0 = dt.datetime(2026, 3, 5, 17, 0, tzinfo=dt.UTC)


class FrozenClock:
    """livestream.clock.now(), moved by the test: heartbeats are timed by the server's clock only."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: float) -> dt.datetime:
        self.current += dt.timedelta(seconds=seconds)
        return self.current


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Heartbeats cache channels, epochs and rules in the process (by slug and id): every test starts
    without what an earlier test left there."""
    selectors.caches_clear()
    yield
    selectors.caches_clear()


@pytest.fixture
def frozen_clock(monkeypatch) -> FrozenClock:
    frozen = FrozenClock(T0)
    monkeypatch.setattr(live_clock, "now", frozen.now)
    return frozen


@pytest.fixture
def eager_tasks():
    """Run Celery tasks inside `.delay` (the real task code, no broker) for tests that are about the rules
    around them; the tests about the worker itself use the real `celery_worker` fixture."""
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@dataclass
class Tv:
    brand: Brand
    channel: object
    membership: Membership
    client: Client
    clock: FrozenClock

    def tab(self, client: Client | None = None) -> Tab:
        return Tab(client or self.client, self.channel, self.clock)


class Tab:
    """One open TV page: takes a lease, then sends heartbeats that are on schedule unless told otherwise."""

    def __init__(self, client: Client, channel, frozen: FrozenClock) -> None:
        self.client = client
        self.channel = channel
        self.clock = frozen
        self.token: str | None = None

    def lease(self):
        response = self.client.post(f"/api/v1/live/{self.channel.slug}/lease", {}, content_type="application/json")
        if response.status_code == 201:
            self.token = response.json()["lease"]
        return response

    def beat(self, **overrides):
        on_air = selectors.channel_on_air(channel=self.channel, at=self.clock.now()).current
        body = {
            "lease": self.token,
            "state": "playing",
            "video_id": on_air.item.video_id if on_air else "",
            "position": on_air.offset if on_air else 0,
            "visible": True,
            **overrides,
        }
        return self.client.post(f"/api/v1/live/{self.channel.slug}/heartbeat", body, content_type="application/json")

    def watch(self, seconds: float, every: float = 30, **overrides) -> list:
        """Heartbeats every `every` seconds for `seconds` (the first one at the current time)."""
        responses = [self.beat(**overrides)]
        elapsed = 0.0
        while elapsed + every <= seconds + 1e-9:
            self.clock.advance(every)
            elapsed += every
            responses.append(self.beat(**overrides))
        return responses


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def tv(frozen_clock, eager_tasks) -> Tv:
    """A brand with a watch_minute rule (1 point a minute, 120 a day), a looping channel of 10-minute videos
    on air since T0, and a member logged in."""
    brand = BrandFactory(name="Nova Lane", slug="nova")
    watch_rule(brand)
    channel = channel_on_air(brand=brand, durations=(600, 600, 600), started_at=T0, slug="nova-tv")
    user, membership = member_user(brand)
    return Tv(brand=brand, channel=channel, membership=membership, client=logged_in(user), clock=frozen_clock)


@pytest.fixture
def fake_youtube(settings):
    """A local fake of the YouTube Data API (tests/livestream/youtube_fake.py), with YOUTUBE_API_URL and
    YOUTUBE_API_KEY pointed at it: no test ever asks the real YouTube."""
    from tests.livestream.youtube_fake import KEY, FakeYouTube

    fake = FakeYouTube().start()
    settings.YOUTUBE_API_KEY = KEY
    settings.YOUTUBE_API_URL = fake.url
    yield fake
    fake.stop()
