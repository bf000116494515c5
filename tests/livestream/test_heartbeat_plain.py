"""The heartbeat as a page sends it is answered without DRF's machinery (livestream.api.heartbeat_plain):
it must answer exactly what DRF's view answers. Each scenario runs twice, by two members of the same
channel at the same (frozen) moments: once as pages send it, once with the shortcut turned off."""

from __future__ import annotations

import pytest
from django.test import Client

from livestream import api, selectors
from loyalty.models import EarnRule, Membership
from tests.livestream.conftest import T0, Tab, logged_in
from tests.livestream.factories import channel_on_air, member_user, watch_rule
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = ("Content-Type", "Cache-Control", "Allow")


def answer(response) -> tuple:
    body = response.json()
    if "error" in body:  # each request's own id (config.middleware.RequestIdMiddleware), as in its header
        error = dict(body["error"])
        assert error.pop("request_id") == response["X-Request-ID"]
        body = {**body, "error": error}
    return (response.status_code, body, {name: response.get(name) for name in HEADERS})


def watching(tab: Tab, frozen, **overrides) -> list:
    answers = [answer(tab.beat(**overrides))]
    for _ in range(5):
        frozen.advance(30)
        answers.append(answer(tab.beat(**overrides)))
    return answers


def superseded(tab: Tab, frozen) -> list:
    tab.beat()
    other = Tab(tab.client, tab.channel, frozen)
    other.lease()
    frozen.advance(30)
    return [answer(tab.beat()), answer(other.beat())]


def allotment(tab: Tab, frozen) -> list:
    EarnRule.objects.filter(brand=tab.channel.brand, event_type="watch_minute").update(cap_per_day=1)
    return watching(tab, frozen)


def forged(tab: Tab, frozen) -> list:
    tab.token = tab.token[:-3] + "AAA"
    return [answer(tab.beat())]


def suspended(tab: Tab, frozen) -> list:
    Membership.objects.filter(member__user__email=tab.email).update(status=Membership.Status.SUSPENDED)
    return [answer(tab.beat()), answer(tab.beat())]


def not_earning(tab: Tab, frozen) -> list:
    EarnRule.objects.filter(brand=tab.channel.brand, event_type="watch_minute").delete()
    return watching(tab, frozen)


def bad_input(tab: Tab, frozen) -> list:
    post = tab.client.post
    url = f"/api/v1/live/{tab.channel.slug}/heartbeat"
    return [
        answer(tab.beat(position=-1)),
        answer(tab.beat(state="dancing")),
        answer(tab.beat(visible="yes")),
        answer(post(url, '{"lease": "x", "position": NaN}', content_type="application/json")),
        answer(post(url, "{", content_type="application/json")),
        answer(post(url, {"lease": tab.token}, content_type="application/x-www-form-urlencoded")),
    ]


def visitor(tab: Tab, frozen) -> list:
    stranger = Tab(Client(), tab.channel, frozen)
    stranger.token = tab.token
    return [answer(stranger.beat())]


SCENARIOS = {
    "three minutes": lambda tab, frozen: watching(tab, frozen),
    "hidden": lambda tab, frozen: watching(tab, frozen, visible=False),
    "wrong video": lambda tab, frozen: watching(tab, frozen, video_id="notOnAir000"),
    "off schedule": lambda tab, frozen: watching(tab, frozen, position=500),
    "superseded": superseded,
    "allotment": allotment,
    "forged": forged,
    "suspended": suspended,
    "not earning": not_earning,
    "bad input": bad_input,
    "visitor": visitor,
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_heartbeat_is_answered_exactly_as_drf_answers_it(scenario, frozen_clock, eager_tasks, monkeypatch):
    results = {}
    brand = BrandFactory()
    watch_rule(brand)
    channel = channel_on_air(brand=brand, durations=(600, 600), started_at=T0)
    for path in ("plain", "drf"):
        selectors.caches_clear()  # each pass reads the channel, rule and epochs afresh
        if path == "drf":
            monkeypatch.setattr(api, "heartbeat_plain", lambda request, slug: None)
            EarnRule.objects.filter(brand=brand, event_type="watch_minute").delete()
            watch_rule(brand)
        frozen_clock.current = T0
        user, _membership = member_user(brand)
        tab = Tab(logged_in(user), channel, frozen_clock)
        tab.email = user.email
        tab.lease()
        results[path] = SCENARIOS[scenario](tab, frozen_clock)
    assert results["plain"] == results["drf"]


def test_the_shortcut_answers_what_pages_send_and_leaves_the_rest_to_drf(tv, monkeypatch):
    taken = []
    real = api.heartbeat_plain

    def spy(request, slug):
        response = real(request, slug)
        taken.append(response is not None)
        return response

    monkeypatch.setattr(api, "heartbeat_plain", spy)
    tab = tv.tab()
    tab.lease()
    tab.beat()
    tab.beat(position=-1)
    tab.client.post(f"/api/v1/live/{tv.channel.slug}/heartbeat", "{", content_type="application/json")
    Tab(Client(), tv.channel, tv.clock).beat()
    assert taken == [True, False, False, False]
