"""Bad input anywhere under /api/ gets a 4xx in the error shape, and what no view handled a JSON 500:
never Django's HTML pages (config.parsers, config.middleware)."""

import json

import pytest
from django.db import OperationalError
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from loyalty.models import EarnRule
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000


def error_of(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


@pytest.fixture
def api():
    brand = BrandFactory()
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5)
    client = api_client_for(brand)
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/events", DEEP),
        ("/api/v1/events/batch", '{"events": ' + DEEP + "}"),
        ("/api/v1/adjustments", DEEP),
        ("/api/v1/events", '{"type": "check_in", "member": {"email": "a@b.co"}, "metadata": {"x": ' + DEEP + "}}"),
    ],
)
def test_json_nested_thousands_deep_is_400_malformed_json(api, path, body):
    response = api.post(path, body, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"


def test_a_lone_surrogate_in_metadata_is_400_naming_the_field(api):
    body = '{"type": "check_in", "member": {"email": "a@b.co"}, "metadata": {"x": "\\ud800"}}'

    response = api.post("/api/v1/events", body, content_type="application/json")

    assert response.status_code == 400
    assert "metadata" in error_of(response)["fields"]


def test_a_body_over_the_limit_is_413_before_anything_reads_it(api, settings):
    settings.API_MAX_BODY_BYTES = 2000
    body = {"type": "check_in", "member": {"email": "a@b.co"}, "metadata": {"note": "x" * 3000}}

    response = api.post("/api/v1/events", body, format="json")

    assert response.status_code == 413
    assert error_of(response) == {
        "code": "payload_too_large",
        "message": "The body is over this endpoint's limit of 2,000 bytes.",
        "fields": {},
        "limit": 2000,
        "request_id": response["X-Request-ID"],
    }


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_api_path_is_a_json_404(api, method):
    response = getattr(api, method)("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_an_error_no_view_handled_is_a_json_500_and_logged(api, monkeypatch, caplog):
    from loyalty import api as loyalty_api

    def broken(**kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(loyalty_api, "events_accept", broken)
    body = {"type": "check_in", "member": {"email": "a@b.co"}, "idempotency_key": "ci-1"}

    response = api.post("/api/v1/events", body, format="json")

    assert response.status_code == 500
    assert error_of(response)["code"] == "internal_error"
    assert "the disk caught fire" not in response.content.decode()
    assert any(record.exc_info and "the disk caught fire" in str(record.exc_info[1]) for record in caplog.records)


@pytest.mark.parametrize(
    "error",
    [OperationalError("server closed the connection unexpectedly"), RedisConnectionError("Connection refused")],
    ids=["PostgreSQL away", "Redis away"],
)
def test_a_server_that_is_away_is_a_503_in_the_error_shape_with_retry_after(api, monkeypatch, error):
    from loyalty import api as loyalty_api

    def away(**kwargs):
        raise error

    monkeypatch.setattr(loyalty_api, "events_accept", away)
    body = {"type": "check_in", "member": {"email": "a@b.co"}, "idempotency_key": "ci-1"}

    response = api.post("/api/v1/events", body, format="json")

    assert response.status_code == 503
    assert error_of(response)["code"] == "unavailable"
    assert response["Retry-After"] == "2"


@pytest.mark.parametrize("kind", [{}, [], ["check_in"], {"a": 1}])
@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/events/batch"])
def test_an_event_type_that_is_an_object_or_a_list_is_400_not_500(api, path, kind):
    event = {"type": kind, "member": {"email": "a@b.co"}, "idempotency_key": "k-1"}
    body = {"events": [event]} if path.endswith("/batch") else event

    response = api.post(path, body, format="json")

    if path.endswith("/batch"):
        assert response.status_code == 200
        [result] = response.json()["results"]
        assert result["http_status"] == 400
        assert "type" in result["body"]["error"]["fields"]
    else:
        assert response.status_code == 400
        assert "type" in error_of(response)["fields"]


def test_a_post_to_an_unknown_api_path_without_csrf_token_is_a_json_404(db):
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = "whatever"  # as a browser of a logged-in fan would send it

    response = client.post("/api/v1/live/no such channel/lease")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_csrf_failure_under_api_is_a_403_in_the_error_shape_and_the_html_page_elsewhere(rf):
    from config.middleware import csrf_failure

    api = csrf_failure(rf.post("/api/v1/anything"), reason="CSRF cookie not set.")
    page = csrf_failure(rf.post("/login/"), reason="CSRF cookie not set.")

    assert api.status_code == 403
    assert json.loads(api.content)["error"] == {
        "code": "csrf_failed",
        "message": "CSRF Failed: CSRF cookie not set. Reload the page.",
        "fields": {},
    }
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")


def test_csrf_failures_are_answered_by_the_api_aware_view(settings):
    assert settings.CSRF_FAILURE_VIEW == "config.middleware.csrf_failure"
