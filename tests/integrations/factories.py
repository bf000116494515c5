"""Test factories of the integrations, and one object of each brand-owned model for the portal's isolation
tests (tests/loyalty/test_admin_isolation.py)."""

from __future__ import annotations

import factory
from django.utils import timezone

from integrations.models import BrandIntegration, Delivery, OutboxMessage, WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    url = factory.Sequence(lambda n: f"https://hooks{n}.example.com/tally")


def delivery_for(brand) -> Delivery:
    endpoint = WebhookEndpointFactory(brand=brand)
    message = OutboxMessage.objects.create(brand=brand, type="points.earned", data={}, created_at=timezone.now())
    return Delivery.objects.create(
        message=message,
        brand=brand,
        sink=f"webhook:{endpoint.pk}",
        endpoint=endpoint,
        next_attempt_at=timezone.now(),
        created_at=timezone.now(),
    )


BRAND_OBJECT_FACTORIES = {
    BrandIntegration: lambda brand: BrandIntegration.objects.create(brand=brand),
    WebhookEndpoint: lambda brand: WebhookEndpointFactory(brand=brand),
    Delivery: delivery_for,
}
