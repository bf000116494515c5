"""Small facts about an HTTP request that several apps need."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address the request came from.

    Behind `TRUSTED_PROXIES` proxies (each appending the address it saw to X-Forwarded-For), the client is
    that many entries from the right; anything further left was written by the client and proves nothing.
    Without proxies, X-Forwarded-For is ignored: a client could send any value to dodge a per-IP limit.
    """
    proxies = settings.TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"
