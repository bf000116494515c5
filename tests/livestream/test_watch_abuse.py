"""Watch-to-earn abuse and Redis loss: heartbeats and leases throttled per member and per address, only
verified logins earn, and a minute counter Redis lost is rebuilt from PostgreSQL's recorded minutes."""

from __future__ import annotations

import pytest
from django_redis import get_redis_connection

from loyalty.models import Event, Membership, User
from loyalty.selectors import membership_balance
from tests.livestream.conftest import Tab, logged_in
from tests.livestream.factories import member_user

pytestmark = pytest.mark.django_db(transaction=True)


def _points(membership: Membership) -> int:
    return membership_balance(Membership.objects.get(pk=membership.pk))


def test_a_member_earns_on_after_redis_lost_the_minute_counter(tv):
    tab = tv.tab()
    tab.lease()
    tab.watch(180)
    assert _points(tv.membership) == 3

    get_redis_connection("default").flushdb()  # Redis restarted empty: counters, leases, figures gone
    assert tab.beat().json()["error"]["code"] == "lease_superseded"  # the live lease went with it
    tab.lease()
    tab.watch(120)

    assert _points(tv.membership) == 5  # minutes 4 and 5, not minutes 1 and 2 again (credited already)
    keys = sorted(Event.objects.filter(membership=tv.membership).values_list("idempotency_key", flat=True))
    assert [key.rsplit(":", 1)[1] for key in keys] == ["1", "2", "3", "4", "5"]


def test_the_counter_is_rebuilt_after_the_highest_minute_recorded_not_their_count(tv):
    tab = tv.tab()
    tab.lease()
    tab.watch(120)  # minutes 1 and 2
    redis = get_redis_connection("default")
    counter = f"tally:live:minutes:{tv.membership.pk}:{tv.clock.now().astimezone(tv.brand.zone).date()}"
    redis.set(counter, 3)  # minute 3 never reached PostgreSQL (it was queued in a Redis that went away)
    tv.clock.advance(30)
    tab.beat()
    tv.clock.advance(30)
    tab.beat()  # minute 4
    redis.delete(counter)  # and now the counter is lost: 3 minutes recorded, the highest number 4

    tv.clock.advance(30)
    tab.beat()
    tv.clock.advance(30)
    tab.beat()

    keys = Event.objects.filter(membership=tv.membership).values_list("idempotency_key", flat=True)
    assert sorted(int(key.rsplit(":", 1)[1]) for key in keys) == [1, 2, 4, 5]
    assert _points(tv.membership) == 4


def test_a_member_sending_more_heartbeats_than_a_page_is_throttled(tv, settings):
    settings.LIVESTREAM_HEARTBEATS_PER_MEMBER = 4
    tab = tv.tab()
    tab.lease()
    statuses = [tab.beat().status_code for _ in range(6)]  # all within one watch minute

    assert statuses == [200, 200, 200, 200, 429, 429]
    error = tab.beat().json()["error"]
    assert error["code"] == "throttled"
    tv.clock.advance(60)  # the next window
    assert tab.beat().status_code == 200


def test_one_address_heartbeating_for_many_members_is_throttled(tv, settings):
    settings.LIVESTREAM_HEARTBEATS_PER_ADDRESS = 3
    tabs = []
    for _ in range(4):
        user, _membership = member_user(tv.brand)
        tab = Tab(logged_in(user), tv.channel, tv.clock)
        tab.lease()
        tabs.append(tab)

    statuses = [tab.beat().status_code for tab in tabs]

    assert statuses == [200, 200, 200, 429]


def test_leases_are_throttled_per_member(tv, settings):
    settings.LIVESTREAM_LEASES_PER_MEMBER = 2
    tab = tv.tab()
    assert [tab.lease().status_code for _ in range(3)] == [201, 201, 429]
    assert tab.lease().json()["error"]["code"] == "throttled"


def test_an_unverified_login_earns_nothing_by_watching(tv):
    User.objects.filter(pk=tv.membership.member.user_id).update(email_verified_at=None)
    response = tv.tab().lease()
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"
    assert "Confirm your email" in response.json()["error"]["message"]
