"""Demo data of the livestream: the artist's TV channel and the watch-minute rule. Idempotent.

`manage.py demo` calls `load()` after loyalty's, so the `artist` brand exists. The playlist is real,
public, official music videos; their lengths are typed in (the schedule trusts them), as staff would.
"""

from __future__ import annotations

from livestream import services
from livestream.models import Channel, PlaylistItem
from livestream.selectors import WATCH_MINUTE
from loyalty.models import Brand, EarnRule

PLAYLIST = [
    ("dQw4w9WgXcQ", "Rick Astley - Never Gonna Give You Up (Official Video)", 213),
    ("kJQP7kiw5Fk", "Luis Fonsi - Despacito ft. Daddy Yankee", 282),
    ("OPf0YbXqDm0", "Mark Ronson - Uptown Funk (Official Video) ft. Bruno Mars", 270),
    ("JGwWNGJdvx8", "Ed Sheeran - Shape of You (Official Music Video)", 263),
    ("9bZkp7q19f0", "PSY - GANGNAM STYLE (Official Music Video)", 252),
    ("RgKAFK5djSk", "Wiz Khalifa - See You Again ft. Charlie Puth (Official Video)", 237),
]


def load() -> list[str]:
    artist = Brand.objects.get(slug="artist")
    channel, _ = Channel.objects.get_or_create(
        slug="artist-tv", defaults={"brand": artist, "name": f"{artist.name} TV", "loop": True}
    )
    if not channel.items.exists():
        for order, (video_id, title, duration) in enumerate(PLAYLIST):
            PlaylistItem.objects.create(
                channel=channel, video_id=video_id, title=title, duration_seconds=duration, order=order
            )
    services.channel_schedule_publish(channel=channel)  # no-op when the playlist on air is unchanged
    EarnRule.objects.get_or_create(
        brand=artist,
        event_type=WATCH_MINUTE,
        defaults={"name": "Watch the TV channel", "points": 1, "cap_per_day": 120},
    )
    return [
        f"artist: {channel.name} at /b/artist/tv/ ({channel.items.count()} videos, looping); "
        "watch_minute 1 point a minute, up to 120 a day",
    ]
