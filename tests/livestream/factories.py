import datetime as dt

import factory
from factory.django import DjangoModelFactory

from livestream import services
from livestream.models import Channel, PlaylistItem
from loyalty.models import EarnRule
from tests.loyalty.factories import BrandFactory, MemberFactory, MembershipFactory, UserFactory


class ChannelFactory(DjangoModelFactory):
    class Meta:
        model = Channel

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"Channel {n}")
    slug = factory.Sequence(lambda n: f"channel-{n}")
    loop = True


class PlaylistItemFactory(DjangoModelFactory):
    class Meta:
        model = PlaylistItem

    channel = factory.SubFactory(ChannelFactory)
    # 11 characters, unique per item: "vid" + 8 digits.
    video_id = factory.Sequence(lambda n: f"vid{n:08d}")
    title = factory.Sequence(lambda n: f"Video {n}")
    duration_seconds = 60
    order = factory.Sequence(lambda n: n)


def channel_on_air(*, brand=None, durations=(60, 90, 30), started_at: dt.datetime, loop: bool = True, **kwargs):
    """A channel whose playlist (one video per duration, in order) went on air at `started_at`."""
    channel = ChannelFactory(brand=brand or BrandFactory(), loop=loop, **kwargs)
    for order, duration in enumerate(durations):
        PlaylistItemFactory(channel=channel, duration_seconds=duration, order=order, title=f"Video {order + 1}")
    services.channel_schedule_publish(channel=channel, now=started_at)
    return channel


def watch_rule(brand, *, points: int = 1, cap_per_day: int | None = 120) -> EarnRule:
    return EarnRule.objects.create(brand=brand, event_type="watch_minute", points=points, cap_per_day=cap_per_day)


def member_user(brand):
    """A login with an active membership of `brand`."""
    user = UserFactory()
    member = MemberFactory(user=user, email=user.email)
    return user, MembershipFactory(member=member, brand=brand)


# Used by tests/loyalty/test_admin_isolation.py: one object of each brand-owned model the portal shows.
BRAND_OBJECT_FACTORIES = {
    Channel: lambda brand: ChannelFactory(brand=brand),
}
