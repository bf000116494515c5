"""Moving from Loyalteez: its manual-event call, accepted as it is, answered with what was earned.

`POST /api/v1/compat/loyalteez/manual-event` takes the body a brand integrated with Loyalteez already
sends, with the brand's Tally API key in the `Authorization` header. `brandId` is never trusted alone:
it must be the Loyalteez brand id the key's brand has in its settings. `place_order` is a purchase of
`metadata.order_value` in the currency of the brand's purchase rule, keyed by `metadata.order_id` (a
retry earns nothing more); any other event type is the brand's custom event of that name, keyed by the
`Idempotency-Key` header, else `metadata.event_id` or `metadata.order_id`. The event goes through the
same accept path and processor as every other, and the answer waits (up to 2 s) for its outcome.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.errors import error_body
from loyalty.api import BrandApiView, _event_answer, _events_clean, error_responses
from loyalty.models import EarnRule, Event
from loyalty.serializers import TextField

PLACE_ORDER = "place_order"
# Where an error of the event made from the body points back to, in the body as the client sent it.
_COMPAT_FIELDS = {
    "type": "eventType",
    "member": "userEmail",
    "order_id": "metadata.order_id",
    "amount": "metadata.order_value",
    "currency": "metadata.order_value",
    "location_id": "metadata.location_id",
    "idempotency_key": "Idempotency-Key",
}


class LoyalteezManualEventSerializer(serializers.Serializer):
    brandId = TextField(max_length=120, help_text="The brand's Loyalteez id (its Tally settings hold it).")
    eventType = serializers.SlugField(max_length=40, help_text='"place_order", or one of the brand\'s custom events.')
    userEmail = serializers.EmailField(help_text="The fan.")
    domain = TextField(required=False, allow_blank=True, max_length=255)
    metadata = serializers.DictField(
        required=False, help_text="place_order: order_id and order_value (required), location_id, anything else."
    )


SEED_EXAMPLE = {
    "brandId": "shop-ltz",
    "eventType": "place_order",
    "userEmail": "fan@example.com",
    "domain": "shop.example",
    "metadata": {"order_id": "W-1001", "order_value": 49.99, "location_id": "web"},
}


def _amount(value: object) -> str | None:
    """An order value as sent (a JSON number or a string) as the decimal string Tally's events take."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return format(amount, "f") if amount.is_finite() else None


class LoyalteezManualEvent(BrandApiView):
    @extend_schema(
        operation_id="compat_loyalteez_manual_event",
        summary="Loyalteez's manual-event call, as Loyalteez integrations send it",
        description=__doc__.split("\n\n", 1)[1],
        request=LoyalteezManualEventSerializer,
        responses={
            201: OpenApiResponse(description="processed: `earned` says what, `event` is the Tally event"),
            202: OpenApiResponse(description="accepted, not processed within 2 s (GET the event later)"),
            **error_responses(400, 401, 409, 415, 422, 429),
        },
        examples=[OpenApiExample("the seed's order", request_only=True, value=SEED_EXAMPLE)],
    )
    def post(self, request: Request) -> Response:
        given = LoyalteezManualEventSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        if not self.brand.loyalteez_brand_id or data["brandId"] != self.brand.loyalteez_brand_id:
            raise serializers.ValidationError({"brandId": ["Not the Loyalteez brand id of this API key's brand."]})
        metadata = dict(data.get("metadata") or {})
        event = {
            "member": {"email": data["userEmail"]},
            "metadata": {"source": "loyalteez", "domain": data.get("domain", ""), **metadata},
        }
        if isinstance(metadata.get("location_id"), str):
            event["location_id"] = metadata["location_id"][:120]
        if data["eventType"] == PLACE_ORDER:
            errors = {}
            if not isinstance(metadata.get("order_id"), str | int) or isinstance(metadata.get("order_id"), bool):
                errors["metadata.order_id"] = ["place_order needs the order id."]
            amount = _amount(metadata.get("order_value"))
            if amount is None:
                errors["metadata.order_value"] = ["place_order needs the order value, a number."]
            if errors:
                raise serializers.ValidationError(errors)
            rule = EarnRule.objects.filter(brand=self.brand, event_type=EarnRule.PURCHASE).first()
            event.update(
                type=EarnRule.PURCHASE,
                order_id=str(metadata["order_id"]),
                amount=amount,
                currency=rule.currency if rule else "USD",
            )
        else:
            key = self.idempotency_key(request) or metadata.get("event_id") or metadata.get("order_id")
            if not isinstance(key, str | int) or isinstance(key, bool) or key == "":
                raise serializers.ValidationError(
                    {"Idempotency-Key": ["Send an Idempotency-Key header (or metadata.event_id): a retry earns once."]}
                )
            event.update(type=data["eventType"], idempotency_key=f"loyalteez:{key}")
        [(clean, errors)] = _events_clean(self.brand, [event])
        if errors:
            raise serializers.ValidationError({_COMPAT_FIELDS.get(name, name): value for name, value in errors.items()})
        body, status, replayed = _event_answer(self.brand, clean, wait=True)
        if status == 201 and body.get("status") == Event.Status.REJECTED:
            refused = error_body(
                "event_rejected",
                f"Nothing was earned: {body['reason'].replace('_', ' ')}.",
                reason=body["reason"],
                event=body,
            )
            return Response(refused, status=422)
        if status in (200, 201, 202) and "id" in body:
            unit = self.brand.network.unit if self.brand.network_id else None
            body = {
                "success": True,
                "earned": {
                    "points": body.get("points", 0),
                    "network_points": body.get("network_points", 0),
                    "unit": unit,
                },
                "event": body,
            }
        response = Response(body, status=status)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response
