"""The outbox and its sinks, against real HTTP receivers on loopback: what a change writes, what each sink
gets (signed webhooks, analytics batches), retries with the same id, nothing for a rollback, nothing lost
while the sinks are down, and endpoints disabled after failing for the retry period."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections import Counter

import pytest
from django.db import transaction
from django.urls import reverse

from integrations import services, sinks
from integrations.models import BrandIntegration, Delivery, OutboxMessage, WebhookEndpoint
from integrations.services import endpoint_create
from loyalty.models import Membership
from loyalty.services.earning import adjustment_create
from perks.services import perk_redeem, redemption_cancel
from tests.loyalty.factories import BrandFactory, BrandStaffFactory
from tests.loyalty.lifecycle import buy, expiry_set, membership_of, on, refund
from tests.perks.factories import PerkFactory

pytestmark = pytest.mark.django_db

FAN = {"email": "fan@example.com"}


def analytics_on(brand) -> BrandIntegration:
    return BrandIntegration.objects.create(brand=brand, analytics_token="tok-1", analytics_secret="sekret")


def a_webhook(brand) -> WebhookEndpoint:
    """An endpoint that is never called: a brand with a sink keeps its messages."""
    return WebhookEndpoint.objects.create(brand=brand, url="https://hooks.example/tally")


def deliver() -> int:
    return services.outbox_work(budget_seconds=10)


def delivered_events(receiver) -> list[dict]:
    """Every analytics event the receiver accepted (2xx), in order."""
    return [event for request in receiver.requests if request.status < 300 for event in request.json()]


def test_a_purchase_sends_one_points_earned_event_and_one_signed_points_earned_webhook(coffee, hooks, mixpanel):
    analytics_on(coffee)
    endpoint = endpoint_create(brand=coffee, url=f"{hooks.url}/tally", events=["points.earned"])

    buy(coffee, "o-1", "12.00", FAN)
    deliver()

    membership = membership_of(coffee)
    earned = [event for event in delivered_events(mixpanel) if event["event"] == "points_earned"]
    assert len(earned) == 1
    properties = earned[0]["properties"]
    assert (properties["distinct_id"], properties["brand"], properties["points"], properties["balance_after"]) == (
        str(membership.pk),
        "coffee",
        12,
        12,
    )
    assert properties["token"] == "tok-1" and len(properties["$insert_id"]) == 32
    assert mixpanel.requests[0].path == "/import"
    assert mixpanel.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"sekret:").decode()
    assert [request.json()["type"] for request in hooks.requests] == ["points.earned"]
    [request] = hooks.requests
    assert sinks.signature_verify(endpoint.secret, request.body, request.headers["Tally-Signature"])
    assert not sinks.signature_verify("whsec_other", request.body, request.headers["Tally-Signature"])
    body = request.json()
    assert (
        body["brand"] == "coffee" and body["data"]["points"] == 12 and body["data"]["member"] == {"id": membership.pk}
    )
    assert str(OutboxMessage.objects.get(type="points.earned").uid) == body["id"]
    assert uuid.UUID(body["id"]).hex == properties["$insert_id"]


def test_each_ledger_change_member_and_tier_change_writes_its_message(coffee):
    a_webhook(coffee)
    buy(coffee, "o-1", "600.00", FAN)  # a new member, who reaches Gold
    membership = membership_of(coffee)
    refund(coffee, "o-1", "200.00", FAN)  # back under Gold
    adjustment_create(membership=membership, points=7, reason="goodwill", idempotency_key="adj-1")
    redemption = perk_redeem(membership=membership, perk=PerkFactory(brand=coffee, cost=50), request_key="r-1")
    redemption_cancel(redemption=redemption.redemption)

    messages = list(OutboxMessage.objects.order_by("id").values_list("type", "data"))

    assert [kind for kind, _ in messages] == [
        "member.created",
        "points.earned",
        "tier.changed",
        "points.refunded",
        "tier.changed",
        "points.adjusted",
        "points.redeemed",
        "redemption.cancelled",
    ]
    data = dict(messages)
    assert data["member.created"]["member"] == {"id": membership.pk, "external_id": None, "email": FAN["email"]}
    assert next(d for kind, d in messages if kind == "tier.changed") | {"qualifying_points": None} == {
        "member": {"id": membership.pk},
        "from": "Green",
        "to": "Gold",
        "reason": "earned",
        "qualifying_points": None,
    }
    assert (data["points.refunded"]["points"], data["points.refunded"]["balance_after"]) == (-200, 400)
    assert (data["points.adjusted"]["points"], data["points.adjusted"]["balance_after"]) == (7, 407)
    assert data["points.redeemed"]["points"] == -50 and data["redemption.cancelled"]["points"] == 50


def test_a_receiver_that_fails_twice_gets_the_same_message_id_a_third_time_and_then_no_more(coffee, hooks, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0  # retried at once: the loop of one round tries three times
    endpoint_create(brand=coffee, url=hooks.url, events=["points.earned"])
    hooks.answers = [500, 500]

    buy(coffee, "o-1", "12.00", FAN)
    deliver()
    deliver()

    assert [request.status for request in hooks.requests] == [500, 500, 200]
    assert len({request.json()["id"] for request in hooks.requests}) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 3, 200)


def test_a_failure_waits_an_exponential_backoff(coffee, hooks, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    endpoint_create(brand=coffee, url=hooks.url)
    hooks.down = True
    buy(coffee, "o-1", "12.00", FAN)

    deliver()

    waits = [
        (delivery.next_attempt_at - delivery.message.created_at).total_seconds()
        for delivery in Delivery.objects.select_related("message")
    ]
    assert all(25 <= wait <= 120 for wait in waits), waits
    assert services.backoff_seconds(1) == 30 and services.backoff_seconds(4) == 240
    assert services.backoff_seconds(40) == services.MAX_BACKOFF_SECONDS


def test_a_change_that_rolls_back_sends_nothing(coffee, hooks):
    endpoint_create(brand=coffee, url=hooks.url)
    buy(coffee, "o-1", "12.00", FAN)
    deliver()
    sent, written = len(hooks.requests), OutboxMessage.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        adjustment_create(membership=membership_of(coffee), points=5, reason="oops", idempotency_key="adj-1")
        raise RuntimeError("rolled back")
    deliver()

    assert OutboxMessage.objects.count() == written
    assert len(hooks.requests) == sent


def test_sinks_down_for_a_while_then_back_get_every_message_once(coffee, hooks, mixpanel, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 1
    analytics_on(coffee)
    endpoint_create(brand=coffee, url=hooks.url)
    hooks.down = mixpanel.down = True
    for n in range(5):
        buy(coffee, f"o-{n}", "10.00", {"email": f"fan{n}@example.com"})

    deliver()
    assert not Delivery.objects.exclude(status="pending").exists()
    # Analytics tried every message (one batch); the endpoint its first, and the rest waits with it.
    assert Delivery.objects.filter(sink="analytics", attempts=1).count() == 10
    assert Delivery.objects.exclude(sink="analytics").filter(attempts=1).count() == 1
    hooks.down = mixpanel.down = False
    Delivery.objects.update(next_attempt_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # their backoff is over
    deliver()

    expected = set(OutboxMessage.objects.values_list("uid", flat=True))
    hook_ids = Counter(request.json()["id"] for request in hooks.requests if request.status == 200)
    analytics_ids = Counter(event["properties"]["$insert_id"] for event in delivered_events(mixpanel))
    assert set(hook_ids) == {str(uid) for uid in expected} and set(hook_ids.values()) == {1}
    assert set(analytics_ids) == {uid.hex for uid in expected} and set(analytics_ids.values()) == {1}
    assert not Delivery.objects.exclude(status="delivered").exists()


def test_an_endpoint_failing_for_the_whole_retry_period_is_disabled_and_staff_see_it(client, coffee, hooks, settings):
    settings.WEBHOOK_RETRY_FOR_SECONDS = 0  # every failure is past the period
    endpoint = endpoint_create(brand=coffee, url=hooks.url)
    hooks.down = True
    buy(coffee, "o-1", "12.00", FAN)  # member.created and points.earned
    services.outbox_fan_out()
    services.deliveries_send()  # one round: the first fails, the second waits with it
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is not None

    services.deliveries_send()

    endpoint.refresh_from_db()
    assert not endpoint.enabled and "every delivery failed since" in endpoint.disabled_reason
    assert not Delivery.objects.filter(status="pending").exists()
    client.force_login(BrandStaffFactory(brand=coffee).user)
    page = client.get(reverse("admin:integrations_webhookendpoint_changelist"))
    assert "was disabled" in page.content.decode()
    assert 'data-testid="disabled-webhooks"' in client.get(reverse("admin:index")).content.decode()
    buy(coffee, "o-3", "12.00", FAN)
    services.outbox_fan_out()
    assert not Delivery.objects.filter(status="pending").exists()  # a disabled endpoint gets nothing new


def test_an_endpoint_hears_only_the_types_it_asked_for_and_nothing_from_before_it(coffee, hooks):
    buy(coffee, "o-0", "12.00", FAN)  # before the endpoint
    endpoint_create(brand=coffee, url=hooks.url, events=["points.adjusted"])
    buy(coffee, "o-1", "12.00", FAN)
    adjustment_create(membership=membership_of(coffee), points=3, reason="thanks", idempotency_key="adj-1")

    deliver()

    assert [request.json()["type"] for request in hooks.requests] == ["points.adjusted"]


def test_points_expiring_soon_are_told_once_per_member_and_date(coffee, hooks):
    expiry_set(coffee, 1)
    BrandIntegration.objects.create(brand=coffee, expiring_soon_days=14)
    with on("2026-01-10"):
        buy(coffee, "o-1", "40.00", FAN)
    with on("2026-02-10"):
        buy(coffee, "o-2", "5.00", FAN)

    early = services.expiring_soon_queue(now=dt.datetime(2026, 2, 10, 20, tzinfo=dt.UTC))  # 19 days before
    first = services.expiring_soon_queue(now=dt.datetime(2026, 2, 20, 20, tzinfo=dt.UTC))
    again = services.expiring_soon_queue(now=dt.datetime(2026, 2, 21, 20, tzinfo=dt.UTC))

    assert (early, first, again) == (0, 1, 0)
    message = OutboxMessage.objects.get(type="points.expiring_soon")
    assert message.data == {
        "member": {"id": membership_of(coffee).pk},
        "points": 40,
        "expires_on": "2026-03-01",
        "balance": 45,
    }


def test_the_outbox_keeps_settled_messages_for_the_retention_period_only(coffee, hooks, settings):
    endpoint_create(brand=coffee, url=hooks.url)
    buy(coffee, "o-1", "12.00", FAN)
    deliver()
    written = OutboxMessage.objects.count()

    assert services.outbox_prune() == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=settings.OUTBOX_RETENTION_DAYS + 1)
    assert services.outbox_prune(now=later) >= written
    assert not OutboxMessage.objects.exists() and not Delivery.objects.exists()


def test_staff_resend_a_delivery_of_their_brand_only(client, coffee, hooks):
    endpoint_create(brand=coffee, url=hooks.url, events=["points.earned"])
    buy(coffee, "o-1", "12.00", FAN)
    deliver()
    delivery = Delivery.objects.get()
    other = BrandFactory(slug="other")
    client.force_login(BrandStaffFactory(brand=other).user)
    url = reverse("admin:integrations_delivery_changelist")
    client.post(url, {"action": "send_again", "_selected_action": [delivery.pk]})
    assert Delivery.objects.get().status == "delivered"  # not theirs: untouched

    client.force_login(BrandStaffFactory(brand=coffee).user)
    page = client.get(url)
    assert page.status_code == 200 and "points.earned" in page.content.decode()
    client.post(url, {"action": "send_again", "_selected_action": [delivery.pk]})
    deliver()

    assert [request.json()["id"] for request in hooks.requests] == [str(delivery.message.uid)] * 2


def test_membership_rows_written_outside_the_processor_tell_member_created_too(coffee):
    from loyalty.services.members import membership_enroll

    a_webhook(coffee)
    membership = membership_enroll(brand=coffee, email="walk-in@example.com", external_id="till-9")

    message = OutboxMessage.objects.get(type="member.created")
    assert message.membership_id == membership.pk
    assert message.data["member"] == {"id": membership.pk, "external_id": "till-9", "email": "walk-in@example.com"}
    assert message.data["tier"] == "Green"
    assert Membership.objects.count() == 1


def test_a_brand_without_a_sink_keeps_no_messages_and_one_registered_hears_the_next_change(coffee, settings):
    settings.ANALYTICS_URL = "https://analytics.example"
    buy(coffee, "o-1", "600.00", FAN)  # a new member who reaches Gold: three messages, had the brand a sink
    analytics = BrandIntegration.objects.create(brand=coffee, analytics_token="tok-1")  # no secret: no analytics
    disabled = WebhookEndpoint.objects.create(brand=coffee, url="https://hooks.example/off", enabled=False)
    buy(coffee, "o-2", "5.00", FAN)
    assert not OutboxMessage.objects.exists()

    analytics.analytics_secret = "sekret"
    analytics.save()
    buy(coffee, "o-3", "5.00", FAN)
    assert list(OutboxMessage.objects.values_list("type", flat=True)) == ["points.earned"]

    analytics.delete()
    disabled.enabled = True
    disabled.save()
    buy(coffee, "o-4", "5.00", {"email": "second@example.com"})
    assert Counter(OutboxMessage.objects.values_list("type", flat=True)) == {"points.earned": 2, "member.created": 1}


def test_a_network_purchase_tells_the_brand_of_the_network_points_earned(shop):
    a_webhook(shop)
    buy(shop, "n-1", "3.00", FAN)

    message = OutboxMessage.objects.get(type="points.earned")

    assert message.brand_id == shop.pk and message.membership_id is None
    assert (message.data["points"], message.data["balance_after"], message.data["unit"]) == (30, 30, "network")
    assert message.data["member"]["network_member_id"] == membership_of(shop).member_id


def test_deliveries_a_killed_worker_claimed_are_sent_by_the_next_once_their_lease_ends(coffee, hooks):
    endpoint_create(brand=coffee, url=hooks.url, events=["points.earned"])
    buy(coffee, "o-1", "12.00", FAN)
    services.outbox_fan_out()

    claimed = services._claim(10)  # a worker claims, then dies before sending
    assert len(claimed) == 1 and services.deliveries_send() == 0  # leased: nobody else takes it
    Delivery.objects.update(next_attempt_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # the lease ran out
    deliver()

    assert [request.json()["type"] for request in hooks.requests] == ["points.earned"]
    assert Delivery.objects.get().status == "delivered"


def test_metrics_show_the_outbox_backlog_and_failures(client, coffee, hooks, settings):
    settings.WEBHOOK_RETRY_FOR_SECONDS = 0
    endpoint_create(brand=coffee, url=hooks.url, events=["points.earned"])
    buy(coffee, "o-1", "12.00", FAN)
    before = client.get("/metrics").content.decode()
    hooks.down = True
    deliver()
    after = client.get("/metrics").content.decode()

    assert 'tally_outbox_backlog{state="undispatched"} 2.0' in before  # member.created, points.earned
    assert 'tally_outbox_backlog{state="undispatched"} 0.0' in after
    assert 'tally_outbox_deliveries_failed_total{sink="webhook"} 1.0' in after
