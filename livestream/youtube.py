"""YouTube video ids (what staff may paste, and how the id is taken out of it) and the import of
playlists and videos from the YouTube Data API v3."""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

logger = logging.getLogger(__name__)

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


# --- importing from the YouTube Data API v3 -------------------------------------------------------------
#
# Staff paste playlist or video addresses; playlistItems.list gives a playlist's video ids (50 a page,
# following nextPageToken) and videos.list their title, length and whether YouTube lets other sites
# embed them (50 ids a call). Needs settings.YOUTUBE_API_KEY; without it the portal offers no import.

TIMEOUT_SECONDS = 10
PAGE_SIZE = 50  # the most either list call answers at once
MAX_VIDEOS = 500  # one import at most; a longer playlist is read up to here (the preview says so)
MAX_LINES = 50
TITLE_MAX_LENGTH = 200  # PlaylistItem.title

_PLAYLIST_ID = re.compile(r"^[A-Za-z0-9_-]{12,64}$")
# A bare playlist id: the prefixes of a user's playlists (PL), uploads (UU), favourites and the like.
_BARE_PLAYLIST_ID = re.compile(r"^(?:PL|UU|FL|OL|LL)[A-Za-z0-9_-]{10,62}$")
_ISO_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded", "rateLimitExceeded", "userRateLimitExceeded"}
_KEY_REASONS = {"keyInvalid", "keyExpired", "forbidden", "accessNotConfigured", "ipRefererBlocked", "keyRefused"}

PASTE_REFUSED = (
    "is not a YouTube playlist or video: paste a playlist address (youtube.com/playlist?list=…), a video "
    "address (youtube.com/watch?v=…, youtu.be/…, /shorts/…, /embed/…) or an id, one per line."
)


class YouTubeError(Exception):
    """The import cannot go on; `message` is for staff, as it is."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        self.message = message
        self.not_found = not_found
        super().__init__(message)


def parse_iso_duration(value: str) -> int:
    """Whole seconds of an ISO 8601 duration as YouTube gives it: "PT1H2M3S" -> 3723, "P1DT2H" -> 93600,
    "PT0S" / "P0D" (a live stream) -> 0. Fractions of a second are dropped. ValueError for anything else
    (years and months have no fixed length: refused)."""
    match = _ISO_DURATION.match(value.strip()) if isinstance(value, str) else None
    if match is None or value.strip() in {"P", "PT"} or not any(match.groupdict().values()):
        raise ValueError(f"Not an ISO 8601 duration: {value!r}")
    parts = {name: float(number) if number else 0 for name, number in match.groupdict().items()}
    return int(parts["weeks"] * 604800 + parts["days"] * 86400 + parts["hours"] * 3600 + parts["minutes"] * 60) + int(
        parts["seconds"]
    )


@dataclass(frozen=True)
class Source:
    kind: str  # "playlist" or "video"
    id: str


def parse_source(value: str) -> Source:
    """One pasted line: a playlist address (any YouTube address with list= and no v=), a video address
    (as parse_video_id takes them; a watch address inside a playlist is that video), a bare video id
    (11 characters) or a bare playlist id (PL…, UU…). ValidationError otherwise."""
    text = value.strip()
    if _VIDEO_ID.match(text):
        return Source("video", text)
    if _BARE_PLAYLIST_ID.match(text):
        return Source("playlist", text)
    address = text if re.match(r"^https?://", text, re.IGNORECASE) else f"https://{text}"
    try:
        parts = urlsplit(address)
        host = (parts.hostname or "").lower()
    except ValueError:
        host, parts = "", None
    if parts is not None and host in _WATCH_HOSTS:
        query = parse_qs(parts.query)
        playlist = (query.get("list") or [None])[0]
        if playlist and not query.get("v") and parts.path.rstrip("/") in {"/playlist", "/watch", ""}:
            if _PLAYLIST_ID.match(playlist):
                return Source("playlist", playlist)
            raise ValidationError(f"{text!r} {PASTE_REFUSED}", code="invalid_youtube_source")
    try:
        return Source("video", parse_video_id(text))
    except ValidationError:
        raise ValidationError(f"{text!r} {PASTE_REFUSED}", code="invalid_youtube_source") from None


def parse_sources(text: str) -> list[Source]:
    """Every non-blank line of `text`; ValidationError naming each line that is not a source."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise ValidationError("Paste at least one YouTube playlist or video address.", code="required")
    if len(lines) > MAX_LINES:
        raise ValidationError(f"Paste at most {MAX_LINES} addresses at once.", code="too_many_lines")
    sources, errors = [], []
    for number, line in enumerate(lines, start=1):
        try:
            sources.append(parse_source(line))
        except ValidationError as error:
            errors.append(f"Line {number}: {error.messages[0]}")
    if errors:
        raise ValidationError(errors, code="invalid_youtube_source")
    return sources


