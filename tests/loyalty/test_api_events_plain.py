"""POST /api/v1/events answered without DRF (loyalty.api.events_plain) is what DRF's view would answer."""

import pytest

from loyalty import api
from loyalty.authentication import _recent_keys

pytestmark = pytest.mark.django_db


def purchase(order_id: str, amount: str = "4.00", **extra) -> dict:
    body = {"type": "purchase", "member": {"email": "p@example.com"}, "order_id": order_id, "amount": amount}
    return {**body, "currency": "USD", **extra}


def answer(response) -> tuple:
    headers = {name: response.get(name) for name in ("Content-Type", "Allow", "Vary", "Idempotent-Replayed")}
    body = response.json()
    if "error" in body:  # each request's own id (config.middleware.RequestIdMiddleware), as in its header
        error = dict(body["error"])
        assert error.pop("request_id") == response["X-Request-ID"]
        body = {**body, "error": error}
    if isinstance(body.get("id"), int):
        body = {**body, "id": "<id>", "created_at": "<time>", "occurred_at": "<time>"}
    return response.status_code, body, headers


@pytest.fixture
def plain_calls(monkeypatch):
    """What events_plain answered, per request: None when it left the request to DRF's view."""
    seen = []
    original = api.events_plain
    monkeypatch.setattr(api, "events_plain", lambda request: seen.append(response := original(request)) or response)
    return seen


@pytest.mark.parametrize(
    ("first", "again", "headers"),
    [
        (purchase("R-1"), purchase("R-1"), {}),  # replayed
        (purchase("C-1"), purchase("C-1", amount="5.00"), {}),  # the same order id, another body: 409
        (purchase("K-1"), purchase("K-1"), {"HTTP_IDEMPOTENCY_KEY": "other"}),  # duplicate order: 409
        (
            purchase("F-1"),
            {"type": "refund", "member": {"email": "q@example.com"}, "order_id": "F-1", "amount": "1"},
            {"HTTP_IDEMPOTENCY_KEY": "refund-F-1"},
        ),
        (
            {"type": "check_in", "member": {"external_id": "E-1"}},
            {"type": "check_in", "member": {"external_id": "E-1"}},
            {"HTTP_IDEMPOTENCY_KEY": "ci-1"},
        ),
    ],
)
def test_the_plain_path_answers_a_repeated_request_exactly_as_the_drf_view(
    coffee_api, plain_calls, first, again, headers
):
    coffee_api.post("/api/v1/events", first, format="json", **headers)
    _recent_keys.clear()  # an unchecked key: DRF's view answers (and checks the key)
    by_drf = coffee_api.post("/api/v1/events", again, format="json", **headers)
    by_plain = coffee_api.post("/api/v1/events", again, format="json", **headers)

    assert plain_calls[1] is None and plain_calls[2] is not None
    assert answer(by_plain) == answer(by_drf)


def test_a_new_event_is_answered_by_the_plain_path_as_by_drf(coffee_api, plain_calls):
    _recent_keys.clear()
    by_drf = coffee_api.post("/api/v1/events", purchase("A-1"), format="json")
    by_plain = coffee_api.post("/api/v1/events", purchase("A-2"), format="json")

    assert plain_calls[0] is None and plain_calls[1] is not None  # the first went to DRF, the second did not
    drf, plain = answer(by_drf), answer(by_plain)
    assert plain[0] == drf[0] == 202
    assert plain[2] == drf[2]
    assert {**plain[1], "order_id": None} == {**drf[1], "order_id": None}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"type": "purchase"}, {}),  # invalid: DRF words the errors
        (purchase("X-1", amount="NaN"), {}),
        (purchase("X-2"), {"HTTP_IDEMPOTENCY_KEY": "k" * 300}),
    ],
)
def test_what_the_plain_path_does_not_take_drf_answers(coffee_api, plain_calls, body, headers):
    coffee_api.get("/api/v1/members", {"email": "x@example.com"})  # the key is checked, and remembered

    response = coffee_api.post("/api/v1/events", body, format="json", **headers)

    assert plain_calls == [None]
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("wait", ["maybe", "null", ""])
def test_a_wait_that_is_not_a_boolean_is_left_to_drf_which_answers_400_and_stores_nothing(
    coffee_api, plain_calls, wait
):
    from loyalty.models import Event

    coffee_api.get("/api/v1/members", {"email": "x@example.com"})  # the key is checked, and remembered

    response = coffee_api.post(f"/api/v1/events?wait={wait}", purchase("W-1"), format="json")

    assert plain_calls == [None]
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"wait": ["Must be true or false (also 1 or 0, yes or no)."]}
    assert not Event.objects.exists()


@pytest.mark.parametrize("wait", ["false", "0", "No", "FALSE"])
def test_a_wait_that_says_no_answers_at_once_on_the_plain_path(coffee_api, plain_calls, wait):
    coffee_api.get("/api/v1/members", {"email": "x@example.com"})

    response = coffee_api.post(f"/api/v1/events?wait={wait}", purchase("W-2"), format="json")

    assert plain_calls[0] is not None
    assert response.status_code == 202
