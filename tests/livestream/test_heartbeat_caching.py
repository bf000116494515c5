"""What makes a heartbeat cheap (no PostgreSQL, one Redis round trip, caches in the process) never bends
a rule of honest watch minutes (livestream.services): the statements a heartbeat runs are pinned, and
every cache is shown to only ever delay earning or a refusal by the time it promises, never to add
a minute.

Caches in the process live CACHE_SECONDS of real time, and these tests take far less: whatever a test
reads once stays cached for the rest of it unless it says otherwise.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore
from django.core import signing
from django.test import Client
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from livestream import leases, selectors, services
from livestream.serializers import PLAYER_STATES, HeartbeatInputSerializer, heartbeat_input
from loyalty.models import EarnRule, Event, Membership
from loyalty.selectors import membership_balance
from tests.concurrency import run_concurrently
from tests.livestream.conftest import T0, Tab, Tv, logged_in
from tests.livestream.factories import PlaylistItemFactory, channel_on_air, member_user, watch_rule
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHECK = services.MEMBER_CHECK_SECONDS


def points(membership: Membership) -> int:
    return membership_balance(Membership.objects.get(pk=membership.pk))


def minutes_recorded(membership: Membership) -> int:
    """Watch minutes recorded for the member, once the minutes heartbeats queued are flushed (what the
    flush task does within MINUTES_FLUSH_SECONDS; the tests without eager tasks do it here)."""
    services.watch_minutes_flush()
    return Event.objects.filter(membership=membership, type="watch_minute").count()


def on_schedule(tab: Tab, **overrides) -> dict:
    """The body of a heartbeat on the scheduled video and position, worked out before it is sent (the
    helper's own reads of the schedule stay out of the statements counted)."""
    slot = selectors.channel_on_air(channel=tab.channel, at=tab.clock.now()).current
    return {
        "lease": tab.token,
        "state": "playing",
        "video_id": slot.item.video_id if slot else "",
        "position": slot.offset if slot else 0,
        "visible": True,
        **overrides,
    }


def send(tab: Tab, body: dict):
    return tab.client.post(f"/api/v1/live/{tab.channel.slug}/heartbeat", body, content_type="application/json")


@pytest.fixture(autouse=True)
def _checks_at_the_interval(monkeypatch):
    """Every lease checks exactly every MEMBER_CHECK_SECONDS here (no spread), so tests can time it."""
    monkeypatch.setattr(services, "MEMBER_CHECK_SPREAD", 0.0)


@pytest.fixture
def long_caches(monkeypatch):
    """Whatever a test reads into the process's caches stays there for the whole test, however slowly the
    machine runs it (what these tests show must hold while a cache is stale)."""
    monkeypatch.setattr(selectors, "CACHE_SECONDS", 3600.0)


def same_session(tab: Tab) -> Tab:
    """Another client with the tab's cookies (the same browser: one client per thread)."""
    client = Client()
    client.cookies = tab.client.cookies
    twin = Tab(client, tab.channel, tab.clock)
    twin.token = tab.token
    return twin


@pytest.fixture
def tv_async(frozen_clock) -> Tv:
    """The `tv` fixture without eager tasks: a minute recorded stays pending (no worker runs), as in
    production between the heartbeat and the worker's batch."""
    brand = BrandFactory(name="Nova Lane", slug="nova")
    watch_rule(brand)
    channel = channel_on_air(brand=brand, durations=(600, 600, 600), started_at=T0, slug="nova-tv")
    user, membership = member_user(brand)
    return Tv(brand=brand, channel=channel, membership=membership, client=logged_in(user), clock=frozen_clock)


# --- what a heartbeat costs ------------------------------------------------------------------------------


def test_a_heartbeat_runs_no_statement_unless_it_checks_the_member_or_records_a_minute(
    tv_async, django_assert_num_queries
):
    tab = tv_async.tab()
    tab.lease()
    body = on_schedule(tab)
    # The first heartbeat of the page: the channel, the watch rule and the schedule epochs (two reads)
    # into the process's caches, the member's minute counter of the day (rebuilt from the minutes
    # recorded: once a day, or after Redis lost it), and the member's check, which also reads the figures.
    with django_assert_num_queries(6):
        assert send(tab, body).json()["reason"] == "first_heartbeat"

    for _ in range(2):  # 20 s, 40 s: nothing to read
        tv_async.clock.advance(20)
        body = on_schedule(tab)
        with django_assert_num_queries(0):
            assert send(tab, body).json()["counted"] is True

    tv_async.clock.advance(20)  # 60 s: a minute completed: check the member, then queue the minute
    body = on_schedule(tab)
    with django_assert_num_queries(1):
        answer = send(tab, body).json()
    assert answer["minutes_completed"] == 1
    assert leases.minutes_queued() == 1
    # The flush records it: one INSERT (on loyalty's bulk cursor, outside Django's query log) in a
    # transaction of its own.
    with django_assert_num_queries(2):  # BEGIN ... COMMIT around the INSERT
        assert services.watch_minutes_flush() == 1
    assert list(Event.objects.filter(membership=tv_async.membership).values_list("type", "status")) == [
        ("watch_minute", "pending")
    ]

    tv_async.clock.advance(CHECK)  # no minute, but the check is due: one statement
    body = on_schedule(tab)
    with django_assert_num_queries(1):
        send(tab, body)


def test_refusals_before_any_work_run_no_statement_for_a_known_channel(tv_async, django_assert_num_queries):
    tab = tv_async.tab()
    tab.lease()
    send(tab, on_schedule(tab))  # the channel is cached now
    body = on_schedule(tab)
    visitor = Tab(Client(), tv_async.channel, tv_async.clock)
    with django_assert_num_queries(0):
        assert send(visitor, body).json()["error"]["code"] == "not_authenticated"
        assert send(tab, {**body, "lease": "forged"}).json()["error"]["code"] == "lease_invalid"


# --- who: the member, the login, the session --------------------------------------------------------------


def test_a_suspended_member_records_no_minute_after_the_suspension_and_is_refused_within_the_check_interval(
    tv_async,
):
    tab = tv_async.tab()
    tab.lease()
    send(tab, on_schedule(tab))  # checked at 0 s
    tv_async.clock.advance(20)
    send(tab, on_schedule(tab))
    Membership.objects.filter(pk=tv_async.membership.pk).update(status=Membership.Status.SUSPENDED)

    # Until the check is due, heartbeats still answer (counting time that can never become a minute)...
    tv_async.clock.advance(20)  # 40 s
    assert send(tab, on_schedule(tab)).status_code == 200
    # ...and the heartbeat that completes a minute checks first: refused, nothing recorded.
    tv_async.clock.advance(20)  # 60 s
    response = send(tab, on_schedule(tab))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_a_member")
    assert minutes_recorded(tv_async.membership) == 0


@pytest.mark.parametrize("gap", [15, 20, 30])
def test_a_suspension_is_seen_within_the_check_interval_even_without_a_minute(tv_async, gap):
    tab = tv_async.tab()
    tab.lease()
    send(tab, on_schedule(tab, state="paused"))  # checked at 0 s; a paused page counts nothing, no minute
    Membership.objects.filter(pk=tv_async.membership.pk).update(status=Membership.Status.SUSPENDED)
    statuses = {}
    for step in range(1, 5):
        tv_async.clock.advance(gap)
        statuses[step * gap] = send(tab, on_schedule(tab, state="paused")).status_code
    first_due = gap * math.ceil(CHECK / gap)  # the first heartbeat at least MEMBER_CHECK_SECONDS later
    assert statuses == {seconds: 200 if seconds < first_due else 403 for seconds in statuses}


def test_each_lease_checks_a_little_sooner_by_an_amount_of_its_own(monkeypatch):
    monkeypatch.setattr(services, "MEMBER_CHECK_SPREAD", 0.25)
    intervals = {services.member_check_ms(leases.new_lease_id()) for _ in range(200)}
    assert min(intervals) >= 0.75 * CHECK * 1000
    assert max(intervals) <= CHECK * 1000
    assert max(intervals) - min(intervals) > 0.2 * CHECK * 1000  # spread over the range
    assert services.member_check_ms("0000") == CHECK * 1000
    assert services.member_check_ms("ffff") == 0.75 * CHECK * 1000


def test_a_failed_check_is_made_again_on_the_next_heartbeat_and_what_was_counted_meanwhile_is_dropped(tv_async):
    tab = tv_async.tab()
    tab.lease()
    send(tab, on_schedule(tab))  # checked at 0 s
    tv_async.clock.advance(20)
    send(tab, on_schedule(tab))
    Membership.objects.filter(pk=tv_async.membership.pk).update(status=Membership.Status.SUSPENDED)
    tv_async.clock.advance(25)  # 45 s: the check is due
    assert send(tab, on_schedule(tab)).status_code == 403
    # Same instant: had the refused check counted as done, this one would not check and would answer 200.
    assert send(tab, on_schedule(tab)).status_code == 403

    Membership.objects.filter(pk=tv_async.membership.pk).update(status=Membership.Status.ACTIVE)
    tv_async.clock.advance(10)
    answer = send(tab, on_schedule(tab)).json()
    assert (answer["reason"], answer["progress_seconds"]) == ("resumed", 0)  # the 45 s before count for nothing
    tv_async.clock.advance(30)
    assert send(tab, on_schedule(tab)).json()["progress_seconds"] == 30
    assert minutes_recorded(tv_async.membership) == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("deactivate_login", "not_authenticated"),
        ("new_password", "not_authenticated"),
        ("log_out", "not_authenticated"),
        ("leave", "not_a_member"),
    ],
)
def test_a_login_deactivated_a_password_changed_a_logout_or_leaving_is_refused_at_the_next_check(
    tv_async, change, code
):
    tab = tv_async.tab()
    tab.lease()
    send(tab, on_schedule(tab))
    membership = tv_async.membership
    user = membership.member.user
    session_key = tv_async.client.cookies["sessionid"].value
    if change == "deactivate_login":
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    elif change == "new_password":
        user.set_password("another-strong-password")
        user.save()
    elif change == "log_out":
        SessionStore(session_key).delete()  # what logging out in another window of this browser does
    else:
        Membership.objects.filter(pk=membership.pk).update(status=Membership.Status.LEFT)

    tv_async.clock.advance(CHECK)
    response = send(tab, on_schedule(tab))
    assert (response.status_code, response.json()["error"]["code"]) == (403, code)
    assert minutes_recorded(membership) == 0
    if change == "new_password":  # as Django's authentication would: the session is logged out
        assert HASH_SESSION_KEY not in SessionStore(session_key).load()