@dataclass(frozen=True)
class Video:
    video_id: str
    title: str
    duration_seconds: int
    embeddable: bool

    @property
    def length(self) -> str:
        return format_duration(self.duration_seconds)


@dataclass
class Preview:
    """What an import would add, in order, and what it leaves out."""

    videos: list[Video] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ids YouTube did not answer for (private, deleted)
    no_length: list[Video] = field(default_factory=list)  # live streams and premieres: nothing to schedule
    truncated: bool = False  # more than MAX_VIDEOS were asked for: the first MAX_VIDEOS were read


class YouTubeClient:
    """playlistItems.list and videos.list of the Data API v3, over urllib, each call at most TIMEOUT_SECONDS."""

    def __init__(self, *, key: str, base_url: str, timeout: float | None = None) -> None:
        self.key = key
        self.base_url = base_url.rstrip("/")
        self.timeout = TIMEOUT_SECONDS if timeout is None else timeout

    @classmethod
    def from_settings(cls) -> YouTubeClient:
        if not import_available():
            raise YouTubeError("The YouTube import is not set up (YOUTUBE_API_KEY): type the videos in by hand.")
        return cls(key=settings.YOUTUBE_API_KEY, base_url=settings.YOUTUBE_API_URL)

    def _get(self, resource: str, params: dict[str, str]) -> dict:
        url = f"{self.base_url}/{resource}?{urlencode({**params, 'key': self.key})}"
        if not url.lower().startswith(("http://", "https://")):
            raise YouTubeError("YOUTUBE_API_URL must be an http(s) address.")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - http(s) only (checked above)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                body = response.read()
        except urllib.error.HTTPError as error:
            raise _api_error(error.code, _error_reasons(error), resource) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            if isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError):
                raise YouTubeError(
                    f"YouTube did not answer within {self.timeout:g} seconds: try again in a moment."
                ) from None
            # The URL (with the key) is never repeated to staff or in the log.
            logger.warning("YouTube %s unreachable: %s", resource, getattr(error, "reason", error))
            raise YouTubeError("YouTube could not be reached (network down?): try again in a moment.") from None
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise YouTubeError("YouTube sent an answer that is not JSON: try again in a moment.")
        return answer

    def playlist_video_ids(self, playlist_id: str, limit: int = MAX_VIDEOS) -> tuple[list[str], bool]:
        """The playlist's video ids in its order (up to `limit`), and whether it has more."""
        ids: list[str] = []
        token, seen = "", set()
        while True:
            params = {"part": "contentDetails", "playlistId": playlist_id, "maxResults": str(PAGE_SIZE)}
            if token:
                params["pageToken"] = token
            page = self.playlist_page(params)
            for item in page.get("items") or []:
                video_id = ((item or {}).get("contentDetails") or {}).get("videoId")
                if isinstance(video_id, str) and _VIDEO_ID.match(video_id):
                    if len(ids) == limit:
                        return ids, True
                    ids.append(video_id)
            token = page.get("nextPageToken") or ""
            if not token or token in seen:  # the last page (or a token answered twice: never loop)
                return ids, False
            seen.add(token)

    def playlist_page(self, params: dict[str, str]) -> dict:
        try:
            return self._get("playlistItems", params)
        except YouTubeError as error:
            if error.not_found:
                raise YouTubeError(f"YouTube has no playlist {params['playlistId']} (or it is private).") from None
            raise

    def videos(self, video_ids: list[str]) -> dict[str, Video]:
        """Title, length and embeddability of each id YouTube answers for (private and deleted ones are absent)."""
        found: dict[str, Video] = {}
        unique = list(dict.fromkeys(video_ids))
        for start in range(0, len(unique), PAGE_SIZE):
            chunk = unique[start : start + PAGE_SIZE]
            page = self._get(
                "videos",
                {"part": "snippet,contentDetails,status", "id": ",".join(chunk), "maxResults": str(PAGE_SIZE)},
            )
            for item in page.get("items") or []:
                video = _video_from(item)
                if video is not None:
                    found[video.video_id] = video
        return found

    def preview(self, sources: list[Source]) -> Preview:
        """What importing `sources` (parse_sources) would add, in their order, playlists expanded."""
        preview = Preview()
        ids: list[str] = []
        for source in sources:
            room = MAX_VIDEOS - len(ids)
            if room <= 0:
                preview.truncated = True
                break
            if source.kind == "video":
                ids.append(source.id)
                continue
            playlist, more = self.playlist_video_ids(source.id, limit=room)
            ids += playlist
            preview.truncated = preview.truncated or more
        if not ids:
            raise YouTubeError("Those playlists have no videos.")
        details = self.videos(ids)
        for video_id in ids:
            video = details.get(video_id)
            if video is None:
                if video_id not in preview.missing:
                    preview.missing.append(video_id)
            elif video.duration_seconds <= 0:
                preview.no_length.append(video)
            else:
                preview.videos.append(video)
        return preview


