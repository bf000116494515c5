"""The YouTube Data API client: durations, what staff may paste, paging, batching and clear errors
(against a local fake of the API: never the network)."""

import socket

import pytest
from django.core.exceptions import ValidationError

from livestream import youtube
from livestream.youtube import Source, YouTubeClient, YouTubeError, parse_iso_duration, parse_source, parse_sources
from tests.livestream.youtube_fake import KEY


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("PT1H2M3S", 3723),
        ("PT3M33S", 213),
        ("PT45S", 45),
        ("PT10M", 600),
        ("PT2H", 7200),
        ("PT1H5S", 3605),
        ("P1DT2H3M4S", 93784),
        ("P1D", 86400),
        ("P1W", 604800),
        ("PT0S", 0),
        ("P0D", 0),
        ("PT1.9S", 1),
        (" PT4M ", 240),
    ],
)
def test_iso_8601_durations_are_whole_seconds(value, seconds):
    assert parse_iso_duration(value) == seconds


@pytest.mark.parametrize(
    "value", ["", "P", "PT", "P1DT", "1H", "PT1H2", "PT1M2H", "P1Y", "P1M", "PTS", "PT-1S", "pt1m", "3:33", None, 213]
)
def test_malformed_durations_are_refused(value):
    with pytest.raises(ValueError):
        parse_iso_duration(value)


@pytest.mark.parametrize(
    ("pasted", "source"),
    [
        ("https://www.youtube.com/playlist?list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf", "playlist"),
        ("youtube.com/playlist?list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf&si=x", "playlist"),
        ("https://m.youtube.com/watch?list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf", "playlist"),
        ("PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf", "playlist"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf", "video"),
        ("https://youtu.be/dQw4w9WgXcQ", "video"),
        ("https://www.youtube.com/shorts/dQw4w9WgXcQ", "video"),
        ("https://www.youtube.com/embed/dQw4w9WgXcQ", "video"),
        ("dQw4w9WgXcQ", "video"),
    ],
)
def test_playlists_videos_and_bare_ids_are_taken(pasted, source):
    parsed = parse_source(pasted)
    assert parsed.kind == source
    assert parsed.id == ("PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf" if source == "playlist" else "dQw4w9WgXcQ")


def test_several_sources_one_per_line_in_order_blank_lines_ignored():
    text = "https://youtu.be/dQw4w9WgXcQ\n\n  https://www.youtube.com/playlist?list=PL1234567890ab  \r\nkJQP7kiw5Fk\n"
    assert parse_sources(text) == [
        Source("video", "dQw4w9WgXcQ"),
        Source("playlist", "PL1234567890ab"),
        Source("video", "kJQP7kiw5Fk"),
    ]


def test_every_line_that_is_not_youtube_is_named():
    with pytest.raises(ValidationError) as error:
        parse_sources(
            "dQw4w9WgXcQ\nhttps://vimeo.com/12345\nhttps://www.youtube.com/@nova\nyoutube.com/playlist?list=x"
        )
    messages = error.value.messages
    assert [message.split(":")[0] for message in messages] == ["Line 2", "Line 3", "Line 4"]
    assert "'https://vimeo.com/12345' is not a YouTube playlist or video" in messages[0]
    for empty in ("", "  \n "):
        with pytest.raises(ValidationError, match="Paste at least one"):
            parse_sources(empty)
    with pytest.raises(ValidationError, match="at most 50"):
        parse_sources("dQw4w9WgXcQ\n" * 51)


# --- against the fake API ------------------------------------------------------------------------------


def client_for(fake) -> YouTubeClient:
    return YouTubeClient(key=KEY, base_url=fake.url)


def test_a_playlist_is_read_page_after_page_in_its_order(fake_youtube):
    ids = [fake_youtube.video(f"video{n:06d}", f"Song {n}", f"PT{n}M") for n in range(1, 8)]
    fake_youtube.playlists["PLnova0000001"] = ids
    fake_youtube.page_size = 3  # 7 videos: pages of 3, 3 and 1

    assert client_for(fake_youtube).playlist_video_ids("PLnova0000001") == (ids, False)

    calls = fake_youtube.calls("playlistItems")
    assert [call.get("pageToken") for call in calls] == [None, "3", "6"]
    assert all(call["part"] == "contentDetails" and call["maxResults"] == "50" for call in calls)
    assert all(call["key"] == KEY for call in calls)


def test_videos_are_asked_for_50_at_a_time(fake_youtube):
    ids = [fake_youtube.video(f"vid{n:08d}", f"Song {n}", "PT3M33S", embeddable=n != 7) for n in range(120)]

    found = client_for(fake_youtube).videos(ids)

    assert [len(call["id"].split(",")) for call in fake_youtube.calls("videos")] == [50, 50, 20]
    assert fake_youtube.calls("videos")[0]["part"] == "snippet,contentDetails,status"
    assert found[ids[0]] == youtube.Video(ids[0], "Song 0", 213, True)
    assert found[ids[7]].embeddable is False


def test_the_preview_expands_playlists_in_place_and_names_what_it_leaves_out(fake_youtube):
    first = fake_youtube.video("first000001", "Opener", "PT1M")
    live = fake_youtube.video("live0000001", "Live now", "P0D")
    listed = [fake_youtube.video("list0000001", "One", "PT2M"), "gone0000001", live]
    fake_youtube.playlists["PLnova0000001"] = listed

    preview = client_for(fake_youtube).preview([Source("video", first), Source("playlist", "PLnova0000001")])

    assert [video.title for video in preview.videos] == ["Opener", "One"]
    assert preview.missing == ["gone0000001"]
    assert [video.title for video in preview.no_length] == ["Live now"]
    assert preview.truncated is False


def test_a_playlist_longer_than_an_import_is_read_up_to_the_limit(fake_youtube, monkeypatch):
    monkeypatch.setattr(youtube, "MAX_VIDEOS", 4)
    fake_youtube.playlists["PLnova0000001"] = [fake_youtube.video(f"vid{n:08d}", "x", "PT1M") for n in range(6)]
    fake_youtube.page_size = 3
    preview = client_for(fake_youtube).preview([Source("playlist", "PLnova0000001")])
    assert len(preview.videos) == 4
    assert preview.truncated is True


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ((403, "quotaExceeded"), "quota is used up (quotaExceeded)"),
        ((403, "dailyLimitExceeded"), "quota is used up (dailyLimitExceeded)"),
        ((403, "forbidden"), "YouTube refused the API key (forbidden)"),
        ((403, "accessNotConfigured"), "YouTube refused the API key (accessNotConfigured)"),
        ((400, "keyInvalid"), "YouTube refused the API key (keyInvalid)"),
        ((403, "playlistItemsNotAccessible"), "That playlist is private"),
        ((500, "backendError"), "YouTube answered with an error (500)"),
    ],
)
def test_api_errors_are_clear_messages(fake_youtube, error, expected):
    fake_youtube.error = error
    with pytest.raises(YouTubeError) as raised:
        client_for(fake_youtube).preview([Source("playlist", "PLnova0000001")])
    assert expected in raised.value.message
    assert KEY not in raised.value.message