def test_another_session_of_the_same_login_may_use_the_lease(tv_async):
    tab = tv_async.tab()
    tab.lease()
    again = Tab(logged_in(tv_async.membership.member.user), tv_async.channel, tv_async.clock)
    again.token = tab.token  # the same browser after logging in again: a new session key
    assert send(again, on_schedule(again)).json()["reason"] == "first_heartbeat"
    for _ in range(2):
        tv_async.clock.advance(30)
        assert send(again, on_schedule(again)).json()["counted"] is True
    assert minutes_recorded(tv_async.membership) == 1


def test_a_lease_signed_before_logins_and_sessions_were_in_it_still_counts(tv_async):
    tab = tv_async.tab()
    tab.lease()
    claims = leases.token_read(tab.token)
    tab.token = signing.dumps(
        {"l": claims.lease_id, "m": claims.membership_id, "c": claims.channel_id, "i": 1772730000000},
        salt=leases.LEASE_SALT,
        compress=False,
    )
    answers = [send(tab, on_schedule(tab)).json()]
    for _ in range(2):
        tv_async.clock.advance(30)
        answers.append(send(tab, on_schedule(tab)).json())
    assert [answer["reason"] for answer in answers] == ["first_heartbeat", None, None]
    assert answers[-1]["minutes_completed"] == 1


