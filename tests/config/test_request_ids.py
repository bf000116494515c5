"""Request ids (config.logs, config.middleware.RequestIdMiddleware): every answer has one in X-Request-ID,
every error body in the error shape carries the same one, and the log lines of the request carry it too."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.test import Client

from config.logs import JsonFormatter, RequestIdFilter, request_id_current
from loyalty.models import EarnRule
from tests.config.test_settings import _load_settings
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandFactory
from tests.perks.factories import funded_membership

pytestmark = pytest.mark.django_db

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def api():
    brand = BrandFactory()
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5)
    client = api_client_for(brand)
    client.raise_request_exception = False
    return client


@pytest.fixture
def json_lines():
    """What the JSON formatter writes, as settings configure it with LOG_FORMAT=json, for django.request."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_an_error_answer_carries_its_request_id_in_the_body_and_the_header(api):
    response = api.post("/api/v1/events", {"type": "nope", "member": {"email": "a@b.co"}}, format="json")

    assert response.status_code == 400
    assert HEX_ID.fullmatch(response["X-Request-ID"])
    error = response.json()["error"]
    assert error["request_id"] == response["X-Request-ID"]
    assert error["code"] == "invalid_input"
    assert request_id_current() is None  # forgotten once the answer was closed


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda api: api.get("/api/v1/no-such-thing"), 404),  # the catch-all route
        (lambda api: Client().get("/api/v1/members"), 401),  # DRF's handler, no API key
        (lambda api: api.post("/api/v1/events", "x" * 2_000_000, content_type="application/json"), 413),  # middleware
        (lambda api: api.post("/api/v1/events", "{", content_type="application/json"), 400),  # the parser
    ],
)
def test_every_kind_of_error_answer_carries_the_request_id(api, call, status):
    response = call(api)

    assert response.status_code == status
    assert response.json()["error"]["request_id"] == response["X-Request-ID"]


def test_a_500_no_view_handled_carries_the_request_id(api, monkeypatch):
    from loyalty import api as loyalty_api

    def broken(**kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(loyalty_api, "events_accept", broken)
    body = {"type": "check_in", "member": {"email": "a@b.co"}, "idempotency_key": "ci-1"}

    response = api.post("/api/v1/events", body, format="json", HTTP_X_REQUEST_ID="till-7.req_1")

    assert response.status_code == 500
    assert response["X-Request-ID"] == "till-7.req_1"
    assert response.json()["error"]["request_id"] == "till-7.req_1"


def test_a_replayed_refusal_carries_the_id_of_the_request_that_hears_it(api):
    # A refusal is stored as the key's answer and replayed: the replay has the id of its own request.
    funded_membership(brand=api.api_key.brand, points=3, member__email="poor@example.com")
    body = {"member": {"email": "poor@example.com"}, "points": -5, "reason": "oops"}

    first = api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="k", HTTP_X_REQUEST_ID="one")
    again = api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="k", HTTP_X_REQUEST_ID="two")

    assert first.status_code == again.status_code == 422, first.json()
    assert first.json()["error"]["code"] == "insufficient_points"
    assert (first.json()["error"]["request_id"], again.json()["error"]["request_id"]) == ("one", "two")
    assert again["Idempotent-Replayed"] == "true"


def test_a_sane_incoming_request_id_is_kept_and_any_other_replaced():
    def get(request_id: str):
        return Client().get("/login/", HTTP_X_REQUEST_ID=request_id)

    sane = "Aa0._-" + "a" * 58
    kept = get(sane)
    too_long, forged, spaced, empty = get("a" * 65), get("x\r\nSet-Cookie: a=b"), get("two words"), get("")

    assert kept["X-Request-ID"] == sane
    for answer in (too_long, forged, spaced, empty):
        assert HEX_ID.fullmatch(answer["X-Request-ID"])
    assert len({answer["X-Request-ID"] for answer in (too_long, forged, spaced, empty)}) == 4


def test_a_success_has_the_header_and_an_untouched_body(api):
    response = api.get("/api/v1/members", {"email": "nobody@example.com"}, HTTP_X_REQUEST_ID="found-1")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "found-1"
    assert response.json() == {"results": []}


def test_the_json_lines_of_a_request_carry_its_id(api, json_lines):
    # Django logs a 4xx after the middleware chain returned ("Not Found: ..."): the id is still there.
    response = api.get("/api/v1/no-such-thing", HTTP_X_REQUEST_ID="logged-1")
    other = api.get("/api/v1/no-such-thing")

    lines = json_lines()
    assert [line["request_id"] for line in lines] == ["logged-1", other["X-Request-ID"]]
    assert response.status_code == 404
    first = lines[0]
    assert (first["level"], first["logger"], first["message"]) == (
        "WARNING",
        "django.request",
        "Not Found: /api/v1/no-such-thing",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert "exception" not in first


def test_a_json_line_has_the_exception_text_and_none_outside_a_request(json_lines):
    logger = logging.getLogger("django.request")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("It broke: %s", "here")

    [line] = json_lines()
    assert line["message"] == "It broke: here"
    assert "request_id" not in line
    assert line["exception"].startswith("Traceback (most recent call last)")
    assert "ValueError: bad\nthing" in line["exception"]


def test_log_format_json_makes_every_line_a_json_object():
    # django.request: in development Django's own handler would write it again, in plain text.
    show = "__import__('logging').getLogger('django.request').warning('one\\ntwo')"
    result = _load_settings(show=show, LOG_FORMAT="json", DEBUG="true")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(text) for text in result.stderr.splitlines()]  # every line: a JSON object
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("WARNING", "django.request", "one\ntwo")
    ]


def test_an_unknown_log_format_is_a_clear_error():
    result = _load_settings(LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be 'plain' or 'json'" in result.stderr
