"""Middleware of the whole site."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.signals import request_finished
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config import metrics
from config.errors import error_body
from config.logs import request_id_from, request_id_var

logger = logging.getLogger("django.request")


class RequestIdMiddleware:
    """Gives the request its id (config.logs: a sane incoming X-Request-ID, else a new one), keeps it for
    the log lines of the request (`request_id_var`, cleared when the response is closed) and on
    `request.request_id`, and answers it in the `X-Request-ID` header and inside the error object of any
    error body in the error shape, however it was built (the DRF handler, a middleware, a view replaying
    a stored refusal, the plain fast paths). Stored answers are never given an id: a replay carries the id
    of the request that heard it. The outermost middleware, so that every answer gets both."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        request_id_var.set(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        _error_body_stamp(response, request_id)
        return response


def _error_body_stamp(response: HttpResponse, request_id: str) -> None:
    """Put `request_id` in the error object of an answer in the error shape, `{"error": {...}}`."""
    if (
        response.status_code < 400
        or response.streaming
        or not getattr(response, "is_rendered", True)
        or not response.get("Content-Type", "").startswith("application/json")
    ):
        return
    content = response.content
    if not content.startswith(b'{"error"'):  # the shape's own first key (DRF's renderer and JsonResponse)
        return
    try:
        body = json.loads(content)
    except ValueError:
        return
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return
    body["error"]["request_id"] = request_id
    # As DRF's JSONRenderer writes it (compact, UTF-8, the two line separators escaped for browsers).
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    response.content = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))


def _request_id_forget(**kwargs: object) -> None:
    request_id_var.set(None)


# When the response is closed, after Django logged a 4xx or 5xx answer outside the middleware chain.
request_finished.connect(_request_id_forget, dispatch_uid="config.middleware.request_id_forget")


class MetricsMiddleware:
    """Counts every answer and its latency for /metrics (config.metrics), by method, route and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        status = 500  # what the server answers if the exception gets out of Django
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            seconds = time.perf_counter() - started
            metrics.request_observe(request.method or "", metrics.request_route(request), status, seconds)


class ApiBodyLimitMiddleware:
    """Refuses an API request whose declared body is over its limit (413 in the error shape) before
    anything reads it: `API_MAX_BODY_BYTES` (1 MB), or the larger limit `API_BODY_LIMITS` gives its path
    (the batch endpoint's 8 MB). Django reads no more than Content-Length, so a body without one is empty."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            length = request.META.get("CONTENT_LENGTH") or "0"
            limit = settings.API_BODY_LIMITS.get(request.path_info, settings.API_MAX_BODY_BYTES)
            if not length.isdigit() or int(length) > limit:
                return JsonResponse(
                    error_body(
                        "payload_too_large",
                        f"The body is over this endpoint's limit of {limit:,} bytes.",
                        limit=limit,
                    ),
                    status=413,
                )
        return self.get_response(request)


# A server Tally needs is away or dropped the connection (PostgreSQL restarting, Redis down): the request
# may be retried (with its idempotency key: it then replays or does the work once), so it is a 503.
UNAVAILABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
RETRY_AFTER_SECONDS = 2


class ApiErrorMiddleware:
    """An exception no view handled, under /api/: a 500 in the error shape (logged with its traceback),
    never Django's HTML error page, in development too; a server that is away (UNAVAILABLE), a 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path_info.startswith("/api/"):
            return None
        if isinstance(exception, UNAVAILABLE):
            logger.warning("Service unavailable: %s: %s", request.path, exception, extra={"request": request})
            response = JsonResponse(
                error_body("unavailable", "Tally cannot reach its database or cache right now. Try again shortly."),
                status=503,
            )
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        logger.error("Internal Server Error: %s", request.path, exc_info=exception, extra={"request": request})
        return JsonResponse(
            error_body("internal_error", "Something went wrong on our side; it was logged. Try again later."),
            status=500,
        )


@csrf_exempt  # it changes nothing; without it a POST to an unknown path got Django's HTML 403 CSRF page
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """Any /api/ path no route takes: a 404 in the error shape."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


def csrf_failure(request: HttpRequest, reason: str = "", template_name: str = csrf.CSRF_FAILURE_TEMPLATE_NAME):
    """CSRF_FAILURE_VIEW: under /api/, a 403 `csrf_failed` in the error shape (what the session-authenticated
    livestream endpoints answer themselves); elsewhere Django's page."""
    if request.path_info.startswith("/api/"):
        return JsonResponse(
            error_body("csrf_failed", f"CSRF Failed: {reason.rstrip('.')}. Reload the page."), status=403
        )
    return csrf.csrf_failure(request, reason=reason, template_name=template_name)
