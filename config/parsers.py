"""Request parsers of the API."""

from __future__ import annotations

import json

from django.http import HttpRequest
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; JSON nested deeper than Python's parser goes (`[[[[...` thousands deep) is
    malformed JSON (400), not a RecursionError (500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


def _not_json_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def json_object_plain(request: HttpRequest, *, max_bytes: int) -> dict | None:
    """The body of a POST of `application/json` (UTF-8, at most `max_bytes`) as JSONParser reads it (no
    NaN or Infinity), when it is a JSON object: for the hot paths that answer without DRF. None for
    anything else, which they leave to their DRF view to judge (and answer 400, 413 or 415)."""
    if request.method != "POST" or request.content_type != "application/json":
        return None
    if request.encoding not in (None, "utf-8", "UTF-8"):
        return None
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > max_bytes:
        return None
    try:
        data = json.loads(request.body.decode("utf-8"), parse_constant=_not_json_constant)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
