"""One error shape for the whole API: {"error": {"code", "message", "fields", "request_id"}}.

Services raise ApplicationError (or a subclass) when a business rule says no; the single DRF
exception handler below turns it, and DRF's own errors, into that shape. Anything unexpected is
still a 500, logged with its traceback: bad *input* must never get that far.

`error_body` builds the shape without `request_id`: its bodies are also stored as the answer to an
idempotency key and replayed, and nested in a batch's results. The id of the request that hears an
error is put in its error object by config.middleware.RequestIdMiddleware, for every answer in the
shape whoever built it, with the same id as the `X-Request-ID` header.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    """A business rule said no. `code` is stable and machine-readable; `message` is for people."""

    status_code = 422
    code = "rule_violation"
    # A transient refusal ("try again in a moment") is never stored as the answer to an idempotency key.
    transient = False

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        *,
        fields: dict | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.code = code or self.code
        self.message = message or self.code.replace("_", " ")
        self.fields = fields or {}
        self.extra = extra or {}
        super().__init__(self.message)


REQUEST_ID_HELP = "The request's id, as in the X-Request-ID header (the one the request came with, when sane)."


def error_body(code: str, message: str, fields: dict | None = None, **extra: Any) -> dict[str, Any]:
    """The error shape, without the request's id (the middleware adds it to the answer)."""
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


_DRF_CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid_input",
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields, **exc.extra), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = _DRF_CODES.get(response.status_code, "error")
    if isinstance(exc, exceptions.ParseError):
        code = "malformed_json"
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body(code, "The request has invalid fields.", detail)
    else:
        message = str(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(code, message)
    return response