def test_a_wrong_key_and_an_unknown_playlist(fake_youtube):
    with pytest.raises(YouTubeError, match=r"refused the API key \(keyInvalid\)"):
        YouTubeClient(key="wrong", base_url=fake_youtube.url).videos(["dQw4w9WgXcQ"])
    with pytest.raises(YouTubeError, match="YouTube has no playlist PLmissing0001"):
        client_for(fake_youtube).playlist_video_ids("PLmissing0001")
    with pytest.raises(YouTubeError, match="Those playlists have no videos"):
        fake_youtube.playlists["PLempty000001"] = []
        client_for(fake_youtube).preview([Source("playlist", "PLempty000001")])


def test_network_down_timeouts_and_answers_that_are_not_json(fake_youtube, monkeypatch):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(YouTubeError, match="could not be reached"):
        YouTubeClient(key=KEY, base_url=f"http://127.0.0.1:{port}/youtube/v3").videos(["dQw4w9WgXcQ"])

    monkeypatch.setattr(youtube, "TIMEOUT_SECONDS", 0.2)
    fake_youtube.delay = 0.6
    with pytest.raises(YouTubeError, match=r"did not answer within 0\.2 seconds"):
        client_for(fake_youtube).videos(["dQw4w9WgXcQ"])

    fake_youtube.delay = 0
    fake_youtube.raw = b"<html>captive portal</html>"
    with pytest.raises(YouTubeError, match="not JSON"):
        client_for(fake_youtube).videos(["dQw4w9WgXcQ"])


def test_the_default_timeout_is_ten_seconds_and_the_url_comes_from_settings(settings):
    settings.YOUTUBE_API_KEY = "k"
    settings.YOUTUBE_API_URL = "http://127.0.0.1:1/v3"
    client = YouTubeClient.from_settings()
    assert (client.timeout, client.base_url, client.key) == (10, "http://127.0.0.1:1/v3", "k")
    settings.YOUTUBE_API_KEY = ""
    with pytest.raises(YouTubeError, match="not set up"):
        YouTubeClient.from_settings()
