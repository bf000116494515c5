"""Perks over the API: the catalog, redemptions at the till, cancellation and voucher consumption."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from loyalty.api import BrandApiView, error_responses, idempotency_key_parameter, query_flag
from loyalty.locks import MemberRef
from loyalty.selectors import membership_balance
from loyalty.serializers import MemberRefSerializer, TextField, WholeNumberField
from loyalty.services.idempotency import request_fingerprint
from perks.models import Perk, Redemption
from perks.selectors import network_perk_list_active, perk_list_active, perk_refusal
from perks.services import RedeemNotFoundError, perk_redeem_request, redemption_cancel, voucher_consume


class RedemptionInputSerializer(serializers.Serializer):
    member = MemberRefSerializer()
    perk = WholeNumberField(min_value=1)


def redemption_input(data) -> dict | None:
    """What RedemptionInputSerializer(data=data).validated_data is, for the usual well-formed body, or
    None: then the serializer validates it and words the errors. A serializer deep-copies its fields
    each time it is made; on the redemption path that was a tenth of a request's CPU."""
    if type(data) is not dict or data.keys() != {"member", "perk"}:
        return None
    member, perk = data["member"], data["perk"]
    if type(perk) is not int or perk < 1 or type(member) is not dict or not member.keys() <= _MEMBER_KEYS.keys():
        return None
    ref = {}
    for name, (limit, check) in _MEMBER_KEYS.items():
        if name in member:
            value = member[name]
            if type(value) is not str or not (value := value.strip()) or len(value) > limit or _UNSAFE.search(value):
                return None
            if check is not None:
                try:
                    check(value)
                except ValidationError:
                    return None
            ref[name] = value
    return {"member": ref, "perk": perk} if ref else None


# MemberRefSerializer's fields: (max_length, validator) of each, stripped and not blank; like any DRF
# CharField they refuse NUL characters and lone surrogates.
_MEMBER_KEYS = {"email": (254, validate_email), "external_id": (120, None)}
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


class VoucherInputSerializer(serializers.Serializer):
    code = TextField(min_length=1, max_length=40)


def perk_out(perk: Perk, refusal=None, *, member_given: bool = False) -> dict:
    body = {
        "id": perk.pk,
        "name": perk.name,
        "description": perk.description,
        "category": perk.category,
        "cost": perk.cost,
        "cash_value": str(perk.cash_value) if perk.cash_value is not None else None,
        "stock": perk.stock,
        "minimum_tier": perk.minimum_tier.name if perk.minimum_tier_id else None,
        "fulfillment": perk.fulfillment,
        "image": perk.image.url if perk.image else None,
    }
    if member_given:
        body["redeemable"] = refusal is None
        body["reason"] = refusal.code if refusal else None
    return body


def redemption_out(redemption: Redemption, balance: int | None = None) -> dict:
    body = {
        "id": redemption.pk,
        "code": redemption.code,
        "perk": {"id": redemption.perk_id, "name": redemption.perk.name},
        "member": {"id": redemption.membership_id},
        "cost": redemption.cost,
        "status": redemption.status,
        "created_at": redemption.created_at.isoformat(),
        "fulfilled_at": redemption.fulfilled_at.isoformat() if redemption.fulfilled_at else None,
        "cancelled_at": redemption.cancelled_at.isoformat() if redemption.cancelled_at else None,
    }
    if balance is not None:
        body["balance"] = balance
    if redemption.perk.is_network_perk:
        body["unit"] = redemption.brand.network.unit  # cost and balance are network points
    return body


REDEMPTION_EXAMPLE = {
    "id": 12,
    "code": "K7QX3MWA9PTE",
    "perk": {"id": 3, "name": "$2 off"},
    "member": {"id": 7},
    "cost": 60,
    "status": "issued",
    "created_at": "2026-11-22T09:40:00+00:00",
    "fulfilled_at": None,
    "cancelled_at": None,
    "balance": 452,
}


