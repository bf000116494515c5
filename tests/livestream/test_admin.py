"""Partner portal: brand staff build and reorder their channel's playlist; a pasted URL becomes the id."""

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from livestream import selectors
from livestream.models import Channel, PlaylistItem, ScheduleEpoch
from livestream.youtube import REFUSED, parse_duration, parse_video_id
from tests.livestream.factories import ChannelFactory, PlaylistItemFactory
from tests.loyalty.factories import BrandFactory, BrandStaffFactory

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/livestream/channel/add/"


@pytest.mark.parametrize(
    "pasted",
    [
        "dQw4w9WgXcQ",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=RDdQw4w9WgXcQ&t=42s",
        "http://youtube.com/watch?feature=share&v=dQw4w9WgXcQ",
        "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://music.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://youtu.be/dQw4w9WgXcQ",
        "youtu.be/dQw4w9WgXcQ?si=abc",
        "https://www.youtube.com/embed/dQw4w9WgXcQ?start=10",
        "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
        "https://www.youtube.com/shorts/dQw4w9WgXcQ",
        "  https://youtu.be/dQw4w9WgXcQ  ",
    ],
)
def test_a_pasted_youtube_address_gives_the_video_id(pasted):
    assert parse_video_id(pasted) == "dQw4w9WgXcQ"


@pytest.mark.parametrize(
    "pasted",
    [
        "",
        "dQw4w9WgXc",
        "dQw4w9WgXcQQ",
        "https://www.youtube.com/playlist?list=PL1234567890",
        "https://www.youtube.com/@rickastley",
        "https://www.youtube.com/watch?v=short",
        "https://vimeo.com/dQw4w9WgXcQ",
        "https://youtu.be.evil.example/dQw4w9WgXcQ",
        "https://www.youtube.com/channel/dQw4w9WgXcQ",
        "javascript:alert(1)",
    ],
)
def test_anything_else_is_refused_with_a_clear_message(pasted):
    with pytest.raises(ValidationError) as error:
        parse_video_id(pasted)
    assert error.value.messages[0] in (REFUSED,)


def test_durations_are_seconds_or_minutes_and_seconds():
    assert [parse_duration(v) for v in ("213", "3:33", "1:02:03", " 45 ")] == [213, 213, 3723, 45]
    for bad in ("0", "3:75", "abc", "-5", "1:2:3:4"):
        with pytest.raises(ValidationError):
            parse_duration(bad)


def form_data(brand, *items, name="Nova TV", slug="nova-tv", channel=None):
    """The POST of the channel form with its playlist inline: items are dicts of the inline's fields."""
    existing = list(channel.items.order_by("order", "id")) if channel else []
    data = {
        "brand": brand.pk,
        "name": name,
        "slug": slug,
        "is_active": "on",
        "loop": "on",
        "items-TOTAL_FORMS": len(items),
        "items-INITIAL_FORMS": len(existing),
        "items-MIN_NUM_FORMS": 0,
        "items-MAX_NUM_FORMS": 1000,
    }
    for index, item in enumerate(items):
        row = {"enabled": "on", "order": "", **item}
        if index < len(existing):
            row["id"] = existing[index].pk
            row["channel"] = channel.pk
        for field, value in row.items():
            if value is not None:
                data[f"items-{index}-{field}"] = value
    return data


@pytest.fixture
def staff_client(client):
    brand = BrandFactory(name="Nova Lane", slug="nova")
    client.force_login(BrandStaffFactory(brand=brand).user)
    client.brand = brand
    return client


