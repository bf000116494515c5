"""Publishing a playlist: edits go on air at the end of the video playing, disabled videos never play."""

import datetime as dt

import pytest

from livestream import selectors, services
from livestream.models import ScheduleEpoch
from tests.livestream.conftest import T0
from tests.livestream.factories import ChannelFactory, PlaylistItemFactory, channel_on_air

pytestmark = pytest.mark.django_db


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def title_at(channel, seconds: float) -> tuple[str, float] | None:
    slot = selectors.channel_on_air(channel=channel, at=at(seconds)).current
    return (slot.item.title, slot.offset) if slot else None


def test_a_new_channel_goes_on_air_from_the_top_when_first_published():
    channel = channel_on_air(durations=(60, 90), started_at=T0)
    assert title_at(channel, 0) == ("Video 1", 0)
    assert title_at(channel, 75) == ("Video 2", 15)
    assert ScheduleEpoch.objects.filter(channel=channel).count() == 1


def test_an_edit_while_a_video_plays_goes_on_air_when_it_ends():
    channel = channel_on_air(durations=(60, 90, 30), started_at=T0)
    for order, title in enumerate(["Video 2", "Video 1", "Video 3"]):  # reordered during Video 2
        channel.items.filter(title=title).update(order=order)

    epoch = services.channel_schedule_publish(channel=channel, now=at(70))

    assert epoch.starts_at == at(150)
    assert title_at(channel, 70) == ("Video 2", 10)  # no jump for anyone watching now
    assert title_at(channel, 149) == ("Video 2", 89)
    assert title_at(channel, 150) == ("Video 1", 0)  # what follows Video 2 in the new order: 2, 1, 3
    assert title_at(channel, 210) == ("Video 3", 0)
    assert title_at(channel, 240) == ("Video 2", 0)
    on_air = selectors.channel_on_air(channel=channel, at=at(70))
    assert (on_air.next.item.title, on_air.pending_change_at) == ("Video 1", at(150))


def test_disabled_videos_are_skipped():
    channel = ChannelFactory()
    PlaylistItemFactory(channel=channel, title="One", duration_seconds=60, order=0)
    PlaylistItemFactory(channel=channel, title="Hidden", duration_seconds=60, order=1, enabled=False)
    PlaylistItemFactory(channel=channel, title="Three", duration_seconds=60, order=2)
    services.channel_schedule_publish(channel=channel, now=T0)

    titles = {title_at(channel, seconds)[0] for seconds in range(0, 600, 10)}
    assert titles == {"One", "Three"}


def test_disabling_the_video_on_air_lets_it_finish_then_continues_with_the_next():
    channel = channel_on_air(durations=(60, 60, 60), started_at=T0)
    channel.items.filter(title="Video 2").update(enabled=False)
    services.channel_schedule_publish(channel=channel, now=at(61))
    assert title_at(channel, 100) == ("Video 2", 40)
    assert title_at(channel, 120) == ("Video 3", 0)
    assert title_at(channel, 180) == ("Video 1", 0)
    assert title_at(channel, 240) == ("Video 3", 0)


def test_saving_without_a_change_publishes_nothing_and_a_second_edit_replaces_a_pending_one():
    channel = channel_on_air(durations=(60, 60, 60), started_at=T0)
    assert services.channel_schedule_publish(channel=channel, now=at(10)) is None

    channel.items.filter(title="Video 3").update(title="Video 3 (live)")
    services.channel_schedule_publish(channel=channel, now=at(10))
    channel.items.filter(title="Video 2").update(title="Video 2 (remastered)")
    services.channel_schedule_publish(channel=channel, now=at(20))

    assert ScheduleEpoch.objects.filter(channel=channel).count() == 2  # the first edit never went on air
    assert title_at(channel, 60)[0] == "Video 2 (remastered)"
    assert title_at(channel, 120)[0] == "Video 3 (live)"


def test_undoing_a_pending_edit_cancels_it():
    channel = channel_on_air(durations=(60, 60), started_at=T0)
    channel.items.filter(title="Video 2").update(enabled=False)
    services.channel_schedule_publish(channel=channel, now=at(10))
    channel.items.filter(title="Video 2").update(enabled=True)
    services.channel_schedule_publish(channel=channel, now=at(20))
    assert ScheduleEpoch.objects.filter(channel=channel).count() == 1
    assert title_at(channel, 60) == ("Video 2", 0)


def test_a_non_looping_channel_ends_and_a_later_edit_puts_it_back_on_air_from_the_top():
    channel = channel_on_air(durations=(60, 60), started_at=T0, loop=False)
    assert title_at(channel, 119) == ("Video 2", 59)
    assert title_at(channel, 120) is None
    on_air = selectors.channel_on_air(channel=channel, at=at(100))
    assert on_air.next is None

    PlaylistItemFactory(channel=channel, title="Encore", duration_seconds=30, order=5)
    services.channel_schedule_publish(channel=channel, now=at(500))
    assert title_at(channel, 500) == ("Video 1", 0)
    assert title_at(channel, 620) == ("Encore", 0)
    assert title_at(channel, 650) is None


def test_turning_loop_off_during_the_last_video_ends_the_channel_after_it():
    channel = channel_on_air(durations=(60, 60), started_at=T0)
    channel.loop = False
    channel.save(update_fields=["loop"])
    services.channel_schedule_publish(channel=channel, now=at(70))
    assert title_at(channel, 119) == ("Video 2", 59)
    assert title_at(channel, 120) is None


def test_the_schedule_survives_a_restart_because_it_is_only_data():
    channel = channel_on_air(durations=(60, 90, 30), started_at=T0)
    before = title_at(channel, 10_000)
    channel.refresh_from_db()  # a new process would read exactly this
    assert title_at(channel, 10_000) == before == ("Video 2", 10_000 % 180 - 60)
