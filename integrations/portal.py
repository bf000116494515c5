"""What the integrations put on the portal's front page: endpoints that were disabled, for their staff."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from integrations.models import WebhookEndpoint
from loyalty.admin_site import portal_brand_ids


def dashboard_notices(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    if not (request.user.is_active and request.user.is_staff):
        return context
    disabled = WebhookEndpoint.objects.filter(enabled=False, disabled_at__isnull=False).select_related("brand")
    if not request.user.is_superuser:
        disabled = disabled.filter(brand_id__in=portal_brand_ids(request))
    context["disabled_webhooks"] = list(disabled[:20])
    return context
