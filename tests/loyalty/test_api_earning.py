"""Earning end to end through the HTTP API, processed by a real Celery worker."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.models import EarnRule, Membership
from tests.loyalty.conftest import api_client_for, event_processed
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db(transaction=True)


def purchase(client, email, amount, order_id, **extra):
    body = {
        "type": "purchase",
        "member": {"email": email},
        "order_id": order_id,
        "amount": amount,
        "currency": "USD",
    }
    return client.post("/api/v1/events?wait=true", {**body, **extra}, format="json")


def test_green_member_earns_one_star_per_dollar(coffee_api, celery_worker):
    response = purchase(coffee_api, "green@example.com", "10.00", "A-1")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["points"], body["balance"]) == ("awarded", 10, 10)
    assert body["tier"]["name"] == "Green"


def test_crossing_500_makes_gold_and_the_next_purchase_earns_at_1_2(coffee_api, celery_worker):
    crossing = purchase(coffee_api, "gold@example.com", "505.00", "G-1").json()
    assert crossing["points"] == 505  # the event that crosses the threshold earns at the old rate
    member = coffee_api.get(f"/api/v1/members/{crossing['member']['id']}").json()
    assert member["tier"] == {"name": "Gold", "multiplier": "1.20"}
    assert member["next_tier"] == {"name": "Reserve", "points_needed": 2500 - 505}

    after = purchase(coffee_api, "gold@example.com", "5.50", "G-2").json()

    assert after["points"] == 6  # floor(5.50 x 1 x 1.2) = floor(6.6)
    assert after["balance"] == 511


def test_reserve_member_earns_at_1_7(coffee_api, celery_worker):
    purchase(coffee_api, "reserve@example.com", "2500.00", "R-1")
    assert purchase(coffee_api, "reserve@example.com", "20.00", "R-2").json()["points"] == 34  # floor(34.0)


def test_a_ten_points_per_dollar_brand_earns_50_for_5_dollars(celery_worker):
    network = BrandFactory(slug="network")
    EarnRule.objects.create(brand=network, event_type="purchase", points_per_unit=Decimal("10"), currency="USD")
    assert purchase(api_client_for(network), "n@example.com", "5.00", "N-1").json()["points"] == 50


def test_check_in_is_capped_once_per_brand_day_and_awarded_again_the_next_day(coffee_api, celery_worker):
    # 08:00 and 23:00 in Los Angeles on one day; 23:00 is already the next day in UTC.
    zone = coffee_api.api_key.brand.zone
    day = (timezone.now().astimezone(zone) - dt.timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)

    def check_in(when):
        body = {"type": "check_in", "member": {"email": "cap@example.com"}, "occurred_at": when.isoformat()}
        key = f"ci-{when.isoformat()}"
        return coffee_api.post("/api/v1/events?wait=true", body, format="json", HTTP_IDEMPOTENCY_KEY=key).json()

    first = check_in(day)
    second = check_in(day.replace(hour=23))
    next_day = check_in(day + dt.timedelta(days=1))

    assert (first["status"], first["points"]) == ("awarded", 5)
    assert (second["status"], second["reason"], second["points"]) == ("rejected", "cap_reached", 0)
    assert (next_day["status"], next_day["points"]) == ("awarded", 5)


def test_without_wait_the_api_answers_202_pending_and_the_worker_awards_it(coffee_api, celery_worker):
    body = {
        "type": "purchase",
        "member": {"email": "later@example.com"},
        "order_id": "L-1",
        "amount": "3.00",
        "currency": "USD",
    }
    response = coffee_api.post("/api/v1/events", body, format="json")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"

    event_id = event_processed(response.json()["id"]).pk
    final = coffee_api.get(f"/api/v1/events/{event_id}").json()
    assert (final["status"], final["points"], final["balance"]) == ("awarded", 3, 3)


@pytest.mark.parametrize(
    ("rule_change", "body_change", "reason"),
    [
        ({"enabled": False}, {}, "rule_inactive"),
        ({"minimum_amount": Decimal("5.00")}, {}, "below_minimum"),
        ({}, {"currency": "EUR"}, "currency_mismatch"),
    ],
)
def test_purchase_rejections_say_why(coffee_api, celery_worker, rule_change, body_change, reason):
    EarnRule.objects.filter(brand=coffee_api.api_key.brand, event_type="purchase").update(**rule_change)
    body = purchase(coffee_api, "r@example.com", "2.00", f"X-{reason}", **body_change).json()
    assert (body["status"], body["reason"], body["points"]) == ("rejected", reason, 0)


def test_member_and_membership_are_created_on_first_sight_by_external_id(coffee_api, celery_worker):
    body = {"type": "check_in", "member": {"external_id": "POS-77"}}
    response = coffee_api.post("/api/v1/events?wait=true", body, format="json", HTTP_IDEMPOTENCY_KEY="ci-1").json()
    assert response["member"]["external_id"] == "POS-77"
    assert Membership.objects.get(external_id="POS-77").brand.slug == "coffee"
    found = coffee_api.get("/api/v1/members", {"external_id": "POS-77"}).json()["results"]
    assert [m["balance"] for m in found] == [5]
