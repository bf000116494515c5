"""YouTube video ids: what staff may paste, and how the id is taken out of it."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ValidationError

# YouTube ids are 11 characters of the URL-safe base64 alphabet.
VIDEO_ID_PATTERN = r"^[A-Za-z0-9_-]{11}$"
_VIDEO_ID = re.compile(VIDEO_ID_PATTERN)
_WATCH_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
_EMBED_HOSTS = _WATCH_HOSTS | {"youtube-nocookie.com", "www.youtube-nocookie.com"}
_SHORT_HOSTS = {"youtu.be", "www.youtu.be"}

REFUSED = (
    "Paste a YouTube video id (11 characters) or a YouTube video address: "
    "youtube.com/watch?v=…, youtu.be/…, youtube.com/embed/… or youtube.com/shorts/…."
)


def validate_video_id(value: str) -> None:
    if not _VIDEO_ID.match(value or ""):
        raise ValidationError("A YouTube video id is 11 letters, digits, - or _.", code="invalid_video_id")


def parse_video_id(value: str) -> str:
    """The 11-character id of a pasted id or YouTube address; ValidationError for anything else.

    Accepted: a bare id, youtube.com/watch?v=ID (www., m., music.), youtu.be/ID, youtube.com/embed/ID
    (also youtube-nocookie.com) and youtube.com/shorts/ID, with or without the scheme and any extra
    query parameters (&t=42s, ?si=...). Playlists, channels and other sites are refused: a playlist item
    is one video.
    """
    text = (value or "").strip()
    if _VIDEO_ID.match(text):
        return text
    if not re.match(r"^https?://", text, re.IGNORECASE):
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
    except ValueError as error:
        raise ValidationError(REFUSED, code="invalid_video_url") from error
    host = (parts.hostname or "").lower()
    segments = [segment for segment in parts.path.split("/") if segment]
    candidate = None
    if host in _WATCH_HOSTS and segments == ["watch"]:
        candidate = (parse_qs(parts.query).get("v") or [None])[0]
    elif host in _SHORT_HOSTS and len(segments) == 1:
        candidate = segments[0]
    elif len(segments) == 2 and (
        (host in _EMBED_HOSTS and segments[0] == "embed") or (host in _WATCH_HOSTS and segments[0] == "shorts")
    ):
        candidate = segments[1]
    if candidate is None or not _VIDEO_ID.match(candidate):
        raise ValidationError(REFUSED, code="invalid_video_url")
    return candidate


def parse_duration(value: str | int) -> int:
    """Whole seconds from "213", "3:33" or "1:02:03"; ValidationError otherwise."""
    text = str(value).strip()
    if not re.fullmatch(r"\d+(:\d{1,2}){0,2}", text):
        raise ValidationError("Give the length in seconds (213) or minutes:seconds (3:33).", code="invalid_duration")
    parts = [int(part) for part in text.split(":")]
    if len(parts) > 1 and any(part >= 60 for part in parts[1:]):
        raise ValidationError("Minutes and seconds after a colon go up to 59.", code="invalid_duration")
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    if seconds <= 0:
        raise ValidationError("A video lasts at least one second.", code="invalid_duration")
    return seconds


def format_duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
