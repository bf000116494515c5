"""The API key look-up (loyalty.authentication.usable_key_get): the library's rules, one prepared statement."""

import datetime as dt

import pytest
from django.utils import timezone

from loyalty.authentication import usable_key_get
from loyalty.models import Brand
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db


def test_a_usable_key_comes_with_its_brand_and_answers():
    brand = BrandFactory(name="Tea", points_name="Leaves")
    client = api_client_for(brand)

    found = usable_key_get(client.api_key.prefix)

    assert (found.pk, found.name, found.brand_id) == (client.api_key.pk, client.api_key.name, brand.pk)
    assert (found.brand.name, found.brand.points_name, found.brand.zone.key) == ("Tea", "Leaves", brand.timezone)
    assert found.is_valid(client.api_key.plain_key)
    assert client.get("/api/v1/perks").status_code == 200


@pytest.mark.parametrize(
    "spoil",
    [
        lambda key: key.__class__.objects.filter(pk=key.pk).update(revoked=True),
        lambda key: key.__class__.objects.filter(pk=key.pk).update(expiry_date=timezone.now() - dt.timedelta(1)),
        lambda key: Brand.objects.filter(pk=key.brand_id).update(is_active=False),
    ],
    ids=["revoked", "expired", "brand inactive"],
)
def test_revoked_expired_or_inactive_keys_are_401(spoil):
    client = api_client_for(BrandFactory())
    spoil(client.api_key)
    response = client.get("/api/v1/perks")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "not_authenticated")


def test_the_right_prefix_with_a_wrong_secret_is_401():
    client = api_client_for(BrandFactory())
    prefix = client.api_key.plain_key.partition(".")[0]
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {prefix}.not-the-secret")
    assert client.get("/api/v1/perks").status_code == 401
    assert usable_key_get("nope") is None
