"""Lengths the viewers' players report: one viewer or one odd player changes nothing; once several agree on
another length than the stored one, the schedule takes theirs from the next programme on, and staff see it."""

from __future__ import annotations

import pytest
from django_redis import get_redis_connection

from livestream import selectors
from livestream.models import PlaylistItem, ScheduleEpoch
from tests.livestream.conftest import Tab, logged_in
from tests.livestream.factories import member_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_reports_left():
    yield
    client = get_redis_connection("default")
    for key in client.scan_iter("tally:live:durations:*"):
        client.delete(key)


def viewers(tv, count: int) -> list[Tab]:
    tabs = []
    for _ in range(count):
        user, _membership = member_user(tv.brand)
        tab = Tab(logged_in(user), tv.channel, tv.clock)
        assert tab.lease().status_code == 201
        tabs.append(tab)
    return tabs


def report(tab: Tab, video_id: str, seconds: float):
    return tab.client.post(
        f"/api/v1/live/{tab.channel.slug}/duration",
        {"lease": tab.token, "video_id": video_id, "duration": seconds},
        content_type="application/json",
    )


def on_air_video(tv) -> PlaylistItem:
    return selectors.channel_on_air(channel=tv.channel, at=tv.clock.now()).current.item


def test_three_players_agreeing_on_another_length_correct_it_from_the_next_programme(tv, client):
    video = on_air_video(tv)
    item = PlaylistItem.objects.get(channel=tv.channel, video_id=video.video_id)
    epochs = ScheduleEpoch.objects.filter(channel=tv.channel).count()

    answers = [
        report(tab, video.video_id, seconds).json()
        for tab, seconds in zip(viewers(tv, 3), (612.4, 611.8, 613), strict=True)
    ]

    assert [answer["corrected"] for answer in answers] == [False, False, True]
    item.refresh_from_db()
    assert (item.duration_seconds, item.duration_corrected_from) == (612, 600)
    assert ScheduleEpoch.objects.filter(channel=tv.channel).count() == epochs + 1
    newest = ScheduleEpoch.objects.filter(channel=tv.channel).latest("id")
    assert newest.starts_at > tv.clock.now()  # the video on air is never cut
    assert {entry["duration"] for entry in newest.playlist if entry["video_id"] == video.video_id} == {612}


def test_one_viewer_counts_once_and_one_odd_player_changes_nothing(tv):
    video = on_air_video(tv)
    first, second, third = viewers(tv, 3)

    assert [report(first, video.video_id, 700).json()["recorded"] for _ in range(3)] == [True, False, False]
    report(second, video.video_id, 600.4)
    answer = report(third, video.video_id, 599.6).json()

    assert answer == {"recorded": True, "corrected": False, "duration": 600}
    assert PlaylistItem.objects.get(channel=tv.channel, video_id=video.video_id).duration_corrected_at is None


def test_players_that_disagree_with_each_other_change_nothing(tv):
    video = on_air_video(tv)

    for tab, seconds in zip(viewers(tv, 3), (640, 660, 680), strict=True):
        report(tab, video.video_id, seconds)

    assert PlaylistItem.objects.get(channel=tv.channel, video_id=video.video_id).duration_seconds == 600


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"video_id": "nope", "duration": 10}, 400, "video_id"),
        ({"video_id": "AAAAAAAAAAA", "duration": 0}, 400, "duration"),
        ({"video_id": "AAAAAAAAAAA", "duration": "long"}, 400, "duration"),
        ({"video_id": "AAAAAAAAAAA", "duration": 300}, 404, None),
    ],
)
def test_bad_reports_are_clear_4xx_answers(tv, body, status, field):
    [tab] = viewers(tv, 1)

    answer = tab.client.post(
        f"/api/v1/live/{tv.channel.slug}/duration", {"lease": tab.token, **body}, content_type="application/json"
    )

    assert answer.status_code == status
    if field:
        assert field in answer.json()["error"]["fields"]


def test_a_report_needs_the_viewers_own_lease(tv):
    video = on_air_video(tv)
    [mine] = viewers(tv, 1)
    other = Tab(tv.client, tv.channel, tv.clock)

    answer = other.client.post(
        f"/api/v1/live/{tv.channel.slug}/duration",
        {"lease": mine.token, "video_id": video.video_id, "duration": 612},
        content_type="application/json",
    )

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "lease_invalid"


def test_staff_see_a_corrected_length_in_the_portal(tv, client):
    from tests.loyalty.factories import BrandStaffFactory

    video = on_air_video(tv)
    for tab, seconds in zip(viewers(tv, 3), (612, 612, 612), strict=True):
        report(tab, video.video_id, seconds)
    client.force_login(BrandStaffFactory(brand=tv.brand).user)

    page = client.get(f"/admin/livestream/channel/{tv.channel.pk}/change/").content.decode()

    assert "Length corrected from 600 s" in page
