"""Input and output shapes of the loyalty API. Input serializers only validate; services write."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from rest_framework import serializers

from loyalty.currencies import ISO_4217
from loyalty.models import EarnRule, Event, Membership
from loyalty.selectors import (
    membership_balance,
    membership_expiring,
    membership_pending,
    membership_tier_changes,
    network_balance,
    next_tier,
    qualifying_points,
)

METADATA_MAX_BYTES = 16 * 1024
FUTURE_SKEW = dt.timedelta(minutes=5)
CENT = Decimal("0.01")
EMAIL = EmailValidator()


# A JSON Schema pattern for "not blank once trimmed": a character str.strip() keeps (Python's whitespace,
# which includes \x1c-\x1f and \x85 that a regex's \s does not).
NOT_BLANK = r"[^\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class TextField(serializers.CharField):
    """DRF's CharField, taking only a JSON string. DRF's own also takes a number (5 is "5"), which the
    schema (`type: string`) does not allow."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TextFieldSchema(OpenApiSerializerFieldExtension):
    """A TextField is trimmed: unless it may be blank, the schema says it needs a character that is not
    whitespace (`"   "` is refused as blank, as `""` is)."""

    target_class = TextField

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if self.target.allow_blank or not self.target.trim_whitespace:
            return schema
        return {**schema, "pattern": NOT_BLANK}


class WholeNumberField(serializers.IntegerField):
    """DRF's IntegerField, taking only a JSON integer. DRF's own also takes "5", "5.0" and 5.0, which the
    schema (`type: integer`) does not allow."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class MemberRefSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, max_length=254)
    external_id = TextField(required=False, min_length=1, max_length=120)

    def validate(self, attrs):
        if not attrs.get("email") and not attrs.get("external_id"):
            raise serializers.ValidationError("Give the member's email or external_id.")
        return attrs


class MemberRefSchema(OpenApiSerializerExtension):
    """The schema says what validate() requires: an email, an external_id, or both (`{}` is a 400)."""

    target_class = MemberRefSerializer

    def map_serializer(self, auto_schema, direction):
        schema = super().map_serializer(auto_schema, direction)
        return {**schema, "anyOf": [{"required": ["email"]}, {"required": ["external_id"]}]}


# What EventInput takes as an amount: a string of a number from 0.01 with at most 12 digits before the
# point and 2 after it (leading zeros aside).
AMOUNT_PATTERN = r"^(?:0*[1-9]\d{0,11}(?:\.\d{0,2})?|0*\.(?:0[1-9]|[1-9]\d?))$"


class EventInputSerializer(serializers.Serializer):
    """The shape of an event, for the OpenAPI schema. Events are validated by EventInput below, which
    does the same checks without DRF's per-field machinery: the batch endpoint validates 1,000 at once."""

    type = serializers.SlugField(max_length=40, help_text='"purchase", "refund", or one of the brand\'s custom events.')
    member = MemberRefSerializer()
    order_id = TextField(required=False, min_length=1, max_length=120, help_text="Required for a purchase or refund.")
    amount = serializers.RegexField(
        AMOUNT_PATTERN,
        required=False,
        help_text='A decimal string from "0.01", at most 2 decimal places. Required for a purchase or refund.',
    )
    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$", required=False, help_text="An ISO 4217 code (any case). Required for a purchase."
    )
    occurred_at = serializers.DateTimeField(
        required=False, help_text=f"Within the last {settings.EVENT_MAX_AGE_DAYS} days; default: now."
    )
    location_id = TextField(required=False, max_length=120, allow_blank=True)
    metadata = serializers.DictField(required=False, help_text="A JSON object, at most 16 KB.")
    idempotency_key = TextField(
        required=False,
        min_length=1,
        max_length=255,
        help_text="Batch items: the item's idempotency key (the single endpoint takes the Idempotency-Key header).",
    )


@dataclass(frozen=True, slots=True)
class CleanEvent:
    """An event that passed EventInput: what the accept service stores."""

    type: str
    email: str  # lower-cased, "" when not given
    external_id: str
    order_id: str
    amount: Decimal | None
    currency: str
    occurred_at: dt.datetime | None
    location_id: str
    metadata: dict
    idempotency_key: str | None
    request_hash: str  # SHA-256 of the item as sent (without its idempotency key): tells a retry from a conflict


