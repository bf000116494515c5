"""The portal's "Import from YouTube": paste addresses, preview, confirm; against a local fake of the API."""

import datetime as dt

import pytest
from django.test import Client

from livestream import selectors
from livestream.models import PlaylistItem, ScheduleEpoch
from livestream.schedule import slots_overlapping
from tests.livestream.conftest import T0
from tests.livestream.factories import ChannelFactory, PlaylistItemFactory
from tests.loyalty.factories import BrandFactory, BrandStaffFactory

pytestmark = pytest.mark.django_db

PLAYLIST = "PLnovaLaneTour2026"


@pytest.fixture
def staff_client(client):
    brand = BrandFactory(name="Nova Lane", slug="nova")
    client.force_login(BrandStaffFactory(brand=brand).user)
    client.brand = brand
    return client


@pytest.fixture
def channel(staff_client):
    return ChannelFactory(brand=staff_client.brand, name="Nova TV", slug="nova-tv")


@pytest.fixture
def tour(fake_youtube):
    """A public playlist of four videos on the fake YouTube; the third refuses embedding."""
    fake_youtube.playlists[PLAYLIST] = [
        fake_youtube.video("tour0000001", "Nova Lane - Opening Night (Live)", "PT4M12S"),
        fake_youtube.video("tour0000002", "Nova Lane - Harbour Lights", "PT1H2M3S"),
        fake_youtube.video("tour0000003", "Nova Lane - Label Exclusive", "PT3M", embeddable=False),
        fake_youtube.video("tour0000004", "Nova Lane - Encore", "PT59S"),
    ]
    return fake_youtube


def import_url(channel) -> str:
    return f"/admin/livestream/channel/{channel.pk}/youtube/"


def preview(client, channel, sources: str):
    return client.post(import_url(channel), {"sources": sources, "preview": "1"})


def confirm(client, channel, response):
    return client.post(import_url(channel), {"payload": response.context["payload"], "confirm": "1"})


def test_the_channel_page_offers_the_import_and_the_preview_adds_nothing(staff_client, channel, tour):
    page = staff_client.get(f"/admin/livestream/channel/{channel.pk}/change/").content.decode()
    assert import_url(channel) in page
    assert "Import from YouTube" in page
    assert staff_client.get(import_url(channel)).status_code == 200

    response = preview(staff_client, channel, f"https://www.youtube.com/playlist?list={PLAYLIST}")

    html = response.content.decode()
    assert response.status_code == 200
    for text in ("Nova Lane - Opening Night (Live)", "4:12", "1:02:03", "0:59", "Add 4 video(s) to the playlist"):
        assert text in html
    assert "no: flagged, never on air" in html  # the video that refuses embedding, before it is added
    assert not PlaylistItem.objects.exists()


def test_importing_a_playlist_appends_its_videos_in_order_and_flags_the_one_that_refuses_embedding(
    staff_client, channel, tour, frozen_clock
):
    PlaylistItemFactory(channel=channel, title="Already here", order=0, duration_seconds=60)
    response = preview(staff_client, channel, f"https://www.youtube.com/playlist?list={PLAYLIST}")

    done = confirm(staff_client, channel, response)

    assert done.status_code == 302
    assert done["Location"] == f"/admin/livestream/channel/{channel.pk}/change/"
    rows = list(channel.items.order_by("order").values_list("title", "video_id", "duration_seconds", "embeddable"))
    assert rows == [
        ("Already here", rows[0][1], 60, True),
        ("Nova Lane - Opening Night (Live)", "tour0000001", 252, True),
        ("Nova Lane - Harbour Lights", "tour0000002", 3723, True),
        ("Nova Lane - Label Exclusive", "tour0000003", 180, False),
        ("Nova Lane - Encore", "tour0000004", 59, True),
    ]
    page = staff_client.get(done["Location"]).content.decode()
    assert "Added 4 video(s) from YouTube" in page
    assert "1 refuse embedding" in page
    assert "Refuses embedding: never on air" in page  # the flag on its row


def test_the_schedule_the_tv_page_receives_skips_a_flagged_video(staff_client, channel, tour, frozen_clock, client):
    confirm(staff_client, channel, preview(staff_client, channel, PLAYLIST))

    assert [item.video_id for item in selectors.channel_playlist(channel=channel)] == [
        "tour0000001",
        "tour0000002",
        "tour0000004",
    ]
    epoch = ScheduleEpoch.objects.get(channel=channel)
    assert "tour0000003" not in [entry["video_id"] for entry in epoch.playlist]
    # Two whole loops of the channel: the flagged video is never on air, and /now never names it.
    epochs = selectors.channel_epochs(channel=channel, since=T0)
    played = {slot.item.video_id for slot in slots_overlapping(epochs, T0, T0 + dt.timedelta(seconds=2 * 4034))}
    assert played == {"tour0000001", "tour0000002", "tour0000004"}
    seen = set()
    for _ in range(8):
        body = Client().get(f"/api/v1/live/{channel.slug}/now").json()
        seen |= {body["item"]["video_id"], body["next"]["video_id"]}
        frozen_clock.advance(1000)
    assert "tour0000003" not in seen
    assert channel.items.filter(embeddable=False).count() == 1  # kept in the playlist, flagged


