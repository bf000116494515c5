"""`manage.py demo` puts the artist's TV channel on air with a watch-minute rule, and is idempotent."""

import io

import pytest
from django.core.management import call_command

from livestream import selectors
from livestream.models import Channel, PlaylistItem, ScheduleEpoch
from loyalty.models import EarnRule

pytestmark = pytest.mark.django_db


def test_demo_puts_the_artist_tv_channel_on_air_and_running_it_again_creates_nothing(client):
    out = io.StringIO()
    call_command("demo", stdout=out)
    counts = (Channel.objects.count(), PlaylistItem.objects.count(), ScheduleEpoch.objects.count())
    call_command("demo", stdout=io.StringIO())

    assert (Channel.objects.count(), PlaylistItem.objects.count(), ScheduleEpoch.objects.count()) == counts
    channel = Channel.objects.get(slug="artist-tv")
    assert channel.brand.slug == "artist"
    assert channel.items.count() >= 5
    assert selectors.channel_on_air(channel=channel).current is not None
    rule = EarnRule.objects.get(brand=channel.brand, event_type="watch_minute")
    assert (rule.points, rule.cap_per_day) == (1, 120)
    assert "/b/artist/tv/" in out.getvalue()
    assert client.get("/b/artist/tv/").status_code == 200
