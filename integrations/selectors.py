"""Reads of the integrations app."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from config.db import bulk_cursor
from integrations.models import BrandIntegration, WebhookEndpoint

_WITH_SINKS_SQL = f"""
    SELECT w.brand_id FROM {WebhookEndpoint._meta.db_table} w WHERE w.brand_id = ANY(%b::bigint[]) AND w.enabled
     UNION
    SELECT i.brand_id FROM {BrandIntegration._meta.db_table} i
     WHERE %b AND i.brand_id = ANY(%b::bigint[]) AND i.analytics_secret <> ''
"""  # noqa: S608 - only table names are formatted in


def brands_with_sinks(brand_ids: Iterable[int]) -> set[int]:
    """Which of these brands have somewhere to send their messages: an enabled webhook endpoint, or an
    analytics project (with ANALYTICS_URL set). Read afresh each time (one prepared statement: it runs with
    every redemption), so an endpoint registered a moment ago hears the next posting."""
    ids = sorted(set(brand_ids))
    if not ids:
        return set()
    with bulk_cursor() as cursor:
        cursor.execute(_WITH_SINKS_SQL, [ids, bool(settings.ANALYTICS_URL), ids])
        return {brand_id for (brand_id,) in cursor.fetchall()}