def test_the_lease_holds_a_digest_of_the_session_key_never_the_key(tv_async):
    tab = tv_async.tab()
    tab.lease()
    session_key = tv_async.client.cookies["sessionid"].value
    claims = leases.token_read(tab.token)
    assert claims.session == leases.session_digest(session_key)
    assert session_key not in signing.b64_decode(tab.token.split(":")[0].encode()).decode()


# --- the allotment, the rule and the lease against the caches ----------------------------------------------


def test_an_allotment_lowered_while_the_rule_is_cached_is_never_exceeded(tv, long_caches):
    tab = tv.tab()
    tab.lease()
    tab.watch(60)  # one minute, and the rule (120 a day) is cached in this process
    assert points(tv.membership) == 1
    EarnRule.objects.filter(brand=tv.brand, event_type="watch_minute").update(cap_per_day=2)

    tv.clock.advance(30)
    tab.watch(150)  # the cached rule still says 120: minutes are recorded, the processor refuses the extra

    assert points(tv.membership) == 2
    assert minutes_recorded(tv.membership) > 2
    assert Event.objects.filter(membership=tv.membership, status="rejected", reason="cap_reached").exists()
    selectors.caches_clear()  # CACHE_SECONDS later
    tv.clock.advance(30)
    response = tab.beat()
    assert (response.status_code, response.json()["error"]["code"]) == (422, "cap_reached")
    assert response.json()["error"]["points_today"] == 2