def import_available() -> bool:
    return bool(getattr(settings, "YOUTUBE_API_KEY", ""))


def _video_from(item: dict) -> Video | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not _VIDEO_ID.match(item["id"]):
        return None
    snippet = item.get("snippet") or {}
    try:
        duration = parse_iso_duration((item.get("contentDetails") or {}).get("duration", ""))
    except ValueError:
        duration = 0  # no usable length: listed with the live streams, not imported
    title = " ".join(str(snippet.get("title") or item["id"]).split())[:TITLE_MAX_LENGTH]
    return Video(
        video_id=item["id"],
        title=title or item["id"],
        duration_seconds=duration,
        embeddable=(item.get("status") or {}).get("embeddable") is not False,
    )


def _error_reasons(error: urllib.error.HTTPError) -> list[str]:
    """The reasons of an API error answer ({"error": {"errors": [{"reason"}], "details": [{"reason"}]}})."""
    try:
        details = json.loads(error.read() or b"{}").get("error") or {}
        reasons = [entry.get("reason") for entry in details.get("errors") or [] if isinstance(entry, dict)]
        reasons += [entry.get("reason") for entry in details.get("details") or [] if isinstance(entry, dict)]
        return [str(reason) for reason in reasons if reason]
    except (ValueError, AttributeError, TypeError, OSError):
        return []


def _api_error(status: int, reasons: list[str], resource: str) -> YouTubeError:
    logger.warning("YouTube %s answered %s %s", resource, status, ",".join(reasons))
    quota = [reason for reason in reasons if reason in _QUOTA_REASONS]
    if quota:
        return YouTubeError(
            f"YouTube refused: the API key's quota is used up ({quota[0]}). The daily quota resets at midnight "
            "Pacific time: try again then, or type the videos in by hand."
        )
    if "playlistItemsNotAccessible" in reasons:
        return YouTubeError("That playlist is private: make it public or unlisted on YouTube, then import it.")
    key = [reason for reason in reasons if reason in _KEY_REASONS or reason.startswith("API_KEY")]
    if key or status in (401, 403):
        return YouTubeError(
            f"YouTube refused the API key ({(key or reasons or [str(status)])[0]}): ask your operator to check "
            "YOUTUBE_API_KEY and that the YouTube Data API v3 is enabled for it."
        )
    if status == 404:
        return YouTubeError(f"YouTube found nothing there ({(reasons or ['notFound'])[0]}).", not_found=True)
    if status == 400:
        return YouTubeError(f"YouTube refused the request ({(reasons or ['badRequest'])[0]}): check the addresses.")
    return YouTubeError(f"YouTube answered with an error ({status}): try again in a moment.")
