"""The TV page: the player for everyone, points for members, a way in for everyone else."""

import json

import pytest

from tests.livestream.conftest import T0, logged_in
from tests.livestream.factories import ChannelFactory, channel_on_air, member_user, watch_rule
from tests.loyalty.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def brand(frozen_clock):
    brand = BrandFactory(name="Nova Lane", slug="nova", points_name="notes")
    watch_rule(brand)
    channel_on_air(brand=brand, started_at=T0, slug="nova-tv", name="Nova TV")
    return brand


def config_of(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="tv-config" type="application/json">') + len(
        '<script id="tv-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_a_visitor_sees_the_stream_and_a_prompt_to_log_in(client, brand):
    response = client.get("/b/nova/tv/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nova TV" in html
    assert "Video 1" in html  # what is playing, server-rendered
    assert "Log in to earn" in html
    assert "/login/?next=/b/nova/tv/" in html
    config = config_of(response)
    assert config["member"] is False
    assert config["onAir"]["item"]["title"] == "Video 1"
    assert config["urls"]["heartbeat"] == "/api/v1/live/nova-tv/heartbeat"
    # Without a Referer naming this site, YouTube's player refuses to play (error 153).
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_a_logged_in_fan_who_is_not_a_member_is_offered_to_join(brand):
    html = logged_in(UserFactory()).get("/b/nova/tv/").content.decode()
    assert "Join the fan club" in html
    assert "/b/nova/join/" in html


def test_a_member_sees_points_today_out_of_the_allotment_and_the_balance(brand):
    user, _membership = member_user(brand)
    response = logged_in(user).get("/b/nova/tv/")
    html = response.content.decode()
    assert config_of(response)["member"] is True
    assert "Notes today" in html
    assert "data-tv-allotment>120<" in html
    assert "Every minute you watch earns 1 note, up to 120 a day" in html
    assert "csrfmiddlewaretoken" in html


def test_a_brand_with_several_channels_shows_the_first_by_default_and_each_at_its_own_address(client, brand):
    channel_on_air(brand=brand, started_at=T0, slug="nova-live", name="Nova Live")
    assert config_of(client.get("/b/nova/tv/"))["channel"] == "nova-tv"
    response = client.get("/b/nova/tv/nova-live/")
    assert config_of(response)["channel"] == "nova-live"
    assert 'href="/b/nova/tv/nova-tv/"' in response.content.decode()


def test_unknown_or_inactive_channels_and_brands_without_one_are_404(client, brand):
    ChannelFactory(brand=brand, slug="old", is_active=False)
    BrandFactory(slug="quiet")
    assert client.get("/b/nova/tv/old/").status_code == 404
    assert client.get("/b/nova/tv/nope/").status_code == 404
    assert client.get("/b/quiet/tv/").status_code == 404
    assert client.get("/b/nobody/tv/").status_code == 404


def test_the_fake_player_setting_reaches_the_page(client, brand, settings):
    settings.LIVESTREAM_FAKE_PLAYER = True
    settings.LIVESTREAM_MINUTE_SECONDS = 4
    config = config_of(client.get("/b/nova/tv/"))
    assert (config["fakePlayer"], config["minuteSeconds"], config["heartbeatSeconds"]) == (True, 4, 2)