class EventInput:
    """Validates one event as the API received it (a dict from JSON), fast, with DRF's error shape.

    `clean(data)` returns (CleanEvent, None) or (None, {"field": ["message", ...], ...}). The brand's
    custom event types are known by `known_types` (a set), so that a typo is a 400, not a rejection.
    Strings may hold neither NUL characters nor lone surrogates (PostgreSQL stores neither).
    """

    SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
    FIELDS = frozenset(
        {
            "type",
            "member",
            "order_id",
            "amount",
            "currency",
            "occurred_at",
            "location_id",
            "metadata",
            "idempotency_key",
        }
    )

    def __init__(self, *, known_types: frozenset[str]) -> None:
        self.known_types = known_types
        now = timezone.now()
        self.latest = now + FUTURE_SKEW
        self.earliest = now - dt.timedelta(days=settings.EVENT_MAX_AGE_DAYS)

    def clean(self, data: object) -> tuple[CleanEvent | None, dict | None]:
        if not isinstance(data, dict):
            return None, {"non_field_errors": ["Each event is a JSON object."]}
        errors: dict[str, object] = {}
        kind = self._string(data, "type", errors, max_length=40, required=True)
        if kind and not self.SLUG.match(kind):
            errors["type"] = ["Use only letters, numbers, underscores or hyphens."]
        email, external_id = self._member(data.get("member"), errors)
        order_id = self._string(data, "order_id", errors, max_length=120)
        amount = self._amount(data, errors)
        currency = self._string(data, "currency", errors, max_length=3)
        if currency:
            currency = currency.upper()
            if len(currency) != 3 or currency not in ISO_4217:
                errors["currency"] = [f"{currency!r} is not an ISO 4217 currency code."]
        occurred_at = self._occurred_at(data, errors)
        location_id = self._string(data, "location_id", errors, max_length=120, allow_blank=True)
        metadata = self._metadata(data, errors)
        key = self._string(data, "idempotency_key", errors, max_length=255)
        if key and key.startswith(Event.INTERNAL_KEY_PREFIX):
            errors["idempotency_key"] = [f"Keys starting with {Event.INTERNAL_KEY_PREFIX!r} are reserved."]
        if kind and "type" not in errors:
            if kind in (EarnRule.PURCHASE, Event.REFUND):
                for field, value in (("order_id", order_id), ("amount", amount)):
                    if value is None and field not in errors:
                        errors[field] = [f"Required for a {kind}."]
                if kind == EarnRule.PURCHASE and currency is None and "currency" not in errors:
                    errors["currency"] = ["Required for a purchase."]
            elif kind not in self.known_types:
                known = ", ".join(sorted({EarnRule.PURCHASE, Event.REFUND, *self.known_types}))
                errors["type"] = [f"Unknown event type {kind!r}. This brand knows: {known}."]
            if kind != EarnRule.PURCHASE and key is None and "idempotency_key" not in errors:
                # A purchase is keyed by its order id; anything else has no natural key, and a retried
                # request without one would count twice.
                errors["idempotency_key"] = [
                    f"Required for a {kind} event: send an Idempotency-Key (the same one on every retry), "
                    "so that a retried request is not counted twice."
                ]
        if errors:
            return None, errors
        return (
            CleanEvent(
                type=kind,
                email=email,
                external_id=external_id,
                order_id=order_id or "",
                amount=amount,
                currency=currency or "",
                occurred_at=occurred_at,
                location_id=location_id or "",
                metadata=metadata or {},
                idempotency_key=key,
                request_hash=request_hash({name: value for name, value in data.items() if name != "idempotency_key"}),
            ),
            None,
        )

    @staticmethod
    def _text_problem(value: str) -> str | None:
        if "\x00" in value:
            return "Null characters are not allowed."
        try:
            value.encode()
        except UnicodeEncodeError:
            return "Surrogate characters are not allowed."
        return None

    def _string(
        self,
        data: dict,
        field: str,
        errors: dict,
        *,
        max_length: int,
        required: bool = False,
        allow_blank: bool = False,
    ) -> str | None:
        if field not in data:
            if required:
                errors[field] = ["This field is required."]
            return None
        value = data[field]
        if not isinstance(value, str):  # a number too: the schema says string
            errors[field] = ["Not a valid string." if value is not None else "This field may not be null."]
            return None
        value = value.strip()
        problem = self._text_problem(value)
        if problem:
            errors[field] = [problem]
        elif not value and not allow_blank:
            errors[field] = ["This field may not be blank."]
        elif len(value) > max_length:
            errors[field] = [f"Ensure this field has no more than {max_length} characters."]
        else:
            return value
        return None

    def _member(self, member: object, errors: dict) -> tuple[str, str]:
        if member is None:
            errors["member"] = ["This field is required."]
            return "", ""
        if not isinstance(member, dict):
            errors["member"] = {
                "non_field_errors": ['Give the member as an object: {"email": ...} or {"external_id": ...}.']
            }
            return "", ""
        found: dict[str, list[str]] = {}
        email = self._string(member, "email", found, max_length=254) or ""
        if email and "email" not in found:
            try:
                EMAIL(email)
            except DjangoValidationError:
                found["email"] = ["Enter a valid email address."]
        external_id = self._string(member, "external_id", found, max_length=120) or ""
        if not found and not email and not external_id:
            found["non_field_errors"] = ["Give the member's email or external_id."]
        if found:
            errors["member"] = found
            return "", ""
        return email.lower(), external_id

    def _amount(self, data: dict, errors: dict) -> Decimal | None:
        if "amount" not in data:
            return None
        raw = data["amount"]
        if not isinstance(raw, str):  # a JSON number too: the schema says a decimal string, as every example
            errors["amount"] = ['Give the amount as a decimal string, e.g. "5.50".']
            return None
        try:
            amount = Decimal(raw.strip())
        except InvalidOperation:
            errors["amount"] = ["A valid number is required."]
            return None
        if not amount.is_finite():
            errors["amount"] = ["A valid number is required."]
            return None
        _, digits, exponent = amount.as_tuple()
        decimals = max(0, -exponent)
        whole = max(0, len(digits) + exponent)
        if decimals > 2:
            errors["amount"] = ["Ensure that there are no more than 2 decimal places."]
        elif whole > 12:
            errors["amount"] = ["Ensure that there are no more than 12 digits before the decimal point."]
        elif amount < Decimal("0.01"):
            errors["amount"] = ["Ensure this value is greater than or equal to 0.01."]
        else:
            return amount.quantize(CENT)
        return None

    def _occurred_at(self, data: dict, errors: dict) -> dt.datetime | None:
        if "occurred_at" not in data:
            return None
        raw = data["occurred_at"]
        try:
            value = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            value = None
        if value is None:
            errors["occurred_at"] = ["Datetime has wrong format. Use ISO 8601, e.g. 2026-11-22T09:30:00+00:00."]
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        if value > self.latest:
            errors["occurred_at"] = ["Must not be in the future."]
        elif value < self.earliest:
            errors["occurred_at"] = [f"Must be within the last {settings.EVENT_MAX_AGE_DAYS} days."]
        else:
            return value.astimezone(dt.UTC)  # as stored: the answer shows what a later read shows
        return None

    def _metadata(self, data: dict, errors: dict) -> dict | None:
        if "metadata" not in data:
            return None
        value = data["metadata"]
        if not isinstance(value, dict):
            errors["metadata"] = ["Must be a JSON object."]
            return None
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        problem = self._text_problem(encoded)
        if problem is None and "\\u0000" in encoded:  # an escaped NUL: jsonb cannot store it either
            problem = "Null characters are not allowed."
        if problem:
            errors["metadata"] = [problem]
        elif len(encoded.encode()) > METADATA_MAX_BYTES:
            errors["metadata"] = [f"Must be at most {METADATA_MAX_BYTES // 1024} KB of JSON."]
        else:
            return value
        return None


