"""The TV page in real Chromium with the offline fake player: viewers in sync, members earning.

Time is compressed (a 4-second "minute", so a heartbeat every 2 s) and the real clock runs: the page
syncs with /api/v1/time and follows the schedule the server computes.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from livestream import selectors
from livestream import services as live_services
from loyalty.models import Membership
from loyalty.selectors import membership_balance
from tests.e2e.conftest import ARTIFACTS
from tests.livestream.factories import ChannelFactory, PlaylistItemFactory, channel_on_air, member_user, watch_rule
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """The live server runs in this process: heartbeats' caches (by slug) must not outlive a test."""
    selectors.caches_clear()
    yield
    selectors.caches_clear()


STATE = "() => ({...window.tallyTv.state(), at: Date.now()})"
PLAYING = "() => window.tallyTv && window.tallyTv.state().playing"


@pytest.fixture
def compressed(settings):
    settings.LIVESTREAM_FAKE_PLAYER = True
    settings.LIVESTREAM_MINUTE_SECONDS = 4
    return settings


def on_air_channel(durations, seconds_ago: float, **kwargs):
    brand = BrandFactory(name="Nova Lane", slug="nova", points_name="points")
    watch_rule(brand)
    started = timezone.now() - dt.timedelta(seconds=seconds_ago)
    return brand, channel_on_air(brand=brand, durations=durations, started_at=started, **kwargs)


def scheduled(channel, at_ms: float):
    """What the server's schedule says for the moment a page reported its state (same machine clock)."""
    return selectors.channel_on_air(channel=channel, at=dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC)).current


def assert_on_schedule(channel, state: dict) -> None:
    expected = scheduled(channel, state["at"])
    assert state["playing"] is True
    assert state["videoId"] == expected.item.video_id
    assert abs(state["position"] - expected.offset) < 1, (state, expected.offset)


def test_two_viewers_see_the_same_video_at_the_same_moment_and_move_on_together(browser, live_server, compressed):
    _brand, channel = on_air_channel((7, 60, 60), seconds_ago=2)
    second_video = channel.items.get(title="Video 2").video_id
    contexts = [
        browser.new_context(base_url=live_server.url, viewport=size)
        for size in ({"width": 390, "height": 844}, {"width": 1280, "height": 800})
    ]
    pages = [context.new_page() for context in contexts]
    try:
        for page in pages:
            page.goto("/b/nova/tv/")
        for page in pages:
            page.wait_for_function(PLAYING)
            expect(page.locator("[data-tv-title]")).to_have_text("Video 1")

        first, second = (page.evaluate(STATE) for page in pages)
        assert_on_schedule(channel, first)
        assert_on_schedule(channel, second)
        # The same moment on both screens: correct for the few ms between the two readings.
        assert abs(first["position"] + (second["at"] - first["at"]) / 1000 - second["position"]) < 1
        assert first["videoId"] == second["videoId"]

        # Video 1 ends a few seconds in: both load Video 2 at the right offset, without a page reload.
        for page in pages:
            page.wait_for_function(f"() => window.tallyTv.state().videoId === '{second_video}'", timeout=12_000)
        time.sleep(1)
        first, second = (page.evaluate(STATE) for page in pages)
        assert_on_schedule(channel, first)
        assert_on_schedule(channel, second)
        expect(pages[1].locator("[data-tv-title]")).to_have_text("Video 2")
        expect(pages[1].locator("[data-tv-next]")).to_have_text("Video 3")
        ARTIFACTS.mkdir(exist_ok=True)
        pages[1].screenshot(path=str(ARTIFACTS / "livestream-tv-desktop-visitor.png"))
    finally:
        for context in contexts:
            context.close()


def test_a_video_that_refuses_embedding_is_skipped_for_that_viewer_only(browser, live_server, compressed):
    _brand, channel = on_air_channel((4, 4, 60), seconds_ago=1)
    refused = channel.items.get(title="Video 2").video_id
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    # The fake player answers this id with YouTube's error 150 ("the owner does not allow embedding").
    context.add_init_script(f"window.TALLY_FAKE_REFUSE = ['{refused}']")
    page = context.new_page()
    try:
        page.goto("/b/nova/tv/")
        page.wait_for_function(PLAYING)
        expect(page.get_by_text("can't be played here")).to_be_visible(timeout=8_000)
        assert page.evaluate(STATE)["playing"] is False
        # The broadcast goes on: when Video 2's slot ends, this viewer rejoins with Video 3, in sync.
        expect(page.locator("[data-tv-title]")).to_have_text("Video 3", timeout=10_000)
        page.wait_for_function(PLAYING)
        assert_on_schedule(channel, page.evaluate(STATE))
        expect(page.locator("[data-tv-overlay]")).to_be_hidden()
    finally:
        context.close()


