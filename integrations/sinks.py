"""Sending to the sinks over HTTP (the standard library's client: one request at a time, a timeout, no
redirects followed), and the bodies each sink gets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from integrations.models import MESSAGE_TYPES, OutboxMessage

SIGNATURE_HEADER = "Tally-Signature"
USER_AGENT = "Tally-Webhooks/1"


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: int | None  # None: no answer (a timeout, a refused connection, a refused address)
    error: str = ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could send a webhook to an address the URL check refused: it is an answer like any other.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    request = urllib.request.Request(url, data=body, method="POST", headers={"User-Agent": USER_AGENT, **headers})  # noqa: S310 - http(s) only (url_refusal)
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read(65536)
            return Answer(200 <= response.status < 300, response.status)
    except urllib.error.HTTPError as error:
        return Answer(False, error.code, f"HTTP {error.code}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        return Answer(False, None, str(getattr(error, "reason", error))[:500])


def url_refusal(url: str, *, resolve: bool = True) -> str | None:
    """Why a webhook URL is refused (None: it is not): only http(s); unless WEBHOOK_ALLOW_PRIVATE, never
    an address that is not public (loopback, private, link-local, reserved: a way into the internal
    network, SSRF), checked on every address the host name resolves to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Only http:// and https:// URLs with a host."
    if settings.WEBHOOK_ALLOW_PRIVATE or not resolve:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return f"The host {parts.hostname} does not resolve."
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return f"{parts.hostname} is a private, loopback or reserved address ({address}): refused."
    return None


# --- webhooks ------------------------------------------------------------------------------------------


def webhook_body(message: OutboxMessage, brand_slug: str) -> bytes:
    return json.dumps(
        {
            "id": str(message.uid),
            "type": message.type,
            "created": int(message.created_at.timestamp()),
            "brand": brand_slug,
            "data": message.data,
        },
        separators=(",", ":"),
    ).encode()


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (Stripe's scheme)."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def signature_verify(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """What a receiver does with the header (here for the tests and the docs)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(_digest(secret, body, timestamp), fields.get("v1", ""))


def webhook_send(url: str, secret: str, body: bytes) -> Answer:
    refusal = url_refusal(url)
    if refusal:
        return Answer(False, None, refusal)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body, int(time.time()))}
    return post(url, body, headers)


# --- analytics -----------------------------------------------------------------------------------------


def analytics_event(message: OutboxMessage, brand_slug: str, token: str) -> dict:
    data = message.data
    member = data.get("member") or {}
    distinct = member.get("id") if member.get("id") is not None else f"network:{member.get('network_member_id')}"
    properties = {
        "time": int(message.created_at.timestamp() * 1000),
        "distinct_id": str(distinct),
        "$insert_id": message.uid.hex,
        "brand": brand_slug,
        **{key: value for key, value in data.items() if key != "member"},
    }
    if token:
        properties["token"] = token
    return {"event": MESSAGE_TYPES[message.type], "properties": properties}


def analytics_send(secret: str, events: list[dict]) -> Answer:
    auth = base64.b64encode(f"{secret}:".encode()).decode()
    body = json.dumps(events, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {auth}"}
    return post(f"{settings.ANALYTICS_URL}/import", body, headers)
