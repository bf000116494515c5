"""The integrators' API (`/api/v1/`): thin views that validate, call one service or selector, answer."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace

from django.http import Http404, HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config import batching
from config.errors import REQUEST_ID_HELP, error_body
from config.parsers import json_object_plain
from loyalty import notify, selectors
from loyalty.authentication import ApiKeyAuthentication, ApiKeyRateThrottle, HasBrandApiKey, recent_api_key
from loyalty.models import Brand, EarnRule, Event, Membership
from loyalty.periods import MONTH_PATTERN, month_parse
from loyalty.selectors import brand_event_types
from loyalty.serializers import (
    NOT_BLANK,
    AdjustmentInputSerializer,
    CleanEvent,
    EventInput,
    EventInputSerializer,
    MemberRefSerializer,
    adjustment_out,
    event_out,
    member_detail_out,
    member_out,
    simulation_out,
    statement_entry_out,
)
from loyalty.services.dry_run import event_simulate
from loyalty.services.earning import adjustment_create
from loyalty.services.idempotency import idempotent_call, request_fingerprint
from loyalty.services.ingest import events_accept
from loyalty.services.network import network_statement

WAIT_SECONDS = 2.0
IDEMPOTENCY_KEY_MAX = 255

ERROR_SHAPE = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(),
                "request_id": serializers.CharField(help_text=REQUEST_ID_HELP),
            },
        )
    },
)


ERROR_TEXT = {
    400: "invalid_input / malformed_json: field errors in `fields`",
    401: "not_authenticated: missing, unknown or revoked API key",
    404: "not_found (also another brand's object)",
    409: "idempotency_conflict, in_progress or duplicate_order",
    413: "payload_too_large: the body is over the endpoint's limit (`limit`, in bytes: 1 MB, the batch endpoint 8 MB)",
    415: "unsupported_media_type: send the body as `Content-Type: application/json`",
    422: "a business rule said no (unknown_order, refund_exceeds_purchase, insufficient_points)",
    429: "throttled: over the API key's rate; try again after `Retry-After` seconds",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The documented error answers of an operation, all in the error shape. 413 is always among them:
    config.middleware.ApiBodyLimitMiddleware answers it on every /api/ path, before any view."""
    return {code: OpenApiResponse(ERROR_SHAPE, description=ERROR_TEXT[code]) for code in sorted({*codes, 413})}


FLAG_TRUE = frozenset({"1", "true", "yes"})
FLAG_FALSE = frozenset({"0", "false", "no"})
FLAG_ERROR = "Must be true or false (also 1 or 0, yes or no)."


def flag_value(value: str | None) -> bool | None:
    """A boolean query parameter as sent: absent is False; true/1/yes and false/0/no in any case; None
    for anything else, which the schema does not allow either (a 400, not silently false)."""
    if value is None:
        return False
    value = value.lower()
    return True if value in FLAG_TRUE else False if value in FLAG_FALSE else None


def query_flag(request: Request, name: str) -> bool:
    """flag_value of a query parameter, or a 400 naming it."""
    value = flag_value(request.query_params.get(name))
    if value is None:
        raise serializers.ValidationError({name: [FLAG_ERROR]})
    return value


def idempotency_key_parameter(*, required: bool, description: str = "") -> OpenApiParameter:
    """The Idempotency-Key header, as BrandApiView.idempotency_key reads it: trimmed, and a blank one is
    no key at all (a required one must then have a character that is not blank)."""
    schema = {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX}
    if required:
        schema.update(minLength=1, pattern=NOT_BLANK)
    return OpenApiParameter(
        "Idempotency-Key",
        schema,
        OpenApiParameter.HEADER,
        required=required,
        description=(
            f"{description} The same key on every retry; at most {IDEMPOTENCY_KEY_MAX} characters, "
            f"not starting with `{Event.INTERNAL_KEY_PREFIX}` (reserved)."
            + ("" if required else " A blank key is no key.")
        ).strip(),
    )


class BrandApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasBrandApiKey]
    throttle_classes = [ApiKeyRateThrottle]

    @property
    def brand(self) -> Brand:
        return self.request.auth.brand

    def idempotency_key(self, request: Request) -> str | None:
        key = request.headers.get("Idempotency-Key", "").strip() or None
        if key and len(key) > IDEMPOTENCY_KEY_MAX:
            raise serializers.ValidationError({"Idempotency-Key": [f"At most {IDEMPOTENCY_KEY_MAX} characters."]})
        if key and key.startswith(Event.INTERNAL_KEY_PREFIX):
            raise serializers.ValidationError(
                {"Idempotency-Key": [f"Keys starting with {Event.INTERNAL_KEY_PREFIX!r} are reserved."]}
            )
        return key

    def membership(self, membership_id: int) -> Membership:
        found = selectors.membership_list_for_brand(brand=self.brand).filter(pk=membership_id).first()
        if found is None:
            raise Http404("No such member.")
        return found

    def answer(self, request: Request, key: str | None, handler) -> Response:
        if key is None:
            status, body = handler()
            return Response(body, status=status)
        fingerprint = request_fingerprint(method=request.method, path=request.path, body=request.data)
        status, body, replayed = idempotent_call(brand=self.brand, key=key, fingerprint=fingerprint, handler=handler)
        response = Response(body, status=status)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


EVENT_EXAMPLE = {
    "id": 41,
    "type": "purchase",
    "status": "awarded",
    "points": 6,
    "reason": None,
    "member": {"id": 7, "email": "fan@example.com", "external_id": "C-1001"},
    "order_id": "T3-000123",
    "amount": "5.50",
    "currency": "USD",
    "occurred_at": "2026-11-22T09:30:00+00:00",
    "created_at": "2026-11-22T09:30:01+00:00",
    "processed_at": "2026-11-22T09:30:01+00:00",
    "balance": 512,
    "tier": {"name": "Gold", "multiplier": "1.20"},
}


BATCH_MAX_EVENTS = 1000


def _events_clean(brand: Brand, items: list) -> list[tuple[CleanEvent | None, dict | None]]:
    """Validate events as sent; a custom type the cached list does not know is looked up afresh first."""
    known = brand_event_types(brand.pk)
    # Only strings can be types (anything else is refused by the validator): a `type` that is a JSON object
    # or list must not reach the set, where it is unhashable.
    kinds = {item["type"] for item in items if isinstance(item, dict) and isinstance(item.get("type"), str)}
    if any(kind not in known for kind in kinds - {EarnRule.PURCHASE, Event.REFUND}):
        known = brand_event_types(brand.pk, fresh=True)
    validator = EventInput(known_types=known)
    return [validator.clean(item) for item in items]


def _event_reload(event_id: int) -> Event:
    return Event.objects.select_related("membership__member", "membership__tier").get(pk=event_id)


EVENT_REQUEST_EXAMPLES = [
    OpenApiExample(
        "purchase",
        request_only=True,
        value={
            "type": "purchase",
            "member": {"email": "fan@example.com"},
            "order_id": "T3-000123",
            "amount": "5.50",
            "currency": "USD",
            "location_id": "store-12",
        },
    ),
    OpenApiExample(
        "custom event",
        request_only=True,
        value={"type": "check_in", "member": {"external_id": "C-1001"}},
    ),
    OpenApiExample(
        "refund",
        request_only=True,
        value={
            "type": "refund",
            "member": {"email": "fan@example.com"},
            "order_id": "T3-000123",
            "amount": "2.75",
        },
    ),
]


class SingleEventView(BrandApiView):
    """An endpoint that takes one event, as POST /api/v1/events does."""

    def event_clean(self, request: Request, *, errors: dict | None = None) -> CleanEvent:
        """The request's event, its key the Idempotency-Key header (a body's own `idempotency_key` must be
        valid too, as the schema says, but gives way to the header); or a 400 with every field error, the
        request's own `errors` among them."""
        data = request.data
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send one event as a JSON object."]})
        key = self.idempotency_key(request)
        own_key = "idempotency_key" in data
        if key and not own_key:
            data = {**data, "idempotency_key": key}
        [(clean, found)] = _events_clean(self.brand, [data])
        if found or errors:
            found = found or {}
            if "idempotency_key" in found and not own_key:
                found["Idempotency-Key"] = found.pop("idempotency_key")  # the header is this endpoint's key
            raise serializers.ValidationError({**found, **(errors or {})})
        return dataclasses.replace(clean, idempotency_key=key) if key else clean


