"""The public endpoints: the server clock and what a channel plays now."""

import datetime as dt

import pytest
from django.utils import timezone

from livestream import clock
from tests.livestream.conftest import T0
from tests.livestream.factories import ChannelFactory, channel_on_air

pytestmark = pytest.mark.django_db


def ms(moment: dt.datetime) -> int:
    return clock.to_ms(moment)


def test_time_returns_the_server_receive_and_send_times_in_milliseconds(client):
    before = ms(timezone.now())
    body = client.get("/api/v1/time").json()
    after = ms(timezone.now())
    assert before <= body["received"] <= body["sent"] <= after
    assert client.get("/api/v1/time")["Cache-Control"] == "no-store"


def test_now_returns_the_current_item_its_offset_the_next_item_and_the_server_time(client, frozen_clock):
    channel = channel_on_air(durations=(60, 90, 30), started_at=T0, slug="nova-tv")
    frozen_clock.advance(75.5)

    body = client.get("/api/v1/live/nova-tv/now").json()

    assert body["on_air"] is True
    assert body["server_time"] == ms(T0) + 75_500
    assert body["offset"] == 15.5
    assert body["item"]["title"] == "Video 2"
    assert (body["item"]["starts_at"], body["item"]["ends_at"]) == (ms(T0) + 60_000, ms(T0) + 150_000)
    assert body["item"]["video_id"] == channel.items.get(title="Video 2").video_id
    assert body["next"]["title"] == "Video 3"
    assert body["next"]["starts_at"] == body["item"]["ends_at"]


def test_now_of_a_finished_non_looping_channel_says_off_the_air(client, frozen_clock):
    channel_on_air(durations=(60,), started_at=T0, loop=False, slug="once")
    frozen_clock.advance(30)
    assert client.get("/api/v1/live/once/now").json()["next"] is None
    frozen_clock.advance(30)
    body = client.get("/api/v1/live/once/now").json()
    assert (body["on_air"], body["item"], body["offset"], body["next"]) == (False, None, None, None)


def test_now_of_an_unknown_or_inactive_channel_is_404_in_the_error_shape(client):
    ChannelFactory(slug="retired", is_active=False)
    for slug in ("retired", "nope"):
        response = client.get(f"/api/v1/live/{slug}/now")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_the_schema_documents_the_livestream_endpoints_with_examples(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    for path, method in [
        ("/api/v1/time", "get"),
        ("/api/v1/live/{slug}/now", "get"),
        ("/api/v1/live/{slug}/lease", "post"),
        ("/api/v1/live/{slug}/heartbeat", "post"),
    ]:
        operation = schema["paths"][path][method]
        examples = [
            example
            for response in operation["responses"].values()
            for media in response.get("content", {}).values()
            for example in media.get("examples", {}).values()
        ]
        assert examples, (path, method)