def test_staff_create_a_channel_and_its_playlist_by_pasting_youtube_addresses(staff_client):
    brand = staff_client.brand
    response = staff_client.post(
        ADD_URL,
        form_data(
            brand,
            {
                "video_id": "https://youtu.be/dQw4w9WgXcQ",
                "title": "Never Gonna Give You Up",
                "duration_seconds": "3:33",
            },
            {
                "video_id": "https://www.youtube.com/watch?v=kJQP7kiw5Fk",
                "title": "Despacito",
                "duration_seconds": "282",
            },
        ),
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    channel = Channel.objects.get(slug="nova-tv")
    assert channel.brand == brand
    assert list(channel.items.order_by("order").values_list("video_id", "duration_seconds", "order")) == [
        ("dQw4w9WgXcQ", 213, 0),
        ("kJQP7kiw5Fk", 282, 1),
    ]
    on_air = selectors.channel_on_air(channel=channel)
    assert on_air.current.item.video_id == "dQw4w9WgXcQ"  # on the air as soon as it is saved
    assert ScheduleEpoch.objects.filter(channel=channel).count() == 1


def test_a_pasted_address_that_is_not_a_video_is_a_form_error_and_nothing_is_saved(staff_client):
    response = staff_client.post(
        ADD_URL,
        form_data(
            staff_client.brand,
            {
                "video_id": "https://www.youtube.com/playlist?list=PL123",
                "title": "A playlist",
                "duration_seconds": "60",
            },
        ),
    )
    assert response.status_code == 200
    assert "Paste a YouTube video id (11 characters) or a YouTube video address" in response.content.decode()
    assert not Channel.objects.exists()
    assert not PlaylistItem.objects.exists()


def test_staff_reorder_the_playlist_and_new_videos_go_to_the_end(staff_client):
    brand = staff_client.brand
    channel = ChannelFactory(brand=brand, slug="nova-tv", name="Nova TV")
    first = PlaylistItemFactory(channel=channel, title="First", order=0)
    second = PlaylistItemFactory(channel=channel, title="Second", order=1)

    response = staff_client.post(
        f"/admin/livestream/channel/{channel.pk}/change/",
        form_data(
            brand,
            {"video_id": first.video_id, "title": "First", "duration_seconds": "60", "order": 1},
            {"video_id": second.video_id, "title": "Second", "duration_seconds": "60", "order": 0},
            {"video_id": "https://youtu.be/dQw4w9WgXcQ", "title": "Added", "duration_seconds": "1:00"},
            channel=channel,
        ),
    )

    assert response.status_code == 302
    assert [item.title for item in selectors.channel_playlist(channel=channel)] == ["Second", "First", "Added"]


def test_the_change_page_shows_what_is_on_air_and_the_inline_is_sortable(staff_client):
    channel = ChannelFactory(brand=staff_client.brand, name="Nova TV")
    PlaylistItemFactory(channel=channel, title="Opening number")
    from livestream import services

    services.channel_schedule_publish(channel=channel)
    html = staff_client.get(f"/admin/livestream/channel/{channel.pk}/change/").content.decode()
    assert "Opening number" in html
    assert 'data-ordering-field="order"' in html  # unfold's drag-and-drop sorting
    assert f"/b/{staff_client.brand.slug}/tv/{channel.slug}/" in html


def test_staff_never_see_nor_edit_another_brands_channel(staff_client):
    other = ChannelFactory(brand=BrandFactory(name="Bravo Beats"), name="Bravo TV")
    PlaylistItemFactory(channel=other)
    assert staff_client.get(f"/admin/livestream/channel/{other.pk}/change/").status_code == 404
    listing = staff_client.get("/admin/livestream/channel/").content.decode()
    assert "Bravo TV" not in listing
    form = staff_client.get(ADD_URL).content.decode()
    assert "Bravo Beats" not in form
    response = staff_client.post(ADD_URL, form_data(other.brand, name="Sneaky", slug="sneaky"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Channel.objects.filter(slug="sneaky").exists()


@pytest.mark.django_db(transaction=True)
def test_two_staff_appending_videos_at_once_get_a_position_each_and_both_go_on_air():
    from livestream import services
    from tests.concurrency import run_concurrently

    channel = ChannelFactory()
    PlaylistItemFactory(channel=channel, order=0, title="Opener")

    def append(n):
        item = PlaylistItem(
            channel=channel, video_id=f"new{n:08d}", title=f"Added {n}", duration_seconds=60, order=None
        )
        with transaction.atomic():  # as the portal saves: the items, then the publication, in one transaction
            services.playlist_items_save(channel=channel, changed=[item])
            services.channel_schedule_publish(channel=channel)

    results = run_concurrently(append, 6)

    assert results == [None] * 6
    orders = list(PlaylistItem.objects.filter(channel=channel).values_list("order", flat=True))
    assert sorted(orders) == list(range(7))  # no two share a position
    on_air = [item.title for item in selectors.channel_playlist(channel=channel)]
    assert ScheduleEpoch.objects.filter(channel=channel).latest("starts_at").playlist[-1]["title"] == on_air[-1]
    assert len(ScheduleEpoch.objects.filter(channel=channel).latest("starts_at").playlist) == 7