class EventCollection(SingleEventView):
    @extend_schema(
        operation_id="events_create",
        summary="Send a purchase, refund or custom event",
        description=(
            "Stores the event and answers at once: 202 with `status: pending`; a worker then resolves the member and "
            "applies the rules. With `?wait=true` the answer waits up to 2 s for the outcome: 201 with it, or 202 if "
            "it took longer. A pending event shows the member as sent (`member.id` is null until processed). "
            "`Idempotency-Key` header (for a purchase, the `order_id` is the key when no header is sent): the same "
            "key and body replays the event as it is now; a different body is a 409. Keys never expire. Refunds and "
            "custom events have no natural key: they need an `Idempotency-Key` (400 without), so that a retried "
            "request is never counted twice."
        ),
        request=EventInputSerializer,
        parameters=[
            OpenApiParameter("wait", bool, description="wait up to 2 s for the outcome (default false)"),
            idempotency_key_parameter(
                required=False, description="Required for refunds and custom events; a purchase's is its order_id."
            ),
        ],
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="processed"),
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="pending"),
            **error_responses(400, 401, 409, 415, 422, 429),
        },
        examples=[
            *EVENT_REQUEST_EXAMPLES,
            OpenApiExample("outcome", response_only=True, status_codes=["201"], value=EVENT_EXAMPLE),
        ],
    )
    def post(self, request: Request) -> Response:
        wait = flag_value(request.query_params.get("wait"))
        clean = self.event_clean(request, errors={"wait": [FLAG_ERROR]} if wait is None else None)
        body, status, replayed = _event_answer(self.brand, clean, wait=wait)
        response = Response(body, status=status)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @classmethod
    def as_view(cls, **initkwargs):
        """DRF's view, behind events_plain (which answers what a till usually sends without DRF's machinery)."""
        view = super().as_view(**initkwargs)

        def events(request: HttpRequest) -> HttpResponse:
            answer = events_plain(request)
            return answer if answer is not None else view(request)

        events.cls = view.cls  # what drf-spectacular documents
        events.initkwargs = view.initkwargs
        events.csrf_exempt = True  # as DRF's views (API keys, no cookies)
        return events


def _event_answer(brand: Brand, clean: CleanEvent, *, wait: bool) -> tuple[dict, int, bool]:
    """Accept one event (sharing the INSERT with the brand's concurrent requests in this process) and,
    when asked, wait for its outcome. Returns the body, the HTTP status and whether it was a replay."""
    answer = batching.submit(
        group=("events", brand.pk), item=clean, key=None, run=lambda items: events_accept(brand=brand, items=items)
    )
    body, status = answer.body, answer.http_status
    if answer.pending and wait:
        event_id = answer.event_id
        notify.event_wait(
            event_id,
            seconds=WAIT_SECONDS,
            is_done=lambda: Event.objects.filter(pk=event_id).exclude(status=Event.Status.PENDING).exists(),
        )
        event = _event_reload(event_id)
        body, status = event_out(event), (202 if event.status == Event.Status.PENDING else 201)
    return body, status, answer.replayed


SIMULATION = inline_serializer(
    "EventSimulation",
    {
        "status": serializers.ChoiceField(choices=["awarded", "rejected"]),
        "reason": serializers.CharField(allow_blank=True, help_text="Why it would be rejected; empty when awarded."),
        "points": serializers.IntegerField(help_text="What the wallet would get (a refund's is negative)."),
        "network_points": serializers.IntegerField(help_text="What the person's network wallet would get."),
        "multiplier": serializers.CharField(
            allow_null=True, help_text="The tier rate it earns at; null unless awarded."
        ),
        "tier_before": serializers.CharField(allow_null=True),
        "tier_after": serializers.CharField(allow_null=True, help_text="The tier the member would have after it."),
        "balance_after": serializers.IntegerField(),
        "pending_until": serializers.DateField(
            allow_null=True, help_text="A purchase in a return window: the day its points would become spendable."
        ),
        "member_exists": serializers.BooleanField(
            help_text="Whether the brand has the member already (false: processing would make them a member)."
        ),
        "caps_left": inline_serializer(
            "EventSimulationCapsLeft",
            {period: serializers.IntegerField(required=False, min_value=0) for period in ("day", "week", "month")},
            help_text="Awards of this type the rule's caps would leave in the brand day, ISO week and month of "
            "`occurred_at`, after this event: only the periods it caps ({} when none).",
        ),
    },
)


