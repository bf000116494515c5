import pytest
from django.urls import reverse

from tests.livestream.factories import ChannelFactory
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db


def test_brand_page_offers_tv_only_when_the_brand_has_an_active_channel(client):
    brand = BrandFactory(slug="nova", name="Nova")
    url = reverse("brand_detail", args=["nova"])
    assert "/b/nova/tv/" not in client.get(url).content.decode()

    channel = ChannelFactory(brand=brand)
    assert 'href="/b/nova/tv/"' in client.get(url).content.decode()

    channel.is_active = False
    channel.save(update_fields=["is_active"])
    assert "/b/nova/tv/" not in client.get(url).content.decode()