def request_hash(body: object) -> str:
    """SHA-256 of a request body in canonical JSON (sorted keys): the same request always hashes alike."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class AdjustmentInputSerializer(serializers.Serializer):
    member = MemberRefSerializer()
    points = WholeNumberField(min_value=-10_000_000, max_value=10_000_000)
    reason = TextField(min_length=1, max_length=500)

    def validate_points(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value


class AdjustmentInputSchema(OpenApiSerializerExtension):
    """The schema says what validate_points() requires: points are not zero."""

    target_class = AdjustmentInputSerializer

    def map_serializer(self, auto_schema, direction):
        schema = super().map_serializer(auto_schema, direction)
        points = schema["properties"]["points"]
        return {**schema, "properties": {**schema["properties"], "points": {**points, "not": {"enum": [0]}}}}


# --- output ----------------------------------------------------------------------------------------


def tier_out(tier) -> dict | None:
    return {"name": tier.name, "multiplier": str(tier.multiplier)} if tier else None


def member_out(membership: Membership) -> dict:
    qualifying = qualifying_points(membership)
    upcoming = next_tier(membership, qualifying)
    balance = membership_balance(membership)
    return {
        "id": membership.pk,
        "email": membership.member.email,
        "external_id": membership.external_id,
        "status": membership.status,
        "joined_at": membership.joined_at.isoformat(),
        "balance": balance,
        "pending": membership_pending(membership),
        "expiring": [
            {"points": item["points"], "on": item["on"].isoformat()}
            for item in membership_expiring(membership, balance=balance)
        ],
        "tier": tier_out(membership.tier),
        "tier_since": membership.tier_since.isoformat() if membership.tier_since else None,
        "tier_valid_until": membership.tier_valid_until.isoformat() if membership.tier_valid_until else None,
        "qualifying_points": qualifying,
        "next_tier": {"name": upcoming[0].name, "points_needed": upcoming[1]} if upcoming else None,
        "lifetime": {
            "earned": membership.lifetime_earned,
            "redeemed": membership.lifetime_redeemed,
            "expired": membership.lifetime_expired,
        },
        **({"network": network_balance_out(membership)} if membership.brand.network_id else {}),
    }


def network_balance_out(membership: Membership) -> dict:
    network = membership.brand.network
    return {"unit": network.unit, "balance": network_balance(member_id=membership.member_id, network_id=network.pk)}


def tier_change_out(change) -> dict:
    return {
        "from": change.from_name or None,
        "to": change.to_name or None,
        "reason": change.reason,
        "qualifying_points": change.qualifying_points,
        "at": change.created_at.isoformat(),
    }


def member_detail_out(membership: Membership) -> dict:
    """member_out, with the member's latest tier changes (newest first)."""
    return {
        **member_out(membership),
        "tier_changes": [tier_change_out(change) for change in membership_tier_changes(membership, limit=10)],
    }


