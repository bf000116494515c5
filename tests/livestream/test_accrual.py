"""Honest watch minutes, through the real endpoints: only time actually watched, by one screen, counts.

The server clock (livestream.clock.now) is frozen and moved by the test; tasks run in the request
(`eager_tasks`), so every credited minute is in the database when the heartbeat returns: the
heartbeat records the minute, its commit wakes the event processor, which runs at once. Hence a
transactional database: a minute is processed after its commit, as in production.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import signing
from django.test import Client

from livestream import leases
from livestream.models import PlaylistItem
from loyalty.models import Event, Membership
from loyalty.selectors import membership_balance
from tests.concurrency import run_concurrently
from tests.livestream.conftest import T0, Tab, logged_in
from tests.livestream.factories import channel_on_air, member_user, watch_rule
from tests.loyalty.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def points(membership: Membership) -> int:
    return membership_balance(Membership.objects.get(pk=membership.pk))


def watch_events(membership: Membership) -> list[tuple[str, str]]:
    return list(Event.objects.filter(membership=membership, type="watch_minute").values_list("status", "reason"))


def test_one_tab_watching_three_minutes_earns_three_points_and_sees_them(tv):
    tab = tv.tab()
    assert tab.lease().status_code == 201

    responses = tab.watch(180)

    assert [r.status_code for r in responses] == [200] * 7
    assert responses[0].json()["reason"] == "first_heartbeat"
    assert all(r.json()["counted"] for r in responses[1:])
    assert points(tv.membership) == 3
    assert Event.objects.filter(membership=tv.membership, type="watch_minute", status="awarded").count() == 3
    # The figures a heartbeat answers are read when it checks the member, which it does right before it
    # records a minute (the worker credits that minute afterwards): each minute shows from the heartbeat
    # that records the next one.
    shown = [(r.json()["points_today"], r.json()["balance"]) for r in responses]
    assert shown == [(0, 0), (0, 0), (0, 0), (0, 0), (1, 1), (1, 1), (2, 2)]
    tv.clock.advance(30)
    tab.beat()
    tv.clock.advance(30)
    last = tab.beat().json()
    assert (last["minutes_completed"], last["points_today"], last["allotment"], last["balance"]) == (1, 3, 120, 3)


def test_half_minutes_add_up_across_heartbeats_at_any_cadence(tv):
    tab = tv.tab()
    tab.lease()
    responses = tab.watch(60, every=20)
    assert [r.json()["progress_seconds"] for r in responses] == [0, 20, 40, 0]
    assert responses[-1].json()["minutes_completed"] == 1
    assert points(tv.membership) == 1


def test_sending_heartbeats_more_often_earns_no_more_than_the_time_watched(tv):
    tab = tv.tab()
    tab.lease()
    tab.watch(120, every=2)
    assert points(tv.membership) == 2


@pytest.mark.parametrize(("gap", "counted"), [(45, True), (45.5, False), (90, False)])
def test_a_gap_over_45_seconds_between_heartbeats_counts_nothing(tv, gap, counted):
    tab = tv.tab()
    tab.lease()
    responses = tab.watch(gap * 4, every=gap)
    assert {r.json()["counted"] for r in responses[1:]} == {counted}
    if not counted:
        assert {r.json()["reason"] for r in responses[1:]} == {"gap_too_long"}
        assert points(tv.membership) == 0
        assert watch_events(tv.membership) == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"visible": False}, "hidden"),
        ({"state": "paused"}, "not_playing"),
        ({"state": "buffering"}, "not_playing"),
        ({"video_id": "notOnAir000"}, "wrong_video"),
        ({"video_id": "vid99999999"}, "wrong_video"),
    ],
)
def test_a_hidden_page_a_paused_player_or_the_wrong_video_credits_nothing(tv, overrides, reason):
    tab = tv.tab()
    tab.lease()
    responses = tab.watch(180, **overrides)
    assert {r.json()["reason"] for r in responses} == {reason}
    assert points(tv.membership) == 0
    assert watch_events(tv.membership) == []


@pytest.mark.parametrize(("ahead", "reason"), [(11, "off_schedule"), (-11, "off_schedule"), (9, None), (-9, None)])
def test_a_position_more_than_10_seconds_off_the_schedule_credits_nothing(tv, ahead, reason):
    tab = tv.tab()
    tab.lease()
    tv.clock.advance(100)
    responses = []
    for _ in range(7):
        scheduled = (tv.clock.now() - T0).total_seconds()  # Video 1 (600 s) went on air at T0
        responses.append(tab.beat(position=scheduled + ahead))
        tv.clock.advance(30)
    if reason:
        assert {r.json()["reason"] for r in responses} == {reason}
    assert points(tv.membership) == (0 if reason else 3)


def test_a_tab_a_moment_behind_or_ahead_across_a_video_switch_is_on_schedule(tv):
    video = dict(PlaylistItem.objects.filter(channel=tv.channel).values_list("title", "video_id"))
    tab = tv.tab()
    tab.lease()
    tv.clock.current = T0 + dt.timedelta(seconds=590)
    tab.beat()
    tv.clock.current = T0 + dt.timedelta(seconds=601)  # Video 2 is on air; this tab still ends Video 1
    assert tab.beat(video_id=video["Video 1"], position=599.5).json()["counted"] is True
    tv.clock.current = T0 + dt.timedelta(seconds=608)  # 8 s into Video 2, 3 s from the end of Video 1: stalled
    assert tab.beat(video_id=video["Video 1"], position=597).json()["reason"] == "off_schedule"
    tv.clock.current = T0 + dt.timedelta(seconds=626)  # Video 1 ended 26 s ago: not the broadcast any more
    assert tab.beat(video_id=video["Video 1"], position=599.9).json()["reason"] == "wrong_video"

    tv.clock.current = T0 + dt.timedelta(seconds=1180)
    tab.beat()
    tv.clock.current = T0 + dt.timedelta(seconds=1198)  # Video 2 ends at 1200; this tab already plays Video 3
    assert tab.beat(video_id=video["Video 3"], position=1).json()["counted"] is True


def test_one_bad_heartbeat_loses_the_intervals_on_both_sides_and_counting_resumes_after(tv):
    tab = tv.tab()
    tab.lease()
    tab.beat()
    tv.clock.advance(30)
    assert tab.beat(visible=False).json()["reason"] == "hidden"
    tv.clock.advance(30)
    assert tab.beat().json()["reason"] == "resumed"
    tv.clock.advance(30)
    assert tab.beat().json()["counted"] is True


def test_a_superseded_lease_earns_nothing_and_is_told_so(tv):
    first, second = tv.tab(), tv.tab(logged_in(tv.membership.member.user))
    first.lease()
    first.beat()
    second.lease()  # the member opened the page on another device: it takes over

    tv.clock.advance(30)
    old = first.beat()
    new = second.beat()
    assert old.status_code == 409
    assert old.json()["error"]["code"] == "lease_superseded"
    assert new.status_code == 200
    for _ in range(4):
        tv.clock.advance(30)
        assert first.beat().status_code == 409
        assert second.beat().json()["counted"] is True
    assert points(tv.membership) == 2  # only the second device's two minutes


def test_a_forged_lease_is_refused(tv):
    tab = tv.tab()
    tab.lease()
    payload, _, signature = tab.token.rpartition(":")
    claims = {"l": "x" * 32, "m": tv.membership.pk, "c": tv.channel.pk, "i": 0}
    my_claims_their_signature = (
        signing.dumps(claims, salt=leases.LEASE_SALT).split(":")[0] + tab.token[len(tab.token.split(":")[0]) :]
    )
    for token in (
        f"{payload}:{'A' * len(signature)}",  # a made-up signature
        my_claims_their_signature,  # claims of the forger's choosing under a real signature
        signing.dumps(claims, salt=leases.LEASE_SALT, key="not-our-secret"),
        signing.dumps(claims, salt="another.purpose"),
        "not a lease",
    ):
        tab.token = token
        for _ in range(3):
            response = tab.beat()
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "lease_invalid"
            tv.clock.advance(30)
    assert watch_events(tv.membership) == []


def test_another_members_lease_or_another_channels_lease_is_refused(tv):
    other_channel = channel_on_air(brand=tv.brand, started_at=tv.clock.now())
    tab = tv.tab()
    tab.lease()
    elsewhere = Tab(tv.client, other_channel, tv.clock)
    elsewhere.token = tab.token
    assert elsewhere.beat().json()["error"]["code"] == "lease_invalid"

    user, _membership = member_user(tv.brand)
    thief = Tab(logged_in(user), tv.channel, tv.clock)
    thief.token = tab.token
    assert thief.beat().json()["error"]["code"] == "lease_invalid"


def test_an_expired_lease_is_refused_and_a_new_one_works(tv):
    tab = tv.tab()
    tab.lease()
    tv.clock.advance(12 * 3600 + 1)
    response = tab.beat()
    assert (response.status_code, response.json()["error"]["code"]) == (403, "lease_expired")
    tab.lease()
    assert tab.watch(60)[-1].json()["counted"] is True


def test_the_daily_allotment_holds_and_a_new_brand_day_earns_again(tv):
    tv.brand.earn_rules.filter(event_type="watch_minute").update(cap_per_day=2, points=5)
    tab = tv.tab()
    tab.lease()

    responses = tab.watch(300)

    refused = [r for r in responses if r.status_code == 422]
    assert refused, "heartbeats past the allotment are refused"
    assert refused[0].json()["error"]["code"] == "cap_reached"
    assert (refused[0].json()["error"]["points_today"], refused[0].json()["error"]["allotment"]) == (10, 10)
    assert points(tv.membership) == 10
    assert Event.objects.filter(membership=tv.membership, type="watch_minute", status="awarded").count() == 2

    # Midnight in New York (the brand's timezone), then a minute of watching earns again.
    tv.clock.current = dt.datetime(2026, 3, 6, 5, 0, 30, tzinfo=dt.UTC)
    tab.lease()  # the page of the evening before has expired by now; the fan opens it again
    tab.watch(60)
    assert points(tv.membership) == 15


def test_a_non_member_or_a_visitor_earns_nothing(tv):
    stranger = Tab(logged_in(UserFactory()), tv.channel, tv.clock)
    response = stranger.lease()
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")
    member_tab = tv.tab()
    member_tab.lease()
    stranger.token = member_tab.token
    assert stranger.beat().json()["error"]["code"] == "not_a_member"

    visitor = Tab(Client(), tv.channel, tv.clock)
    response = visitor.lease()
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_authenticated")
    visitor.token = member_tab.token
    assert visitor.beat().json()["error"]["code"] == "not_authenticated"
    assert Event.objects.filter(type="watch_minute").count() == 0


def test_a_suspended_member_earns_nothing(tv):
    tab = tv.tab()
    tab.lease()
    Membership.objects.filter(pk=tv.membership.pk).update(status=Membership.Status.SUSPENDED)
    response = tab.beat()
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")
    assert tab.lease().json()["error"]["code"] == "not_a_member"


def test_without_a_watch_minute_rule_heartbeats_say_so_and_nothing_is_recorded(frozen_clock, eager_tasks):
    brand = BrandFactory()
    channel = channel_on_air(brand=brand, started_at=frozen_clock.now())
    user, membership = member_user(brand)
    tab = Tab(logged_in(user), channel, frozen_clock)
    assert tab.lease().json()["earning"] is False
    assert {r.json()["reason"] for r in tab.watch(120)} == {"no_rule"}
    assert watch_events(membership) == []


def test_lease_and_heartbeat_enforce_csrf(tv):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tv.membership.member.user)
    tab = Tab(client, tv.channel, tv.clock)

    response = tab.lease()
    assert (response.status_code, response.json()["error"]["code"]) == (403, "csrf_failed")

    page = client.get(f"/b/{tv.brand.slug}/tv/")
    token = page.cookies["csrftoken"].value
    lease = client.post(
        f"/api/v1/live/{tv.channel.slug}/lease", {}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert lease.status_code == 201
    tab.token = lease.json()["lease"]
    response = tab.beat()
    assert (response.status_code, response.json()["error"]["code"]) == (403, "csrf_failed")


def test_bad_heartbeat_input_is_a_400_with_field_errors(tv):
    tab = tv.tab()
    tab.lease()
    response = tab.beat(state="dancing", position=-5)
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"state", "position"}
    response = tv.client.post(f"/api/v1/live/{tv.channel.slug}/heartbeat", "{", content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "malformed_json")
    assert tab.beat(lease=None).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_five_tabs_of_one_member_for_three_minutes_credit_at_most_three_points(frozen_clock, eager_tasks):
    brand = BrandFactory()
    watch_rule(brand)
    channel = channel_on_air(brand=brand, durations=(600,), started_at=frozen_clock.now())
    user, membership = member_user(brand)
    tabs = [Tab(logged_in(user), channel, frozen_clock) for _ in range(5)]
    for tab in tabs:
        tab.lease()

    def beat(index: int) -> int:
        response = tabs[index].beat()
        if response.status_code == 409:
            tabs[index].lease()  # the fan keeps pressing "earn on this screen" on every tab
        return response.status_code

    statuses = []
    for step in range(7):  # 0, 30, ..., 180 s: three minutes
        if step:
            frozen_clock.advance(30)
        statuses += run_concurrently(beat, len(tabs))

    assert 409 in statuses  # tabs really did compete
    assert points(membership) <= 3
    awarded = Event.objects.filter(membership=membership, type="watch_minute", status="awarded").count()
    assert awarded == points(membership)


@pytest.mark.django_db(transaction=True)
def test_five_tabs_heartbeating_at_once_with_one_live_lease_credit_exactly_the_time_watched(frozen_clock, eager_tasks):
    brand = BrandFactory()
    watch_rule(brand)
    channel = channel_on_air(brand=brand, durations=(600,), started_at=frozen_clock.now())
    user, membership = member_user(brand)
    tabs = [Tab(logged_in(user), channel, frozen_clock) for _ in range(5)]
    for tab in tabs:
        tab.lease()  # the last one opened is the live one

    for step in range(7):
        if step:
            frozen_clock.advance(30)
        assert sorted(run_concurrently(lambda index: tabs[index].beat().status_code, len(tabs))) == [
            200,
            409,
            409,
            409,
            409,
        ]

    assert points(membership) == 3


def test_timing_scales_with_the_minute_and_the_tolerance_never_drops_below_2_seconds(settings):
    from livestream.services import Timing

    settings.LIVESTREAM_MINUTE_SECONDS = 60
    assert Timing.current() == Timing(minute=60, heartbeat=30, max_gap=45, tolerance=10)
    settings.LIVESTREAM_MINUTE_SECONDS = 4
    assert Timing.current() == Timing(minute=4, heartbeat=2, max_gap=3, tolerance=2)


def test_a_compressed_minute_scales_the_heartbeat_gap_and_the_credited_minute(tv, settings):
    settings.LIVESTREAM_MINUTE_SECONDS = 4
    tab = tv.tab()
    assert tab.lease().json()["heartbeat_seconds"] == 2
    assert all(r.json()["counted"] for r in tab.watch(8, every=2)[1:])
    assert points(tv.membership) == 2
    tv.clock.advance(3.5)  # over 0.75 x 4 s
    assert tab.beat().json()["reason"] == "gap_too_long"
    assert tab.beat(position=100).json()["reason"] == "off_schedule"  # the tolerance is 2 s here


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "malformed_json"),
        ("state=playing", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_a_heartbeat_body_that_is_not_json_is_the_400_or_415_it_is_elsewhere_not_a_csrf_failure(
    tv, body, content_type, status, code
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tv.membership.member.user)
    token = client.get(f"/b/{tv.brand.slug}/tv/").cookies["csrftoken"].value

    response = client.post(
        f"/api/v1/live/{tv.channel.slug}/heartbeat", body, content_type=content_type, HTTP_X_CSRFTOKEN=token
    )

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_a_csrf_failure_says_why_once(tv):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tv.membership.member.user)

    response = Tab(client, tv.channel, tv.clock).lease()

    assert response.json()["error"]["message"] == "CSRF Failed: CSRF cookie not set. Reload the page."