class EventSimulate(SingleEventView):
    @extend_schema(
        operation_id="events_simulate",
        summary="What an event would do, without sending it (a dry run)",
        description=(
            "Takes the body of `POST /api/v1/events`, validated the same way (the same 400s; refunds and custom "
            "events need an `Idempotency-Key` there, so they do here), and answers what processing it would do "
            "now: awarded or rejected and why, points, tier before and after, balance, caps left. Nothing is "
            "written: no event, member, points or idempotency record. A member the brand does not have yet is "
            "simulated as a new one (the entry tier, nothing earned, `member_exists: false`). A refund is checked "
            "against its purchase as sending it would be (422), and an event sent before is a 409 (its key or "
            "order id: `already_received`, or the conflict sending it would answer). Events accepted but not yet "
            "processed are not counted (neither toward caps, tiers and balances, nor as a refund's purchase: "
            "a 409 `purchase_pending`)."
        ),
        request=EventInputSerializer,
        parameters=[
            idempotency_key_parameter(
                required=False, description="As for `POST /api/v1/events`: required for refunds and custom events."
            )
        ],
        responses={
            200: OpenApiResponse(SIMULATION, description="what processing the event would do now"),
            **error_responses(400, 401, 415, 422, 429),
            409: OpenApiResponse(
                ERROR_SHAPE,
                description="already_received (sent before: sending it again would process nothing), "
                "idempotency_conflict or duplicate_order (as sending it), purchase_pending (a refund's purchase "
                "is not processed yet)",
            ),
        },
        examples=[
            *EVENT_REQUEST_EXAMPLES,
            OpenApiExample(
                "a Gold member's purchase",
                response_only=True,
                status_codes=["200"],
                value={
                    "status": "awarded",
                    "reason": "",
                    "points": 6,
                    "network_points": 0,
                    "multiplier": "1.20",
                    "tier_before": "Gold",
                    "tier_after": "Gold",
                    "balance_after": 518,
                    "pending_until": None,
                    "member_exists": True,
                    "caps_left": {},
                },
            ),
            OpenApiExample(
                "over a cap",
                response_only=True,
                status_codes=["200"],
                value={
                    "status": "rejected",
                    "reason": "cap_reached",
                    "points": 0,
                    "network_points": 0,
                    "multiplier": None,
                    "tier_before": "Gold",
                    "tier_after": "Gold",
                    "balance_after": 512,
                    "pending_until": None,
                    "member_exists": True,
                    "caps_left": {"day": 0},
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        return Response(simulation_out(event_simulate(brand=self.brand, item=self.event_clean(request))))


# --- POST /api/v1/events as a till usually sends it, without DRF's request and response machinery ----------

_RENDERER = JSONRenderer()
_PLAIN_MAX_BYTES = 64 * 1024  # an event is a few hundred bytes (metadata at most 16 KB): bigger is DRF's
_PLAIN_HEADERS = {"Allow": "POST, OPTIONS"}  # what DRF's view answers with


def events_plain(request: HttpRequest) -> HttpResponse | None:
    """Answer a valid event from a known key (checked by this process in the last few seconds) without
    DRF's request, negotiation, throttling framework and response objects: what EventCollection would
    answer, byte for byte, for a good part less (events come by the thousand a second).

    None for anything else (an unknown or unchecked key, invalid JSON or fields, a throttled key, a body
    that is too big...), before anything was done: DRF's view then answers it as it always did.
    """
    data = json_object_plain(request, max_bytes=_PLAIN_MAX_BYTES)
    wait = flag_value(request.GET.get("wait"))
    if data is None or wait is None:
        return None
    keyword, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    api_key = recent_api_key(key.strip()) if keyword == ApiKeyAuthentication.keyword else None
    if api_key is None:
        return None
    idempotency_key = request.headers.get("Idempotency-Key", "").strip() or None
    if idempotency_key is not None:
        too_long = len(idempotency_key) > IDEMPOTENCY_KEY_MAX
        if too_long or idempotency_key.startswith(Event.INTERNAL_KEY_PREFIX) or "idempotency_key" in data:
            return None  # DRF's view refuses the key (or judges the body's own key as well)
        data = {**data, "idempotency_key": idempotency_key}
    [(clean, errors)] = _events_clean(api_key.brand, [data])
    if errors or not ApiKeyRateThrottle().allow_request(SimpleNamespace(auth=api_key), None):
        return None
    body, status, replayed = _event_answer(api_key.brand, clean, wait=wait)
    response = HttpResponse(_RENDERER.render(body), status=status, content_type="application/json")
    for name, value in _PLAIN_HEADERS.items():
        response[name] = value
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


BATCH_ITEM_FIELDS = {
    "http_status": serializers.IntegerField(help_text="The status the single endpoint would have answered."),
    "body": serializers.DictField(help_text="The body the single endpoint would have answered: the event, or error."),
}


class EventBatch(BrandApiView):
    @extend_schema(
        operation_id="events_batch_create",
        summary="Send up to 1,000 events at once",
        description=(
            "For tills and shops that upload in bulk. `events` is a list of up to 1,000 events, each shaped as for "
            "`POST /api/v1/events`, optionally with its own `idempotency_key`. The answer has one result per event, "
            "in order: the status and body the single endpoint would have given (202 and the pending event, a replay, "
            "or an error in the error shape). One bad event never fails the others. Idempotency: each purchase by its "
            "`order_id` (or its `idempotency_key`), each other event by its `idempotency_key`; with an "
            "`Idempotency-Key` header, the whole request replays its first answer, and events without a key of their "
            "own are keyed by the header and their position."
        ),
        request=inline_serializer(
            "EventBatchRequest",
            {
                # Any JSON value: each event is validated on its own and a bad one is answered in its result
                # (a 400 there), never by failing the request, so the request's schema cannot refuse it.
                "events": serializers.ListField(
                    child=serializers.JSONField(),
                    min_length=1,
                    max_length=BATCH_MAX_EVENTS,
                    help_text="Events, each shaped as the body of `POST /api/v1/events` (EventInput).",
                )
            },
        ),
        parameters=[idempotency_key_parameter(required=False)],
        responses={
            200: inline_serializer(
                "EventBatchResponse",
                {
                    "results": inline_serializer("EventBatchItem", BATCH_ITEM_FIELDS, many=True),
                    "accepted": serializers.IntegerField(help_text="new events, now pending"),
                    "replayed": serializers.IntegerField(help_text="events sent before with the same key and body"),
                    "refused": serializers.IntegerField(help_text="events answered with an error"),
                },
            ),
            **error_responses(400, 401, 409, 415, 429),
        },
        examples=[
            OpenApiExample(
                "two purchases",
                request_only=True,
                value={
                    "events": [
                        {
                            "type": "purchase",
                            "member": {"email": "fan@example.com"},
                            "order_id": "T3-000124",
                            "amount": "5.50",
                            "currency": "USD",
                        },
                        {"type": "check_in", "member": {"external_id": "C-1001"}, "idempotency_key": "ci-1001-0923"},
                    ]
                },
            ),
            OpenApiExample(
                "results",
                response_only=True,
                status_codes=["200"],
                value={
                    "results": [
                        {"http_status": 202, "body": {**EVENT_EXAMPLE, "status": "pending", "points": 0}},
                        {
                            "http_status": 400,
                            "body": {
                                "error": {
                                    "code": "invalid_input",
                                    "message": "The event has invalid fields.",
                                    "fields": {"type": ["Unknown event type 'check_in'."]},
                                }
                            },
                        },
                    ],
                    "accepted": 1,
                    "replayed": 0,
                    "refused": 1,
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = request.data  # a body over 8 MB was refused before (config.middleware.ApiBodyLimitMiddleware)
        events = data.get("events") if isinstance(data, dict) else None
        if not isinstance(events, list):
            raise serializers.ValidationError({"events": ['Send {"events": [...]}: a list of events.']})
        if not 1 <= len(events) <= BATCH_MAX_EVENTS:
            raise serializers.ValidationError({"events": [f"Send 1 to {BATCH_MAX_EVENTS} events at once."]})
        key = self.idempotency_key(request)

        def handler() -> tuple[int, dict]:
            items = events
            if key:
                # Events without a key of their own are keyed by the request's and their place in it, so a
                # retry whose first attempt died half-way counts none twice. Purchases have their order id.
                items = [
                    {**item, "idempotency_key": f"{key}:{index}"}
                    if isinstance(item, dict)
                    and "idempotency_key" not in item
                    and item.get("type") != EarnRule.PURCHASE
                    else item
                    for index, item in enumerate(events)
                ]
            checked = _events_clean(self.brand, items)
            valid = [clean for clean, _ in checked if clean is not None]
            accepted = iter(events_accept(brand=self.brand, items=valid))
            results = []
            for clean, errors in checked:
                if clean is None:
                    results.append(
                        {
                            "http_status": 400,
                            "body": error_body("invalid_input", "The event has invalid fields.", errors),
                        }
                    )
                else:
                    answer = next(accepted)
                    results.append(
                        {"http_status": answer.http_status, "body": answer.body, "replayed": answer.replayed}
                    )
            summary = {
                "accepted": sum(1 for r in results if r["http_status"] == 202 and not r.get("replayed")),
                "replayed": sum(1 for r in results if r.pop("replayed", False)),
                "refused": sum(1 for r in results if r["http_status"] >= 400),
            }
            return 200, {"results": results, **summary}

        return self.answer(request, key, handler)


class EventDetail(BrandApiView):
    @extend_schema(
        operation_id="events_retrieve",
        summary="An event and its outcome",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the event"),
            **error_responses(401, 404, 429),
        },
        examples=[OpenApiExample("awarded", response_only=True, value=EVENT_EXAMPLE)],
    )
    def get(self, request: Request, event_id: int) -> Response:
        event = (
            Event.objects.filter(brand=self.brand, pk=event_id)
            .select_related("membership__member", "membership__tier")
            .first()
        )
        if event is None:
            raise Http404("No such event.")
        return Response(event_out(event))


MEMBER_EXAMPLE = {
    "id": 7,
    "email": "fan@example.com",
    "external_id": "C-1001",
    "status": "active",
    "joined_at": "2026-01-03T10:00:00+00:00",
    "balance": 512,
    "pending": 40,
    "expiring": [{"points": 120, "on": "2026-08-01"}, {"points": 392, "on": "2026-10-01"}],
    "tier": {"name": "Gold", "multiplier": "1.20"},
    "tier_since": "2026-03-14T18:02:11+00:00",
    "tier_valid_until": None,
    "qualifying_points": 612,
    "next_tier": {"name": "Reserve", "points_needed": 1888},
    "lifetime": {"earned": 700, "redeemed": 188, "expired": 0},
}


class MemberCollection(BrandApiView):
    @extend_schema(
        operation_id="members_list",
        summary="Find members by email or external id",
        description="Give `email`, `external_id` or both (a 400 without either).",
        parameters=[
            OpenApiParameter("email", {"type": "string", "format": "email", "maxLength": 254}),
            OpenApiParameter("external_id", {"type": "string", "minLength": 1, "maxLength": 120, "pattern": NOT_BLANK}),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`results`: a list, empty when unknown"),
            **error_responses(400, 401, 429),
        },
        examples=[OpenApiExample("found", response_only=True, value={"results": [MEMBER_EXAMPLE]})],
    )
    def get(self, request: Request) -> Response:
        query = MemberRefSerializer(
            data={k: v for k, v in request.query_params.items() if k in ("email", "external_id")}
        )
        if not query.is_valid():
            fields = (
                query.errors
                if "non_field_errors" not in query.errors
                else {"email": ["Give email or external_id to look a member up."]}
            )
            raise serializers.ValidationError(fields)
        email = query.validated_data.get("email", "")
        external_id = query.validated_data.get("external_id", "")
        memberships = selectors.membership_list_for_brand(brand=self.brand, email=email, external_id=external_id)
        return Response({"results": [member_out(m) for m in memberships[:50]]})


class MemberDetail(BrandApiView):
    @extend_schema(
        operation_id="members_retrieve",
        summary="A member: balance, pending and expiring points, tier, progress, tier changes, lifetime totals",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the member"),
            **error_responses(401, 404, 429),
        },
        examples=[
            OpenApiExample(
                "member",
                response_only=True,
                value={
                    **MEMBER_EXAMPLE,
                    "tier_changes": [
                        {
                            "from": "Green",
                            "to": "Gold",
                            "reason": "earned",
                            "qualifying_points": 512,
                            "at": "2026-03-14T18:02:11+00:00",
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request: Request, member_id: int) -> Response:
        return Response(member_detail_out(self.membership(member_id)))


class MemberTransactions(BrandApiView):
    @extend_schema(
        operation_id="members_transactions",
        summary="A member's signed points history, newest first",
        parameters=[
            OpenApiParameter("cursor", str),
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": 200}, description="1 to 200, default 50"
            ),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`results` and `next_cursor`"),
            **error_responses(400, 401, 404, 429),
        },
        examples=[
            OpenApiExample(
                "history",
                response_only=True,
                value={
                    "results": [
                        {
                            "id": 90,
                            "points": 6,
                            "kind": "earn",
                            "reason": "purchase T3-000123",
                            "reference": "T3-000123",
                            "created_at": "2026-11-22T09:30:01+00:00",
                        }
                    ],
                    "next_cursor": None,
                },
            )
        ],
    )
    def get(self, request: Request, member_id: int) -> Response:
        membership = self.membership(member_id)
        limit = serializers.IntegerField(min_value=1, max_value=200)
        try:
            limit = limit.run_validation(request.query_params.get("limit", 50))
        except serializers.ValidationError as error:
            raise serializers.ValidationError({"limit": error.detail}) from None
        page = selectors.membership_statement(
            membership=membership, cursor=request.query_params.get("cursor") or None, limit=limit
        )
        if page is None:
            return Response({"results": [], "next_cursor": None})
        return Response({"results": [statement_entry_out(e) for e in page.entries], "next_cursor": page.next_cursor})


class AdjustmentCollection(BrandApiView):
    @extend_schema(
        operation_id="adjustments_create",
        summary="Add or remove points by hand, with a reason",
        request=AdjustmentInputSerializer,
        parameters=[idempotency_key_parameter(required=True)],
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="the adjustment and the balance after it"),
            **error_responses(400, 401, 404, 409, 415, 422, 429),
        },
        examples=[
            OpenApiExample(
                "goodwill",
                request_only=True,
                value={"member": {"email": "fan@example.com"}, "points": 25, "reason": "Spilled drink"},
            ),
            OpenApiExample(
                "done",
                response_only=True,
                status_codes=["201"],
                value={
                    "id": 3,
                    "member": {"id": 7},
                    "points": 25,
                    "reason": "Spilled drink",
                    "created_by": "API key Till 1",
                    "created_at": "2026-11-22T09:35:00+00:00",
                    "balance": 537,
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = AdjustmentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ref = data["member"]
        membership = selectors.membership_list_for_brand(
            brand=self.brand, email=ref.get("email"), external_id=ref.get("external_id")
        ).first()
        if membership is None:
            raise Http404("No such member.")
        key = self.idempotency_key(request)
        if key is None:
            # The key is the adjustment's ledger posting key too, so a retry is fenced for as long as the
            # adjustment exists, not only while the 24-hour replay record lasts.
            raise serializers.ValidationError(
                {"Idempotency-Key": ["Required: send one (the same on every retry), so a retry adjusts once."]}
            )

        def handler() -> tuple[int, dict]:
            adjustment = adjustment_create(
                membership=membership,
                points=data["points"],
                reason=data["reason"],
                idempotency_key=key,
                api_key=request.auth,
            )
            return 201, adjustment_out(adjustment)

        return self.answer(request, key, handler)


def month_param(value: str | None) -> dt.date:
    """`YYYY-MM` as the first day of that month; a 400 in the error shape otherwise."""
    month = month_parse(value or "")
    if month is None:
        raise serializers.ValidationError({"month": ["A month as YYYY-MM, for example 2026-11."]})
    return month


SETTLEMENT_EXAMPLE = {
    "month": "2026-11",
    "unit": "LTZ",
    "issued": 1000,
    "redeemed": 0,
    "net_points": -500,
    "net_amount": "-5.00",
    "currency": "USD",
    "counterparties": [
        {"brand": "artist", "issued_here_spent_there": 500, "issued_there_spent_here": 0, "amount": "-5.00"}
    ],
    "closed": False,
}


class NetworkSettlementView(BrandApiView):
    @extend_schema(
        operation_id="network_settlement_retrieve",
        summary="The key's brand's network settlement statement of a month",
        description=(
            "Points the brand issued, points redeemed at it, and per other brand of the network what each "
            "funded of the other's perks; `amount` and `net_amount` are what the network owes the brand "
            "(negative: what it owes the network), at the network's value of a point. A closed month "
            "(`manage.py network_settle`) never changes: later refunds count in the month they happen."
        ),
        parameters=[
            OpenApiParameter(
                "month", {"type": "string", "pattern": MONTH_PATTERN}, required=True, description="YYYY-MM"
            )
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the statement"),
            **error_responses(400, 401, 404, 429),
        },
        examples=[OpenApiExample("statement", response_only=True, value=SETTLEMENT_EXAMPLE)],
    )
    def get(self, request: Request) -> Response:
        month = month_param(request.query_params.get("month"))
        if self.brand.network_id is None:
            raise Http404("This brand is in no open network.")
        return Response(network_statement(brand=self.brand, month=month))
