"""Reads of the integrations app."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from integrations.models import BrandIntegration, WebhookEndpoint


def brands_with_sinks(brand_ids: Iterable[int]) -> set[int]:
    """Which of these brands have somewhere to send their messages: an enabled webhook endpoint, or an
    analytics project (with ANALYTICS_URL set). One query, read afresh each time: an endpoint registered a
    moment ago hears the next posting."""
    ids = list(set(brand_ids))
    if not ids:
        return set()
    endpoints = WebhookEndpoint.objects.filter(brand_id__any=ids, enabled=True).values_list("brand_id")
    if settings.ANALYTICS_URL:
        analytics = BrandIntegration.objects.filter(brand_id__any=ids).exclude(analytics_secret="")
        endpoints = endpoints.union(analytics.values_list("brand_id"))
    return {brand_id for (brand_id,) in endpoints}