def test_a_rule_disabled_while_cached_credits_nothing_more_and_heartbeats_say_so_once_it_expires(tv, long_caches):
    tab = tv.tab()
    tab.lease()
    tab.watch(60)
    EarnRule.objects.filter(brand=tv.brand, event_type="watch_minute").update(enabled=False)
    tv.clock.advance(30)
    tab.watch(90)  # the cached rule still says enabled: a minute is recorded, the processor refuses it
    assert points(tv.membership) == 1
    assert Event.objects.filter(membership=tv.membership, status="rejected", reason="rule_inactive").exists()
    selectors.caches_clear()
    tv.clock.advance(30)
    assert tab.beat().json()["reason"] == "rule_inactive"


def test_the_allotment_is_counted_on_minutes_recorded_so_pending_minutes_count_at_once(tv_async):
    EarnRule.objects.filter(brand=tv_async.brand, event_type="watch_minute").update(cap_per_day=2)
    tab = tv_async.tab()
    tab.lease()
    answers = [send(tab, on_schedule(tab))]
    for _ in range(6):
        tv_async.clock.advance(30)
        answers.append(send(tab, on_schedule(tab)))
    # No worker ran: nothing is credited, yet the third minute is refused.
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 200, 422, 422]
    assert minutes_recorded(tv_async.membership) == 2
    assert points(tv_async.membership) == 0


def test_a_superseded_lease_never_records_the_minute_it_was_about_to_complete(tv_async):
    first = tv_async.tab()
    first.lease()
    for _ in range(2):
        send(first, on_schedule(first))
        tv_async.clock.advance(25)
    send(first, on_schedule(first))  # 50 s counted, the member checked moments ago
    second = tv_async.tab(logged_in(tv_async.membership.member.user))
    second.lease()
    tv_async.clock.advance(25)
    response = send(first, on_schedule(first))
    assert (response.status_code, response.json()["error"]["code"]) == (409, "lease_superseded")
    assert minutes_recorded(tv_async.membership) == 0


# --- the schedule against the caches ---------------------------------------------------------------------


def test_a_playlist_edit_is_honoured_at_once_although_the_epochs_are_cached(tv_async, long_caches):
    channel = tv_async.channel
    tab = tv_async.tab()
    tab.lease()
    tv_async.clock.current = T0 + dt.timedelta(seconds=560)
    send(tab, on_schedule(tab))  # the epochs are cached now: Video 1 until 600 s, then Video 2
    new = PlaylistItemFactory(channel=channel, title="Breaking news", duration_seconds=300, order=0)
    services.channel_schedule_publish(channel=channel, now=tv_async.clock.now())  # from 600 s: news first

    tv_async.clock.current = T0 + dt.timedelta(seconds=590)
    assert send(tab, on_schedule(tab)).json()["counted"] is True  # Video 1 plays to its end
    tv_async.clock.current = T0 + dt.timedelta(seconds=615)
    answer = send(tab, {**on_schedule(tab), "video_id": new.video_id, "position": 15}).json()
    assert (answer["counted"], answer["reason"]) == (True, None)
    old_next = channel.items.get(title="Video 2").video_id
    tv_async.clock.current = T0 + dt.timedelta(seconds=640)
    answer = send(tab, {**on_schedule(tab), "video_id": old_next, "position": 40}).json()
    assert answer["reason"] == "wrong_video"  # what the old schedule said is no longer the broadcast


