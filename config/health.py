"""`GET /healthz`: is the database, Redis and at least one Celery worker answering?

Each check is bounded by a short timeout so that the endpoint itself never hangs on a dead part.
Anyone sees which parts are up; the details (error texts, worker host names) are for staff logged in
to the portal, or a monitor that sends `Authorization: Bearer <HEALTHZ_TOKEN>`.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app

CHECK_TIMEOUT_SECONDS = 1.0


def _timed(check) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail = check() or {}
        result: dict[str, Any] = {"ok": True, **detail}
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_CACHE_URL,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


def check_celery() -> dict[str, Any]:
    # limit=1: one live worker is enough to say the queue is served, and we need not wait out the timeout.
    replies = celery_app.control.ping(timeout=CHECK_TIMEOUT_SECONDS, limit=1)
    if not replies:
        raise RuntimeError("no Celery worker answered a ping")
    return {"workers": sorted(name for reply in replies for name in reply)}


def _details_allowed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    keyword, _, token = request.headers.get("Authorization", "").partition(" ")
    return bool(settings.HEALTHZ_TOKEN) and keyword == "Bearer" and constant_time_compare(token, settings.HEALTHZ_TOKEN)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _timed(check_database), "redis": _timed(check_redis)}
    if checks["redis"]["ok"]:
        checks["celery"] = _timed(check_celery)
    else:
        # The broker is Redis: with it down a ping would only wait for the broker to come back.
        checks["celery"] = {"ok": False, "error": "broker (Redis) is down"}
    down = sorted(name for name, check in checks.items() if not check["ok"])
    if not _details_allowed(request):
        checks = {name: {"ok": check["ok"], "ms": check.get("ms")} for name, check in checks.items()}
    body = {"status": "down" if down else "ok", "down": down, "checks": checks}
    return JsonResponse(body, status=503 if down else 200)
