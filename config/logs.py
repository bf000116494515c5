"""Request ids and log lines.

Each request gets an id (`config.middleware.RequestIdMiddleware`): a sane `X-Request-ID` it came with
(a proxy's or a till's), else a new uuid4 hex. It is kept in a ContextVar for the request's thread, so
that everything logged while the request is answered can carry it (`RequestIdFilter`), and it is sent
back in the `X-Request-ID` header and in every error body. `LOG_FORMAT=json` writes one JSON object per
line (`JsonFormatter`) for a log shipper; the default stays the plain format, for people.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from contextvars import ContextVar

# Set by RequestIdMiddleware, cleared when the response is closed (request_finished): Django logs a 4xx or
# 5xx answer ("Not Found: /api/...") after the middleware chain has returned, and that line should carry
# the id too. Threads a request starts (the wake, group commits) do not inherit it.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# What an incoming X-Request-ID may be: short, and nothing that could forge a log line or a header.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(header: str | None) -> str:
    """The id of a request that came with this X-Request-ID: the header when sane, else a new one."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def request_id_current() -> str | None:
    """The id of the request this thread is answering, None outside a request."""
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (`record.request_id`, None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and request_id inside a
    request, exception (the traceback's text) when the record has one. JSON escapes the newlines of a
    message or traceback, so a line is always a whole record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            # Cached on the record, as logging.Formatter does, for the other handlers.
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)
