"""API authentication (`Authorization: Api-Key <key>`) and per-key throttling."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from loyalty.models import BrandApiKey


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword != self.keyword or not key.strip():
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Api-Key <key>'.")
        try:
            api_key = BrandApiKey.objects.get_from_key(key.strip())
        except BrandApiKey.DoesNotExist:
            api_key = None
        if api_key is None or api_key.has_expired or not api_key.brand.is_active:
            raise exceptions.AuthenticationFailed("This API key is unknown, revoked or expired.")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return self.keyword  # makes DRF answer 401 (not 403) without a key


class HasBrandApiKey(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, BrandApiKey):
            raise exceptions.NotAuthenticated("An API key is required: 'Authorization: Api-Key <key>'.")
        return True


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self) -> str:
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, BrandApiKey):
            return None
        return f"throttle:api_key:{request.auth.pk}"


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the API key in the OpenAPI schema (drf-spectacular finds it by class path)."""

    target_class = "loyalty.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create a key with `manage.py create_api_key --brand SLUG --name NAME`.",
        }