def event_out(event: Event) -> dict:
    """An event as the API shows it. A pending event's member is as it was sent (its id comes with
    processing, which resolves or creates the member); `tier` is the member's tier now."""
    membership = event.membership if event.membership_id is not None else None
    if membership is None:
        member = {"id": None, "email": event.member_email or None, "external_id": event.member_external_id or None}
    else:
        member = {"id": membership.pk, "email": membership.member.email, "external_id": membership.external_id}
    body = {
        "id": event.pk,
        "type": event.type,
        "status": event.status,
        "points": event.points,
        "reason": event.reason or None,
        "member": member,
        "order_id": event.order_id or None,
        "amount": str(event.amount) if event.amount is not None else None,
        "currency": event.currency or None,
        "occurred_at": event.occurred_at.isoformat(),
        "created_at": event.created_at.isoformat(),
        "processed_at": event.processed_at.isoformat() if event.processed_at else None,
        "balance": event.balance_after,
        "tier": tier_out(membership.tier) if membership is not None and event.status != Event.Status.PENDING else None,
    }
    if event.type == Event.REFUND:
        body["unrecovered_points"] = event.unrecovered_points
    if event.network_points:
        body["network_points"] = event.network_points
    return body


def simulation_out(simulation) -> dict:
    """An event's dry run (loyalty.services.dry_run.Simulation) as the API shows it."""
    body = dataclasses.asdict(simulation)
    body["multiplier"] = f"{simulation.multiplier:.2f}" if simulation.multiplier is not None else None
    body["pending_until"] = simulation.pending_until.isoformat() if simulation.pending_until else None
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