def test_several_videos_and_playlists_pasted_one_per_line_keep_their_order(staff_client, channel, tour):
    single = tour.video("single00001", "Acoustic Session", "PT10M")
    tour.page_size = 3  # the playlist comes in two pages
    response = preview(
        staff_client, channel, f"https://youtu.be/{single}\n\n{PLAYLIST}\nyoutube.com/shorts/tour0000004"
    )
    confirm(staff_client, channel, response)

    assert [item.video_id for item in channel.items.order_by("order")] == [
        "single00001",
        "tour0000001",
        "tour0000002",
        "tour0000003",
        "tour0000004",
        "tour0000004",
    ]
    assert [call.get("pageToken") for call in tour.calls("playlistItems")] == [None, "3"]


def test_a_confirmation_sent_twice_adds_the_videos_once(staff_client, channel, tour):
    response = preview(staff_client, channel, PLAYLIST)
    confirm(staff_client, channel, response)
    again = confirm(staff_client, channel, response)
    assert again.status_code == 302
    assert channel.items.count() == 4
    assert "already added" in staff_client.get(again["Location"]).content.decode()


def test_a_changed_preview_is_refused_and_adds_nothing(staff_client, channel, tour):
    response = preview(staff_client, channel, PLAYLIST)
    tampered = response.context["payload"][:-3] + "xyz"
    answer = staff_client.post(import_url(channel), {"payload": tampered, "confirm": "1"})
    assert answer.status_code == 200
    assert "This preview is too old or was changed" in answer.content.decode()
    assert not PlaylistItem.objects.exists()


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("https://vimeo.com/12345", "Line 1: &#x27;https://vimeo.com/12345&#x27; is not a YouTube playlist or video"),
        ("dQw4w9WgXcQ\nhttps://www.youtube.com/@nova", "Line 2: "),
        ("", "This field is required."),
    ],
)
def test_bad_input_is_a_form_error_asks_youtube_nothing_and_creates_nothing(
    staff_client, channel, tour, pasted, message
):
    response = preview(staff_client, channel, pasted)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["payload"] is None
    assert tour.requests == []
    assert not PlaylistItem.objects.exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda fake: setattr(fake, "error", (403, "quotaExceeded")), "quota is used up (quotaExceeded)"),
        (lambda fake: setattr(fake, "error", (403, "forbidden")), "YouTube refused the API key (forbidden)"),
        (lambda fake: fake.playlists.clear(), f"YouTube has no playlist {PLAYLIST}"),
        (lambda fake: fake.stop(), "YouTube could not be reached"),
    ],
)
def test_api_errors_are_messages_on_the_page_never_a_500_and_create_nothing(
    staff_client, channel, tour, setup, message
):
    setup(tour)  # (stopping the fake twice is harmless: the fixture stops it again)
    response = preview(staff_client, channel, PLAYLIST)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["payload"] is None
    assert not PlaylistItem.objects.exists()


def test_videos_youtube_does_not_know_are_named_and_left_out(staff_client, channel, tour):
    response = preview(staff_client, channel, "https://youtu.be/gone0000001\ntour0000001")
    html = response.content.decode()
    assert "Not found on YouTube" in html
    assert "gone0000001" in html
    confirm(staff_client, channel, response)
    assert list(channel.items.values_list("video_id", flat=True)) == ["tour0000001"]

    nothing = preview(staff_client, channel, "gone0000001")
    assert "Nothing to add" in nothing.content.decode()
    assert nothing.context["payload"] is None


def test_staff_of_another_brand_cannot_import_into_the_channel(channel, tour, staff_client):
    preview_of_owner = preview(staff_client, channel, PLAYLIST)
    outsider = Client()
    outsider.force_login(BrandStaffFactory(brand=BrandFactory(name="Bravo Beats")).user)
    tour.requests.clear()

    assert outsider.get(import_url(channel)).status_code == 404
    assert preview(outsider, channel, PLAYLIST).status_code == 404
    answer = outsider.post(import_url(channel), {"payload": preview_of_owner.context["payload"], "confirm": "1"})
    assert answer.status_code == 404
    assert tour.requests == []
    assert not PlaylistItem.objects.exists()


def test_a_preview_confirms_only_for_the_login_that_made_it(channel, tour, staff_client):
    payload = preview(staff_client, channel, PLAYLIST).context["payload"]
    colleague = Client()
    colleague.force_login(BrandStaffFactory(brand=channel.brand).user)
    answer = colleague.post(import_url(channel), {"payload": payload, "confirm": "1"})
    assert "This preview is too old or was changed" in answer.content.decode()
    assert not PlaylistItem.objects.exists()


def test_the_import_is_csrf_protected_and_needs_a_portal_login(channel, tour, staff_client):
    user = BrandStaffFactory(brand=channel.brand).user
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert preview(strict, channel, PLAYLIST).status_code == 403
    anonymous = Client().get(import_url(channel))
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]
    assert tour.requests == []


def test_without_an_api_key_the_import_is_not_offered(staff_client, channel, settings):
    settings.YOUTUBE_API_KEY = ""
    page = staff_client.get(f"/admin/livestream/channel/{channel.pk}/change/").content.decode()
    assert "Import from YouTube" not in page
    assert staff_client.get(import_url(channel)).status_code == 404
