"""Bad input is a 400 in the error shape, never a 500; wrong keys 401; other brands' objects 404."""

import pytest
from rest_framework.test import APIClient

from loyalty.models import Event
from loyalty.services.earning import adjustment_create
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandFactory, MembershipFactory

pytestmark = pytest.mark.django_db

GOOD = {
    "type": "purchase",
    "member": {"email": "e@example.com"},
    "order_id": "E-1",
    "amount": "5.50",
    "currency": "USD",
}


def assert_error(response, status, code, field=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if field:
        assert field in error["fields"], error


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"currency": "USS"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"type": "teleport"}, "type"),
        ({"type": "no spaces!"}, "type"),
        ({"member": {}}, "member"),
        ({"member": "e@example.com"}, "member"),
        ({"member": {"email": "not-an-email"}}, "member"),
        ({"order_id": None}, "order_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"metadata": ["a", "list"]}, "metadata"),
        ({"metadata": {"blob": "x" * (17 * 1024)}}, "metadata"),
    ],
)
def test_malformed_events_are_400_with_field_errors(coffee_api, change, field):
    body = {**GOOD, **change}
    assert_error(coffee_api.post("/api/v1/events", body, format="json"), 400, "invalid_input", field)
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"order_id": 123}, "order_id"),
        ({"amount": 5.5}, "amount"),
        ({"amount": 5}, "amount"),
        ({"currency": 840}, "currency"),
        ({"location_id": 12}, "location_id"),
        ({"member": {"external_id": 1001}}, "member"),
        ({"type": "check_in", "idempotency_key": 7}, "idempotency_key"),
    ],
)
def test_a_number_where_the_schema_says_string_is_400(coffee_api, change, field):
    body = {**GOOD, **change}
    assert_error(coffee_api.post("/api/v1/events", body, format="json"), 400, "invalid_input", field)
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"member": {"email": "m@example.com"}, "points": "25", "reason": "x"}, "points"),
        ({"member": {"email": "m@example.com"}, "points": 25.0, "reason": "x"}, "points"),
        ({"member": {"email": "m@example.com"}, "points": 25, "reason": 5}, "reason"),
        ({"member": {"external_id": 1001}, "points": 25, "reason": "x"}, "member"),
    ],
)
def test_an_adjustment_with_a_string_for_a_number_or_a_number_for_a_string_is_400(coffee_api, body, field):
    response = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="adj-1")
    assert_error(response, 400, "invalid_input", field)


@pytest.mark.parametrize("missing", ["type", "member", "order_id", "amount", "currency"])
def test_a_missing_field_is_400_naming_it(coffee_api, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    assert_error(coffee_api.post("/api/v1/events", body, format="json"), 400, "invalid_input", missing)


def test_bad_json_is_400_malformed_json(coffee_api):
    response = coffee_api.post("/api/v1/events", data='{"type": "purchase",', content_type="application/json")
    assert_error(response, 400, "malformed_json")


def test_a_json_array_body_is_400_not_500(coffee_api):
    response = coffee_api.post("/api/v1/events", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


def test_non_json_content_type_is_415(coffee_api):
    response = coffee_api.post("/api/v1/events", data="type=purchase", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_oversized_idempotency_key_is_400(coffee_api):
    response = coffee_api.post("/api/v1/events", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="k" * 300)
    assert_error(response, 400, "invalid_input", "Idempotency-Key")


@pytest.mark.parametrize("header", [None, "Api-Key nope.nope", "Bearer abc", "Api-Key "])
def test_missing_or_wrong_key_is_401(coffee, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.get("/api/v1/members", {"email": "x@example.com"}), 401, "not_authenticated")


def test_a_revoked_key_is_401(coffee_api):
    coffee_api.api_key.revoked = True
    coffee_api.api_key.save(update_fields=["revoked"])
    assert_error(coffee_api.get("/api/v1/members", {"email": "x@example.com"}), 401, "not_authenticated")


def test_a_key_revoked_after_use_is_refused_once_the_cache_time_is_over(coffee_api, settings):
    assert coffee_api.get("/api/v1/members", {"email": "x@example.com"}).status_code == 200
    coffee_api.api_key.revoked = True
    coffee_api.api_key.save(update_fields=["revoked"])
    settings.API_KEY_CACHE_SECONDS = 0  # as if the few seconds a process trusts a checked key had passed
    assert_error(coffee_api.get("/api/v1/members", {"email": "x@example.com"}), 401, "not_authenticated")


def test_throttling_per_key_answers_429(coffee_api, settings):
    settings.API_THROTTLE_RATE = "3/min"
    codes = [coffee_api.get("/api/v1/members", {"email": "x@example.com"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert coffee_api.get("/api/v1/members", {"email": "x@example.com"}).json()["error"]["code"] == "throttled"


def test_the_throttle_admits_exactly_the_rate_though_a_process_takes_tokens_ten_at_a_time(coffee_api, settings):
    from types import SimpleNamespace

    from django_redis import get_redis_connection

    from loyalty.authentication import ApiKeyRateThrottle

    settings.API_THROTTLE_RATE = "1000/day"  # tokens taken 10 at a time; refilling far too slowly to matter here
    request = SimpleNamespace(auth=coffee_api.api_key)
    # Another process took 300 tokens of the shared bucket in Redis...
    granted, _ = get_redis_connection("default").register_script(ApiKeyRateThrottle._SCRIPT)(
        keys=[f"tally:throttle:api_key:{coffee_api.api_key.pk}"], args=[1000, 1000 / 86400, 300]
    )
    assert granted == 300
    # ...so this one gets the other 700, and not one more.
    throttle = ApiKeyRateThrottle()
    assert sum(throttle.allow_request(request, None) for _ in range(800)) == 700
    assert throttle.wait() > 0


def test_members_lookup_is_a_list_and_empty_when_unknown(coffee_api):
    assert coffee_api.get("/api/v1/members", {"email": "nobody@example.com"}).json() == {"results": []}
    assert_error(coffee_api.get("/api/v1/members"), 400, "invalid_input", "email")


def test_another_brands_member_event_and_adjustment_are_404(coffee, coffee_api):
    other = BrandFactory(slug="tea")
    theirs = MembershipFactory(brand=other, member__email="theirs@example.com")
    their_event = Event.objects.create(brand=other, membership=theirs, type="check_in", occurred_at=theirs.joined_at)

    assert_error(coffee_api.get(f"/api/v1/members/{theirs.pk}"), 404, "not_found")
    assert_error(coffee_api.get(f"/api/v1/members/{theirs.pk}/transactions"), 404, "not_found")
    assert_error(coffee_api.get(f"/api/v1/events/{their_event.pk}"), 404, "not_found")
    adjustment = {"member": {"email": "theirs@example.com"}, "points": 5, "reason": "x"}
    assert_error(coffee_api.post("/api/v1/adjustments", adjustment, format="json"), 404, "not_found")
    assert coffee_api.get("/api/v1/members", {"email": "theirs@example.com"}).json() == {"results": []}
    their_key = api_client_for(other)
    assert their_key.get(f"/api/v1/members/{theirs.pk}").status_code == 200


def test_bad_cursor_and_limit_are_400(coffee_api):
    membership = MembershipFactory(brand=coffee_api.api_key.brand)
    adjustment_create(membership=membership, points=5, reason="welcome", idempotency_key="welcome")
    url = f"/api/v1/members/{membership.pk}/transactions"
    assert_error(coffee_api.get(url, {"limit": "many"}), 400, "invalid_input", "limit")
    response = coffee_api.get(url, {"cursor": "not-a-cursor"})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"]
