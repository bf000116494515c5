"""Webhook endpoints over the API, for the key's brand: register, list, delete."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.models import MESSAGE_TYPES, WebhookEndpoint
from integrations.services import endpoint_create, endpoint_delete
from loyalty.api import BrandApiView, error_responses


class WebhookInput(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=list(MESSAGE_TYPES)),
        required=False,
        default=list,
        max_length=len(MESSAGE_TYPES),
        help_text="The message types it receives; empty or missing: all of them.",
    )


class WebhookOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


def _out(endpoint: WebhookEndpoint) -> dict:
    return WebhookOutput(endpoint).data


class Webhooks(BrandApiView):
    @extend_schema(
        operation_id="webhooks_list",
        summary="The key's brand's webhook endpoints",
        responses={200: WebhookOutput(many=True), **error_responses(401, 429)},
    )
    def get(self, request: Request) -> Response:
        return Response([_out(endpoint) for endpoint in WebhookEndpoint.objects.filter(brand=self.brand)])

    @extend_schema(
        operation_id="webhooks_create",
        summary="Register a webhook endpoint",
        description=(
            "Each message is a `POST <url>` with JSON `{id, type, created, brand, data}` and the header "
            '`Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the secret>`. '
            "The secret is shown here only. A non-2xx answer or a timeout (10 s) is retried with exponential "
            "backoff for up to 3 days, with the same id; an endpoint failing for 3 days is disabled. Only "
            "http(s) URLs; in production, none on a private or loopback address."
        ),
        request=WebhookInput,
        responses={
            201: inline_serializer(
                "WebhookCreated",
                {
                    "id": serializers.IntegerField(),
                    "url": serializers.CharField(),
                    "events": serializers.ListField(child=serializers.CharField()),
                    "secret": serializers.CharField(),
                },
            ),
            **error_responses(400, 401, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        data = WebhookInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoint_create(
            brand=self.brand, url=data.validated_data["url"], events=data.validated_data["events"]
        )
        return Response(
            {"id": endpoint.pk, "url": endpoint.url, "events": endpoint.events, "secret": endpoint.secret},
            status=status.HTTP_201_CREATED,
        )


class WebhookDetail(BrandApiView):
    @extend_schema(
        operation_id="webhooks_destroy",
        summary="Delete a webhook endpoint (its undelivered messages go with it)",
        responses={204: OpenApiResponse(description="deleted"), **error_responses(401, 404, 429)},
    )
    def delete(self, request: Request, endpoint_id: int) -> Response:
        if not endpoint_delete(brand=self.brand, endpoint_id=endpoint_id):
            raise NotFound("No such webhook endpoint of this brand.")
        return Response(status=status.HTTP_204_NO_CONTENT)
