import time
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from loyalty.models import Brand, EarnRule, Event, Network, Tier
from tests.loyalty.factories import BrandApiKeyFactory, BrandFactory


@pytest.fixture
def coffee():
    """The Starbucks-model brand: 1 Star per $1, Green / Gold / Reserve, check-in 5 Stars once a day."""
    brand = BrandFactory(name="Coffee", slug="coffee", timezone="America/Los_Angeles", points_name="Stars")
    EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=Decimal("1"), currency="USD")
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5, cap_per_day=1)
    for rank, (name, threshold, multiplier) in enumerate(
        [("Green", 0, "1.0"), ("Gold", 500, "1.2"), ("Reserve", 2500, "1.7")], start=1
    ):
        Tier.objects.create(brand=brand, name=name, rank=rank, threshold=threshold, multiplier=Decimal(multiplier))
    return brand


def api_client_for(brand) -> APIClient:
    key = BrandApiKeyFactory(brand=brand)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.plain_key}")
    client.api_key = key
    return client


@pytest.fixture
def coffee_api(coffee) -> APIClient:
    return api_client_for(coffee)


def event_processed(event_id: int, timeout: float = 10.0) -> Event:
    """The event once a worker has processed it (or as it is after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        event = Event.objects.get(pk=event_id)
        if event.status != Event.Status.PENDING or time.monotonic() >= deadline:
            return event
        time.sleep(0.05)


@pytest.fixture
def network():
    return Network.objects.create(name="Open network", slug="open", unit="LTZ", point_value=Decimal("0.01"))


@pytest.fixture
def shop(network):
    """The seed's web shop: 10 LTZ per $1, no brand points, no tiers; its Loyalteez id is shop-ltz."""
    brand = Brand.objects.create(name="Web Shop", slug="shop", network=network, loyalteez_brand_id="shop-ltz")
    EarnRule.objects.create(brand=brand, event_type="purchase", network_points_per_unit=Decimal("10"), currency="USD")
    return brand
