"""Moving from Loyalteez: its manual-event call, sent as it is with the brand's Tally key, earns once and
answers with what was earned (a real Celery worker processes the event while the answer waits)."""

import pytest

from ledger.models import Transaction
from loyalty.models import EarnRule, Membership
from tests.loyalty.conftest import api_client_for
from tests.loyalty.network import FAN, ltz

pytestmark = pytest.mark.django_db(transaction=True)


SEED_BODY = {
    "brandId": "shop-ltz",
    "eventType": "place_order",
    "userEmail": FAN,
    "domain": "shop.example",
    "metadata": {"order_id": "W-1001", "order_value": 49.99, "location_id": "web", "items": 3},
}


def test_the_seed_s_manual_event_credits_10_ltz_per_dollar_once_and_again_not_at_all(shop, network, celery_worker):
    client = api_client_for(shop)

    first = client.post("/api/v1/compat/loyalteez/manual-event", SEED_BODY, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["earned"] == {"points": 0, "network_points": 499, "unit": "LTZ"}
    again = client.post("/api/v1/compat/loyalteez/manual-event", SEED_BODY, format="json")
    assert again.status_code in (200, 201), again.json()
    assert again["Idempotent-Replayed"] == "true"

    assert ltz(network) == 499
    assert Transaction.objects.filter(kind="earn").count() == 1


def test_a_manual_event_naming_another_brand_id_is_refused_and_earns_nothing(shop, network, celery_worker):
    body = {**SEED_BODY, "brandId": "someone-else"}
    response = api_client_for(shop).post("/api/v1/compat/loyalteez/manual-event", body, format="json")

    assert response.status_code == 400
    assert "brandId" in response.json()["error"]["fields"]
    assert not Membership.objects.exists()


def test_a_manual_event_without_an_order_value_is_a_400_in_the_error_shape(shop, celery_worker):
    body = {**SEED_BODY, "metadata": {"order_id": "W-2"}}
    response = api_client_for(shop).post("/api/v1/compat/loyalteez/manual-event", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "metadata.order_value": ["place_order needs the order value, a number."]
    }


def test_a_custom_manual_event_maps_to_the_brand_s_rule_of_that_name_once(shop, network, celery_worker):
    EarnRule.objects.create(brand=shop, event_type="newsletter_signup", points=5)
    body = {**SEED_BODY, "eventType": "newsletter_signup", "metadata": {"event_id": "nl-1"}}
    client = api_client_for(shop)
    first = client.post("/api/v1/compat/loyalteez/manual-event", body, format="json")
    client.post("/api/v1/compat/loyalteez/manual-event", body, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["earned"]["points"] == 5
    assert Transaction.objects.filter(kind="earn").count() == 1


def test_a_manual_event_of_an_unknown_type_is_a_400(shop, celery_worker):
    body = {**SEED_BODY, "eventType": "unknown_thing", "metadata": {"event_id": "x"}}
    response = api_client_for(shop).post("/api/v1/compat/loyalteez/manual-event", body, format="json")
    assert response.status_code == 400
    assert "eventType" in response.json()["error"]["fields"]
