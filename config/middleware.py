"""Middleware of the whole site."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.errors import error_body

logger = logging.getLogger("django.request")


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