class PerkCollection(BrandApiView):
    @extend_schema(
        operation_id="perks_list",
        summary="The brand's active perks",
        parameters=[
            OpenApiParameter(
                "member",
                {"type": "integer", "minimum": 1},
                description="a member id: adds `redeemable` and `reason` per perk",
            ),
            OpenApiParameter("redeemable", bool, description="with `member`: only the perks they can redeem now"),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`results`"),
            **error_responses(400, 401, 404, 429),
        },
        examples=[
            OpenApiExample(
                "menu",
                response_only=True,
                value={
                    "results": [
                        {
                            "id": 3,
                            "name": "$2 off",
                            "description": "",
                            "category": "discount",
                            "cost": 60,
                            "cash_value": "2.00",
                            "stock": None,
                            "minimum_tier": None,
                            "fulfillment": "voucher",
                            "image": None,
                            "redeemable": True,
                            "reason": None,
                        }
                    ]
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        redeemable = query_flag(request, "redeemable")
        perks = list(perk_list_active(brand=self.brand))
        member_id = request.query_params.get("member")
        if member_id is None:  # `?member=` is no id either: a 400, as the schema (an integer) says
            return Response({"results": [perk_out(perk) for perk in perks]})
        if not (member_id.isascii() and member_id.isdecimal()):
            raise serializers.ValidationError({"member": ["A member id."]})
        membership = self.membership(int(member_id))
        balance = membership_balance(membership)
        rows = [(perk, perk_refusal(membership=membership, perk=perk, balance=balance)) for perk in perks]
        if redeemable:
            rows = [(perk, refusal) for perk, refusal in rows if refusal is None]
        return Response({"results": [perk_out(perk, refusal, member_given=True) for perk, refusal in rows]})


def network_perk_out(perk: Perk) -> dict:
    """A network perk as the catalog shows it (Loyalteez's shape, with its brand and unit)."""
    return {
        "id": perk.pk,
        "brand": perk.brand.slug,
        "name": perk.name,
        "description": perk.description,
        "cost": perk.cost,
        "category": perk.category,
        "unit": perk.brand.network.unit,
        "stock": perk.stock,
    }


class NetworkPerkCollection(BrandApiView):
    @extend_schema(
        operation_id="network_perks_list",
        summary="The open network's catalog: every active network perk of every brand in the key's brand's network",
        description="Redeem one with the honoring brand's key at `POST /api/v1/redemptions`. A brand outside any "
        "network has no catalog (404).",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`results`"),
            **error_responses(401, 404, 429),
        },
        examples=[
            OpenApiExample(
                "catalog",
                response_only=True,
                value={
                    "results": [
                        {
                            "id": 9,
                            "brand": "artist",
                            "name": "Signed poster",
                            "description": "",
                            "cost": 500,
                            "category": "merch",
                            "unit": "LTZ",
                            "stock": 50,
                        }
                    ]
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        if self.brand.network_id is None:
            raise Http404("This brand is in no open network.")
        perks = network_perk_list_active(network_id=self.brand.network_id)
        return Response({"results": [network_perk_out(perk) for perk in perks]})


class RedemptionCollection(BrandApiView):
    @extend_schema(
        operation_id="redemptions_create",
        summary="Redeem a perk for a member",
        description="Spends the points at once. Send an `Idempotency-Key`: a retry replays the first answer.",
        request=RedemptionInputSerializer,
        parameters=[idempotency_key_parameter(required=False)],
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="the redemption and the balance after"),
            **error_responses(400, 401, 404, 409, 415, 422, 429),
        },
        examples=[
            OpenApiExample("redeem", request_only=True, value={"member": {"email": "fan@example.com"}, "perk": 3}),
            OpenApiExample("issued", response_only=True, status_codes=["201"], value=REDEMPTION_EXAMPLE),
        ],
    )
    def post(self, request: Request) -> Response:
        data = redemption_input(request.data)
        if data is None:
            serializer = RedemptionInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        key = self.idempotency_key(request)
        fingerprint = request_fingerprint(method=request.method, path=request.path, body=request.data) if key else None
        try:
            answer = perk_redeem_request(
                brand=self.brand,
                member=MemberRef(email=data["member"].get("email"), external_id=data["member"].get("external_id")),
                perk_id=data["perk"],
                key=key,
                fingerprint=fingerprint,
                render=redemption_out,
            )
        except RedeemNotFoundError as error:
            raise Http404(error.message) from None
        response = Response(answer.body, status=answer.status)
        if answer.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class _BrandRedemptionView(BrandApiView):
    def redemption(self, redemption_id: int) -> Redemption:
        found = Redemption.objects.filter(brand=self.brand, pk=redemption_id).select_related("perk").first()
        if found is None:
            raise Http404("No such redemption.")
        return found


class RedemptionDetail(_BrandRedemptionView):
    @extend_schema(
        operation_id="redemptions_retrieve",
        summary="A redemption",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the redemption"),
            **error_responses(401, 404, 429),
        },
        examples=[OpenApiExample("issued", response_only=True, value=REDEMPTION_EXAMPLE)],
    )
    def get(self, request: Request, redemption_id: int) -> Response:
        return Response(redemption_out(self.redemption(redemption_id)))


class RedemptionCancel(_BrandRedemptionView):
    @extend_schema(
        operation_id="redemptions_cancel",
        summary="Cancel a redemption: points and stock come back, once",
        request=None,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the cancelled redemption"),
            **error_responses(401, 404, 422, 429),
        },
        examples=[
            OpenApiExample(
                "cancelled", response_only=True, value={**REDEMPTION_EXAMPLE, "status": "cancelled", "balance": 512}
            )
        ],
    )
    def post(self, request: Request, redemption_id: int) -> Response:
        redemption = redemption_cancel(redemption=self.redemption(redemption_id), note="cancelled over the API")
        return Response(redemption_out(redemption, membership_balance(redemption.membership)))


class VoucherRedeem(BrandApiView):
    @extend_schema(
        operation_id="vouchers_redeem",
        summary="A till consumes a voucher code",
        request=VoucherInputSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the fulfilled redemption"),
            **error_responses(400, 401, 415, 422, 429),
        },
        examples=[
            OpenApiExample("consume", request_only=True, value={"code": "K7QX3MWA9PTE"}),
            OpenApiExample(
                "fulfilled",
                response_only=True,
                value={**REDEMPTION_EXAMPLE, "status": "fulfilled", "fulfilled_at": "2026-11-22T10:00:00Z"},
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = VoucherInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        redemption = voucher_consume(
            brand_id=self.brand.pk,
            code=serializer.validated_data["code"],
            note=f"consumed by API key {request.auth.name}",
        )
        return Response(redemption_out(redemption))
