"""What leaves Tally: the outbox (written in the same database transaction as what it tells), the sinks
it is delivered to (a brand's analytics project, its webhook endpoints), and each delivery's state."""

from __future__ import annotations

import secrets
import uuid

from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from loyalty.models import Brand

# Webhook types (Stripe-style names) and the analytics event each is sent as (None: not sent there).
MESSAGE_TYPES = {
    "points.earned": "points_earned",
    "points.redeemed": "points_redeemed",
    "redemption.cancelled": "redemption_cancelled",
    "points.refunded": "points_refunded",
    "points.adjusted": "points_adjusted",
    "points.expired": "points_expired",
    "points.expiring_soon": None,
    "tier.changed": "tier_changed",
    "member.created": "member_created",
}


def webhook_secret_generate() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class OutboxMessage(models.Model):
    """Something that happened, to be told to every sink subscribed to its type: written in the database
    transaction of the change itself (integrations.receivers, and triggers on memberships and tier
    changes), so nothing is told of a change that rolled back and nothing committed goes untold."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="The id receivers see.")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(max_length=40)
    membership_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    # Set once the message's deliveries are made (one per sink): the fan-out claims the others.
    dispatched = models.BooleanField(default=False, db_default=False)
    # Messages Tally makes on a schedule (points expiring soon) are made once each: this key says which.
    dedupe_key = models.CharField(max_length=120, null=True, blank=True, unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], name="outbox_undispatched_idx", condition=models.Q(dispatched=False)),
            # Pruning goes by age: messages come in time order, so a BRIN index (a few pages, next to nothing
            # to keep up on insert) finds the old ones.
            BrinIndex(fields=["created_at"], name="outbox_created_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.uid}"


class BrandIntegration(models.Model):
    """A brand's analytics project and notification settings."""

    brand = models.OneToOneField(Brand, on_delete=models.CASCADE, related_name="integration")
    analytics_token = models.CharField(
        max_length=100, blank=True, help_text="The analytics (Mixpanel) project token, sent with each event."
    )
    analytics_secret = models.CharField(
        max_length=100,
        blank=True,
        help_text="The project's API secret (the HTTP basic-auth user of /import). Blank: no analytics.",
    )
    expiring_soon_days = models.PositiveSmallIntegerField(
        default=14, help_text="Send points.expiring_soon this many days before points expire (0: never)."
    )

    brand_path = "brand"

    def __str__(self) -> str:
        return f"Integrations of {self.brand}"


class WebhookEndpoint(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="The message types it receives; empty: all of them.")
    secret = models.CharField(max_length=80, default=webhook_secret_generate, editable=False)
    enabled = models.BooleanField(default=True)
    # The first failed delivery since the last one that succeeded: failing for WEBHOOK_DISABLE_AFTER disables it.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "brand"

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def receives(self, message_type: str) -> bool:
        return not self.events or message_type in self.events


class Delivery(models.Model):
    """One message to one sink: tried until it is delivered or too old (at least once; the message's uid
    lets the receiver drop a second copy)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    ANALYTICS = "analytics"

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", db_index=False)
    sink = models.CharField(max_length=40, help_text='"analytics", or "webhook:<endpoint id>".')
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The last HTTP answer.")
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    brand_path = "brand"

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "sink"], name="delivery_message_sink_unique")]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.sink} {self.status}"
