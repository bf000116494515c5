"""A local fake of the YouTube Data API v3: a real HTTP server on 127.0.0.1, in a thread, answering
playlistItems.list and videos.list as YouTube does (paging by nextPageToken, at most 50 ids a call, the
error shape {"error": {"code", "message", "errors": [{"reason"}]}}). Tests point YOUTUBE_API_URL at it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY = "test-key-123"


class FakeYouTube:
    def __init__(self) -> None:
        self.playlists: dict[str, list[str]] = {}
        self.videos: dict[str, dict] = {}
        self.page_size = 50  # answer fewer than maxResults per page, to make paging happen with few videos
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.error: tuple[int, str] | None = None  # (status, reason): every request answers that error
        self.raw: bytes | None = None  # every request answers this body, 200 (a proxy's HTML page...)
        self.delay = 0.0
        self.server: ThreadingHTTPServer | None = None

    def video(self, video_id: str, title: str, duration: str, *, embeddable: bool = True) -> str:
        self.videos[video_id] = {"title": title, "duration": duration, "embeddable": embeddable}
        return video_id

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/youtube/v3"

    def calls(self, resource: str) -> list[dict[str, str]]:
        return [params for name, params in self.requests if name == resource]

    # --- answers ---------------------------------------------------------------------------------

    def answer(self, resource: str, params: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append((resource, params))
        if self.delay:
            time.sleep(self.delay)
        if self.raw is not None:
            return 200, self.raw
        if self.error:
            return self._error(*self.error)
        if params.get("key") != KEY:
            return self._error(400, "keyInvalid", "API key not valid. Please pass a valid API key.")
        if resource == "playlistItems":
            return self._playlist_items(params)
        if resource == "videos":
            return self._videos(params)
        return self._error(404, "notFound")

    def _playlist_items(self, params):
        if params.get("part") != "contentDetails" or "playlistId" not in params:
            return self._error(400, "invalidPart")
        ids = self.playlists.get(params["playlistId"])
        if ids is None:
            return self._error(
                404, "playlistNotFound", "The playlist identified with the request's playlistId cannot be found."
            )
        size = min(int(params.get("maxResults", 5)), 50, self.page_size)
        start = int(params.get("pageToken") or 0)
        page = ids[start : start + size]
        body = {
            "kind": "youtube#playlistItemListResponse",
            "pageInfo": {"totalResults": len(ids), "resultsPerPage": size},
            "items": [
                {"kind": "youtube#playlistItem", "id": f"item-{start + n}", "contentDetails": {"videoId": video_id}}
                for n, video_id in enumerate(page)
            ],
        }
        if start + size < len(ids):
            body["nextPageToken"] = str(start + size)
        return 200, json.dumps(body).encode()

    def _videos(self, params):
        ids = [video_id for video_id in params.get("id", "").split(",") if video_id]
        if params.get("part") != "snippet,contentDetails,status":
            return self._error(400, "invalidPart")
        if len(ids) > 50:
            return self._error(400, "invalidFilters", "No more than 50 ids.")
        items = [
            {
                "kind": "youtube#video",
                "id": video_id,
                "snippet": {"title": self.videos[video_id]["title"], "channelTitle": "Nova Lane"},
                "contentDetails": {"duration": self.videos[video_id]["duration"]},
                "status": {"embeddable": self.videos[video_id]["embeddable"], "privacyStatus": "public"},
            }
            for video_id in ids
            if video_id in self.videos
        ]
        return 200, json.dumps({"kind": "youtube#videoListResponse", "items": items}).encode()

    @staticmethod
    def _error(status: int, reason: str, message: str = "") -> tuple[int, bytes]:
        body = {
            "error": {"code": status, "message": message or reason, "errors": [{"reason": reason, "domain": "youtube"}]}
        }
        return status, json.dumps(body).encode()

    # --- the server --------------------------------------------------------------------------------

    def start(self) -> FakeYouTube:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                resource = parts.path.rsplit("/", 1)[-1]
                params = {name: values[0] for name, values in parse_qs(parts.query).items()}
                status, body = fake.answer(resource, params)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