def test_a_member_watching_earns_points_while_the_page_is_open_and_sees_them(
    page, live_server, compressed, celery_worker
):
    brand, _channel = on_air_channel((60, 60), seconds_ago=1)
    user, membership = member_user(brand)
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )

    page.goto("/b/nova/tv/")
    expect(page.locator("[data-tv-allotment]")).to_have_text("120")
    # Heartbeats every 2 s; each 4 s counted is a "minute" a real worker credits; the page shows it.
    expect(page.locator("[data-tv-points-today]")).to_have_text(re.compile(r"^([2-9]|\d\d+)$"), timeout=20_000)
    expect(page.locator("[data-tv-status]")).to_contain_text("Earning")
    shown = int(page.locator("[data-tv-points-today]").inner_text())
    assert membership_balance(Membership.objects.get(pk=membership.pk)) >= shown
    assert int(page.locator("[data-tv-balance]").inner_text()) >= 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "livestream-tv-phone-member.png"), full_page=True)

    # The same fan opens a second tab: it takes over, and the first one says it stopped earning.
    second = page.context.new_page()
    second.goto("/b/nova/tv/")
    expect(page.get_by_text("this one stopped earning")).to_be_visible(timeout=8_000)
    expect(page.get_by_role("button", name="Earn on this screen")).to_be_visible()
    assert page.evaluate(STATE)["playing"] is True  # it keeps playing
    page.screenshot(path=str(ARTIFACTS / "livestream-tv-phone-superseded.png"), full_page=True)
    expect(second.locator("[data-tv-status]")).to_contain_text("Earning", timeout=8_000)


def test_with_the_real_player_and_youtube_unreachable_the_page_says_so(page, live_server, settings):
    settings.LIVESTREAM_FAKE_PLAYER = False
    on_air_channel((60,), seconds_ago=5)
    requested = []

    def refuse(route):
        requested.append(route.request.url)
        route.abort()

    page.route(re.compile(r"^https://www\.youtube\.com/"), refuse)
    page.goto("/b/nova/tv/")
    expect(page.get_by_text("YouTube can't be reached")).to_be_visible()
    assert requested == ["https://www.youtube.com/iframe_api"]
    expect(page.locator("[data-tv-title]")).to_have_text("Video 1")  # the schedule still shows what is on


def test_on_a_phone_the_player_and_the_earning_status_fit_the_screen(page, live_server, compressed):
    brand = BrandFactory(name="Nova Lane", slug="nova", points_name="points")
    watch_rule(brand)
    # What real channels have: long names, and titles with words too long for a line (tags, URLs).
    channel = ChannelFactory(brand=brand, name="Nova Lane Live: the Midnight Sessions, all night long")
    long_word = "#NovaLaneMidnightSessionsOfficialVideoFullConcert2026"
    for order in range(2):
        PlaylistItemFactory(channel=channel, duration_seconds=60, order=order, title=f"Video {order + 1} {long_word}")
    live_services.channel_schedule_publish(channel=channel, now=timezone.now() - dt.timedelta(seconds=1))
    user, _membership = member_user(brand)
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/b/nova/tv/")
    page.wait_for_function(PLAYING)
    expect(page.locator("#tv-player")).to_be_visible()
    expect(page.locator("[data-tv-status]")).to_be_visible()
    expect(page.locator("[data-tv-status]")).to_contain_text("Earning", timeout=8_000)
    # A big fan's figures: a seven-digit balance and a five-digit day, in the two-column stats.
    page.evaluate(
        """() => {
            document.querySelector('[data-tv-balance]').textContent = '1234567';
            document.querySelector('[data-tv-points-today]').textContent = '12345';
        }"""
    )
    box = page.locator(".tv-screen").bounding_box()
    assert box["width"] >= 380 and box["height"] > 200, box  # the video spans the phone's width
    # Nothing wider than the screen: no sideways scrolling, on the page or in the earning panel.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Nor cut off: the stage hides what overflows it, so look for boxes past the edge and text past its box
    # (the channel list scrolls sideways on purpose; the stage's negative margins bleed it out of the grid
    # to the phone's edges, and no further, on purpose too).
    wide = page.evaluate(
        """() => [...document.querySelectorAll('.tv *')]
            .filter((el) => !el.closest('.tv-channels') && !el.classList.contains('tv-grid'))
            .filter((el) => el.getBoundingClientRect().right > 390.5
                || (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1))
            .map((el) => el.className || el.tagName)"""
    )
    assert wide == [], wide
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "livestream-tv-phone-fit.png"), full_page=True)
