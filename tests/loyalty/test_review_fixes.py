"""Regression tests for the review of the earning and perks code (each names the failure it prevents)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django_redis import get_redis_connection

from loyalty.models import Event, Membership
from loyalty.services.processing import events_pending_sweep
from tests.loyalty.conftest import event_processed
from tests.loyalty.factories import AdjustmentFactory, BrandStaffFactory, MembershipFactory, TierFactory


@pytest.mark.django_db(transaction=True)
def test_a_busy_member_answer_is_not_stored_under_the_idempotency_key(coffee_api, settings):
    membership = MembershipFactory(brand=coffee_api.api_key.brand, member__email="busy@example.com")
    settings.MEMBERSHIP_LOCK_WAIT_SECONDS = 0
    body = {"member": {"email": "busy@example.com"}, "points": 5, "reason": "sorry"}
    lock = get_redis_connection("default").lock(f"tally:lock:membership:{membership.pk}", timeout=30)
    assert lock.acquire()
    try:
        busy = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="adj-1")
    finally:
        lock.release()
    retry = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="adj-1")

    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "in_progress")
    assert retry.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_events_nobody_woke_a_worker_for_are_found_by_the_sweep_and_processed(coffee, celery_worker):
    membership = MembershipFactory(brand=coffee)
    # As if the accept's wake was lost (Redis or the broker away, the web process killed after its commit).
    stuck = Event.objects.create(brand=coffee, membership=membership, type="check_in", occurred_at=timezone.now())
    Event.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - dt.timedelta(minutes=10))

    assert events_pending_sweep(older_than_seconds=120) == [coffee.pk]
    assert event_processed(stuck.pk).status == Event.Status.AWARDED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/members", {"email": "a\x00@example.com"}),
        ("/api/v1/members", {"external_id": "x\x00"}),
        ("/api/v1/perks", {"member": "²"}),
    ],
)
def test_nul_bytes_and_unicode_digits_in_queries_are_400(coffee_api, url, params):
    response = coffee_api.get(url, params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.django_db
def test_nul_in_metadata_is_400(coffee_api):
    body = {"type": "check_in", "member": {"email": "n@example.com"}, "metadata": {"note": "a\x00b"}}
    response = coffee_api.post("/api/v1/events", body, format="json")
    assert response.status_code == 400
    assert "metadata" in response.json()["error"]["fields"]


@pytest.mark.django_db(transaction=True)
def test_a_refund_in_another_currency_than_the_order_is_refused(coffee_api, celery_worker):
    purchase = {
        "type": "purchase",
        "member": {"email": "c@example.com"},
        "order_id": "C-1",
        "amount": "10.00",
        "currency": "USD",
    }
    coffee_api.post("/api/v1/events?wait=true", purchase, format="json")
    refund = {
        "type": "refund",
        "member": {"email": "c@example.com"},
        "order_id": "C-1",
        "amount": "1.00",
        "currency": "EUR",
    }
    response = coffee_api.post("/api/v1/events", refund, format="json", HTTP_IDEMPOTENCY_KEY="refund-C-1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "currency_mismatch"


@pytest.mark.django_db
def test_saving_a_membership_in_the_portal_keeps_the_tier_the_engine_set_meanwhile(client):
    staff = BrandStaffFactory()
    membership = MembershipFactory(brand=staff.brand)
    client.force_login(staff.user)
    url = reverse("admin:loyalty_membership_change", args=[membership.pk])
    client.get(url)  # the form is open...
    gold = TierFactory(brand=staff.brand, name="Gold")
    Membership.objects.filter(pk=membership.pk).update(tier=gold)  # ...while a purchase upgrades the member

    response = client.post(url, {"status": "suspended", "external_id": "X-1"})

    assert response.status_code == 302, response.content.decode()[:2000]
    membership.refresh_from_db()
    assert (membership.status, membership.external_id, membership.tier) == ("suspended", "X-1", gold)


@pytest.mark.django_db
def test_an_adjustment_funded_member_keeps_points_when_staff_edit_the_membership(client):
    staff = BrandStaffFactory()
    membership = MembershipFactory(brand=staff.brand)
    AdjustmentFactory(membership=membership, points=30)
    client.force_login(staff.user)
    client.post(reverse("admin:loyalty_membership_change", args=[membership.pk]), {"status": "active"})
    membership.refresh_from_db()
    assert membership.lifetime_earned == 0 and membership.wallet_id is not None
