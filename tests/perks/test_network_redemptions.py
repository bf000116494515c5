"""Spending open network points: a fan who earned LTZ at the shop redeems a network perk of the artist
with the artist's key; the points spent are attributed to the brands that issued them, oldest first.
All of a brand perk's guarantees hold: no double spend (the ledger's locks), no oversell, idempotency."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from loyalty.models import Membership, NetworkLot, NetworkSpend
from perks.models import Perk, Redemption
from perks.services import redemption_cancel
from tests.concurrency import run_concurrently
from tests.loyalty.conftest import api_client_for
from tests.loyalty.lifecycle import books_clean, buy
from tests.loyalty.network import FAN, ltz

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def artist(network):
    from loyalty.models import Brand

    return Brand.objects.create(name="Nova Lane", slug="artist", network=network, points_name="points")


@pytest.fixture
def poster(artist):
    return Perk.objects.create(brand=artist, name="Signed poster", cost=500, stock=50, is_network_perk=True)


def redeem(brand, perk, key: str, email: str = FAN):
    return api_client_for(brand).post(
        "/api/v1/redemptions", {"member": {"email": email}, "perk": perk.pk}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_ltz_earned_at_the_shop_buy_the_artist_s_poster_with_the_artist_s_key(shop, artist, poster, network):
    buy(shop, "S-1", "100.00", member={"email": FAN})
    assert ltz(network) == 1000

    response = redeem(artist, poster, "r-1")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["cost"], body["balance"], body["unit"]) == (500, 500, "LTZ")
    assert ltz(network) == 500
    assert Membership.objects.filter(brand=artist, member__email=FAN).exists()  # joined on first redemption
    assert list(NetworkSpend.objects.values_list("issuer__slug", "honoring__slug", "points")) == [
        ("shop", "artist", 500)
    ]
    assert Perk.objects.get(pk=poster.pk).stock == 49
    assert redeem(artist, poster, "r-1").json() == body  # a retry replays, spends nothing more
    assert ltz(network) == 500
    books_clean()


def test_points_are_spent_oldest_first_across_the_brands_that_issued_them(shop, artist, poster, network, coffee):
    from loyalty.models import EarnRule

    coffee.network = network
    coffee.save()
    EarnRule.objects.filter(brand=coffee, event_type="purchase").update(network_points_per_unit=Decimal("10"))
    buy(shop, "S-1", "30.00", member={"email": FAN})  # 300 LTZ from the shop first
    buy(coffee, "C-1", "40.00", member={"email": FAN})  # then 400 from the coffee brand

    assert redeem(artist, poster, "r-1").status_code == 201

    spends = dict(NetworkSpend.objects.values_list("issuer__slug", "points"))
    assert spends == {"shop": 300, "coffee": 200}
    assert sum(NetworkLot.objects.values_list("left", flat=True)) == ltz(network) == 200


def test_fifty_concurrent_network_redemptions_against_a_balance_for_three_make_exactly_three(shop, artist, network):
    perk = Perk.objects.create(brand=artist, name="Sticker", cost=100, is_network_perk=True)
    buy(shop, "S-1", "35.00", member={"email": FAN})  # 350 LTZ: three stickers
    key = api_client_for(artist).api_key.plain_key

    def call(index: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        response = client.post(
            "/api/v1/redemptions",
            {"member": {"email": FAN}, "perk": perk.pk},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"c-{index}",
        )
        return response.status_code, response.json()

    results = run_concurrently(call, 50)

    statuses = [status for status, _ in results]
    assert statuses.count(201) == 3, results
    assert statuses.count(422) == 47
    assert {body["error"]["code"] for status, body in results if status == 422} == {"insufficient_points"}
    assert ltz(network) == 50
    assert Redemption.objects.count() == 3
    assert sum(NetworkSpend.objects.values_list("points", flat=True)) == 300
    books_clean()


def test_a_brand_outside_the_network_neither_sees_nor_redeems_network_perks(shop, artist, poster, coffee):
    buy(shop, "S-1", "100.00", member={"email": FAN})
    client = api_client_for(coffee)

    assert client.get("/api/v1/network/perks").status_code == 404
    response = client.post(
        "/api/v1/redemptions", {"member": {"email": FAN}, "perk": poster.pk}, format="json", HTTP_IDEMPOTENCY_KEY="x"
    )
    assert response.status_code == 404
    assert not Redemption.objects.exists()


def test_the_catalog_lists_every_network_perk_of_the_network_in_loyalteez_s_shape(shop, artist, poster):
    Perk.objects.create(brand=artist, name="Artist-only poster", cost=50)  # in the artist's own points
    Perk.objects.create(brand=shop, name="Free shipping", cost=200, category="freebie", is_network_perk=True)

    results = api_client_for(shop).get("/api/v1/network/perks").json()["results"]

    assert [(perk["brand"], perk["name"], perk["cost"], perk["unit"]) for perk in results] == [
        ("shop", "Free shipping", 200, "LTZ"),
        ("artist", "Signed poster", 500, "LTZ"),
    ]
    assert set(results[0]) == {"id", "brand", "name", "description", "cost", "category", "unit", "stock"}
    # The artist's own perk list is in its own points only.
    assert [perk["name"] for perk in api_client_for(artist).get("/api/v1/perks").json()["results"]] == [
        "Artist-only poster"
    ]


def test_cancelling_a_network_redemption_gives_the_points_and_the_issuers_back(shop, artist, poster, network):
    buy(shop, "S-1", "100.00", member={"email": FAN})
    redemption = Redemption.objects.get(pk=redeem(artist, poster, "r-1").json()["id"])

    redemption_cancel(redemption=redemption)
    redemption_cancel(redemption=redemption)  # once

    assert ltz(network) == 1000
    assert sorted(NetworkSpend.objects.values_list("points", flat=True)) == [-500, 500]
    assert sum(NetworkLot.objects.values_list("left", flat=True)) == 1000
    books_clean()
