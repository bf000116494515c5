"""Stripe's idempotency semantics, under real concurrency (threads, each with its own connection)."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ledger.models import Transaction
from ledger.selectors import account_balance_get
from loyalty.models import Event
from loyalty.services.idempotency import idempotency_records_purge
from tests.concurrency import run_concurrently
from tests.loyalty.conftest import api_client_for, event_processed
from tests.loyalty.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {
    "type": "purchase",
    "member": {"email": "rush@example.com"},
    "order_id": "RUSH-1",
    "amount": "7.25",
    "currency": "USD",
}


def test_100_identical_purchases_at_once_credit_once_and_all_answer_with_the_one_event(coffee, celery_worker):
    key = api_client_for(coffee).api_key

    def send(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.plain_key}")
        response = client.post("/api/v1/events?wait=true", BODY, format="json")
        return response.status_code, response.json()

    answers = run_concurrently(send, 100)

    # One event for all: the outcome (201) once the worker got to it within the wait, else pending (202),
    # as ?wait=true promises; 100 threads of this process share its GIL with the worker, so both occur.
    assert {status for status, _ in answers} <= {201, 202}
    assert len({body["id"] for _, body in answers}) == 1
    for status in (201, 202):
        assert len({repr(sorted(body.items())) for code, body in answers if code == status}) <= 1, status
    event = event_processed(Event.objects.get(order_id="RUSH-1").pk)
    assert event.status == Event.Status.AWARDED
    assert Transaction.objects.filter(kind="earn").count() == 1
    assert event.membership.lifetime_earned == 7
    assert account_balance_get(event.membership.wallet).balance == 7


def test_same_key_same_body_replays_status_and_body(coffee_api, celery_worker):
    first = coffee_api.post("/api/v1/events?wait=true", BODY, format="json")
    again = coffee_api.post("/api/v1/events?wait=true", BODY, format="json")

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert Event.objects.count() == 1


def test_same_key_different_body_is_409_idempotency_conflict(coffee_api, celery_worker):
    coffee_api.post("/api/v1/events?wait=true", BODY, format="json")
    response = coffee_api.post("/api/v1/events?wait=true", {**BODY, "amount": "9.99"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Event.objects.count() == 1


def test_header_key_wins_over_order_id_and_a_reused_order_id_is_still_refused(coffee_api, celery_worker):
    coffee_api.post("/api/v1/events", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    response = coffee_api.post("/api/v1/events", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_order"
    assert Event.objects.count() == 1


def test_keys_are_scoped_to_the_brand(coffee, celery_worker):
    from tests.loyalty.factories import BrandFactory

    other = BrandFactory(slug="other")
    from loyalty.models import EarnRule

    EarnRule.objects.create(brand=other, event_type="purchase", points_per_unit=1, currency="USD")
    assert api_client_for(coffee).post("/api/v1/events", BODY, format="json").status_code == 202
    assert api_client_for(other).post("/api/v1/events", BODY, format="json").status_code == 202
    assert sorted(Event.objects.values_list("brand__slug", "order_id")) == [("coffee", "RUSH-1"), ("other", "RUSH-1")]


def test_event_keys_outlive_the_replay_ttl_of_other_writes(coffee_api, celery_worker):
    first = coffee_api.post("/api/v1/events?wait=true", BODY, format="json")
    Event.objects.update(created_at=timezone.now() - dt.timedelta(days=40))
    idempotency_records_purge()

    again = coffee_api.post("/api/v1/events?wait=true", BODY, format="json")

    assert (again.status_code, again.json()["id"]) == (first.status_code, first.json()["id"])
    assert Transaction.objects.filter(kind="earn").count() == 1


def test_idempotency_records_of_other_writes_are_purged_after_their_ttl(coffee_api, settings):
    MembershipFactory(brand=coffee_api.api_key.brand, member__email="rush@example.com")
    adjustment = {"member": {"email": "rush@example.com"}, "points": 5, "reason": "welcome"}
    coffee_api.post("/api/v1/adjustments", adjustment, format="json", HTTP_IDEMPOTENCY_KEY="welcome-1")
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    assert idempotency_records_purge(now=timezone.now() + dt.timedelta(hours=23)) == 0
    assert idempotency_records_purge(now=timezone.now() + dt.timedelta(hours=25)) == 1