def test_a_channel_put_on_air_while_its_epochs_are_cached_counts_at_once(frozen_clock, eager_tasks, long_caches):
    brand = BrandFactory()
    watch_rule(brand)
    channel = channel_on_air(brand=brand, durations=(60,), started_at=T0, loop=False)
    user, _membership = member_user(brand)
    tab = Tab(logged_in(user), channel, frozen_clock)
    tab.lease()
    frozen_clock.current = T0 + dt.timedelta(seconds=120)  # the playlist has ended: off the air
    assert send(tab, on_schedule(tab)).json()["reason"] == "off_air"
    channel.loop = True
    channel.save()
    services.channel_schedule_publish(channel=channel, now=frozen_clock.now())  # on the air again, now
    frozen_clock.advance(20)
    assert send(tab, on_schedule(tab)).json()["reason"] == "resumed"  # watching again, not "off_air"


# --- concurrency -------------------------------------------------------------------------------------------


def test_racing_heartbeats_of_one_lease_check_the_member_once(tv_async, monkeypatch):
    tab = tv_async.tab()
    tab.lease()
    send(tab, on_schedule(tab))
    tv_async.clock.advance(CHECK)
    body = on_schedule(tab)
    racers = [same_session(tab) for _ in range(8)]
    reads = []
    real = selectors.viewer_state

    def counted(**kwargs):
        reads.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(selectors, "viewer_state", counted)
    statuses = run_concurrently(lambda index: send(racers[index], body).status_code, len(racers))
    assert statuses == [200] * len(racers)
    assert len(reads) == 1


def test_members_racing_heartbeats_at_their_allotment_record_it_and_no_more(frozen_clock, eager_tasks):
    brand = BrandFactory()
    watch_rule(brand, points=3, cap_per_day=2)
    channel = channel_on_air(brand=brand, durations=(600,), started_at=T0)
    members = []
    for _ in range(5):
        user, membership = member_user(brand)
        tab = Tab(logged_in(user), channel, frozen_clock)
        tab.lease()
        members.append((membership, [same_session(tab) for _ in range(3)]))  # one page, retries racing
    racers = [(membership, racer) for membership, tabs in members for racer in tabs]

    def beat(index: int) -> int:
        tab = racers[index][1]
        return send(tab, bodies[index]).status_code

    statuses = []
    for step in range(12):  # 0 ... 220 s, every 20 s: the allotment (2 minutes) runs out at 120 s
        if step:
            frozen_clock.advance(20)
        bodies = [on_schedule(tab) for _membership, tab in racers]
        statuses += run_concurrently(beat, len(racers))

    assert set(statuses) == {200, 422}
    for membership, _tabs in members:
        assert minutes_recorded(membership) == 2
        assert points(membership) == 6


# --- what the page sends ---------------------------------------------------------------------------------


def _serializer(data):
    serializer = HeartbeatInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _outcome(validate, data):
    try:
        return ("ok", validate(data))
    except ValidationError as error:
        return ("invalid", error.detail)


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from([*PLAYER_STATES, " playing", "PLAYING", "", " x ", "a\x00b", "12", "1e3", "true", "nan"]),
    st.lists(st.integers(), max_size=2),
)


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "lease": st.one_of(_values, st.text(min_size=1, max_size=2100)),
            "state": _values,
            "video_id": st.one_of(_values, st.text(max_size=25)),
            "position": st.one_of(_values, st.floats(min_value=-10, max_value=7 * 24 * 3600 + 10)),
            "visible": _values,
            "extra": _values,
        },
    )
)
def test_the_input_shortcut_takes_exactly_what_the_serializer_would_return(data):
    assert _outcome(heartbeat_input, data) == _outcome(_serializer, data)
