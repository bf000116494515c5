"""Input and output shapes of the loyalty API. Input serializers only validate; services write."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from loyalty.currencies import ISO_4217
from loyalty.models import EarnRule, Event, Membership
from loyalty.selectors import membership_balance, next_tier, qualifying_points

METADATA_MAX_BYTES = 16 * 1024
FUTURE_SKEW = dt.timedelta(minutes=5)


class MemberRefSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, max_length=254)
    external_id = serializers.CharField(required=False, max_length=120, allow_blank=False)

    def validate(self, attrs):
        if not attrs.get("email") and not attrs.get("external_id"):
            raise serializers.ValidationError("Give the member's email or external_id.")
        return attrs


def validate_metadata(value):
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    encoded = json.dumps(value, separators=(",", ":"))
    if "\\u0000" in encoded:  # PostgreSQL's jsonb cannot store a NUL character
        raise serializers.ValidationError("Must not contain NUL characters.")
    if len(encoded.encode()) > METADATA_MAX_BYTES:
        raise serializers.ValidationError(f"Must be at most {METADATA_MAX_BYTES // 1024} KB of JSON.")
    return value


class EventInputSerializer(serializers.Serializer):
    type = serializers.SlugField(max_length=40)
    member = MemberRefSerializer()
    order_id = serializers.CharField(required=False, max_length=120, allow_blank=False)
    amount = serializers.DecimalField(
        required=False, max_digits=14, decimal_places=2, min_value=Decimal("0.01"), coerce_to_string=True
    )
    currency = serializers.CharField(required=False, min_length=3, max_length=3)
    occurred_at = serializers.DateTimeField(required=False)
    location_id = serializers.CharField(required=False, max_length=120, allow_blank=True)
    metadata = serializers.JSONField(required=False, validators=[validate_metadata])

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        if value not in ISO_4217:
            raise serializers.ValidationError(f"{value!r} is not an ISO 4217 currency code.")
        return value

    def validate_occurred_at(self, value: dt.datetime) -> dt.datetime:
        now = timezone.now()
        if value > now + FUTURE_SKEW:
            raise serializers.ValidationError("Must not be in the future.")
        if value < now - dt.timedelta(days=settings.EVENT_MAX_AGE_DAYS):
            raise serializers.ValidationError(f"Must be within the last {settings.EVENT_MAX_AGE_DAYS} days.")
        return value

    def validate(self, attrs):
        brand = self.context["brand"]
        kind = attrs["type"]
        errors: dict[str, list[str]] = {}
        if kind in (EarnRule.PURCHASE, Event.REFUND):
            for field in ("order_id", "amount"):
                if field not in attrs:
                    errors[field] = [f"Required for a {kind}."]
            if kind == EarnRule.PURCHASE and "currency" not in attrs:
                errors["currency"] = ["Required for a purchase."]
        elif not EarnRule.objects.filter(brand=brand, event_type=kind).exists():
            known = sorted(
                {
                    "purchase",
                    "refund",
                    *EarnRule.objects.filter(brand=brand).values_list("event_type", flat=True),
                }
            )
            errors["type"] = [f"Unknown event type {kind!r}. This brand knows: {', '.join(known)}."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AdjustmentInputSerializer(serializers.Serializer):
    member = MemberRefSerializer()
    points = serializers.IntegerField(min_value=-10_000_000, max_value=10_000_000)
    reason = serializers.CharField(max_length=500)

    def validate_points(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value


# --- output ----------------------------------------------------------------------------------------


def tier_out(tier) -> dict | None:
    return {"name": tier.name, "multiplier": str(tier.multiplier)} if tier else None


def member_out(membership: Membership) -> dict:
    qualifying = qualifying_points(membership)
    upcoming = next_tier(membership, qualifying)
    return {
        "id": membership.pk,
        "email": membership.member.email,
        "external_id": membership.external_id,
        "status": membership.status,
        "joined_at": membership.joined_at.isoformat(),
        "balance": membership_balance(membership),
        "tier": tier_out(membership.tier),
        "qualifying_points": qualifying,
        "next_tier": {"name": upcoming[0].name, "points_needed": upcoming[1]} if upcoming else None,
        "lifetime": {
            "earned": membership.lifetime_earned,
            "redeemed": membership.lifetime_redeemed,
            "expired": membership.lifetime_expired,
        },
    }


def event_out(event: Event) -> dict:
    membership = event.membership
    body = {
        "id": event.pk,
        "type": event.type,
        "status": event.status,
        "points": event.points,
        "reason": event.reason or None,
        "member": {
            "id": membership.pk,
            "email": membership.member.email,
            "external_id": membership.external_id,
        },
        "order_id": event.order_id or None,
        "amount": str(event.amount) if event.amount is not None else None,
        "currency": event.currency or None,
        "occurred_at": event.occurred_at.isoformat(),
        "created_at": event.created_at.isoformat(),
        "processed_at": event.processed_at.isoformat() if event.processed_at else None,
        "balance": event.balance_after,
        "tier": tier_out(membership.tier) if event.status != Event.Status.PENDING else None,
    }
    if event.type == Event.REFUND:
        body["unrecovered_points"] = event.unrecovered_points
    return body


def adjustment_out(adjustment) -> dict:
    return {
        "id": adjustment.pk,
        "member": {"id": adjustment.membership_id},
        "points": adjustment.points,
        "reason": adjustment.reason,
        "created_by": adjustment.created_by,
        "created_at": adjustment.created_at.isoformat(),
        "balance": membership_balance(adjustment.membership),
    }


def statement_entry_out(entry) -> dict:
    txn = entry.transaction
    kind = txn.kind
    if txn.reverses_id is not None and txn.metadata.get("event_type") == Event.REFUND:
        kind = "refund"
    return {
        "id": entry.pk,
        "points": entry.amount,
        "kind": kind,
        "reason": txn.memo or None,
        "reference": txn.metadata.get("order_id")
        or (f"event:{txn.metadata['event_id']}" if "event_id" in txn.metadata else None),
        "created_at": entry.created_at.isoformat(),
    }
