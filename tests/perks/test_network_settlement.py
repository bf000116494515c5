"""Settlement between the brands of an open network: who funded the perks a brand honored, and where a
brand's points were spent, netted to one payment per brand; a closed month never changes."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from loyalty.models import Brand
from perks.models import Perk, Redemption
from perks.services import redemption_cancel
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandStaffFactory
from tests.loyalty.lifecycle import buy, on
from tests.loyalty.network import FAN

pytestmark = pytest.mark.django_db


@pytest.fixture
def artist(network):
    return Brand.objects.create(name="Nova Lane", slug="artist", network=network)


@pytest.fixture
def poster(artist):
    return Perk.objects.create(brand=artist, name="Signed poster", cost=500, stock=50, is_network_perk=True)


def redeem(brand, perk, key: str) -> dict:
    response = api_client_for(brand).post(
        "/api/v1/redemptions", {"member": {"email": FAN}, "perk": perk.pk}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 201, response.json()
    return response.json()


def statement(brand, month: str) -> dict:
    response = api_client_for(brand).get(f"/api/v1/network/settlement?month={month}")
    assert response.status_code == 200, response.json()
    return response.json()


def test_the_shop_funded_500_ltz_spent_at_the_artist_5_dollars_each_way(shop, artist, poster):
    with on("2026-11-10"):
        buy(shop, "S-1", "100.00", member={"email": FAN})
        redeem(artist, poster, "r-1")

        at_shop, at_artist = statement(shop, "2026-11"), statement(artist, "2026-11")

    assert at_shop == {
        "month": "2026-11",
        "unit": "LTZ",
        "issued": 1000,
        "redeemed": 0,
        "net_points": -500,
        "net_amount": "-5.00",
        "currency": "USD",
        "counterparties": [
            {"brand": "artist", "issued_here_spent_there": 500, "issued_there_spent_here": 0, "amount": "-5.00"}
        ],
        "closed": False,
    }
    assert at_artist["issued"] == 0
    assert at_artist["redeemed"] == 500
    assert (at_artist["net_points"], at_artist["net_amount"]) == (500, "5.00")
    assert at_artist["counterparties"] == [
        {"brand": "shop", "issued_here_spent_there": 0, "issued_there_spent_here": 500, "amount": "5.00"}
    ]


def test_a_closed_month_does_not_change_after_a_refund_in_the_next_month(shop, artist, poster):
    with on("2026-11-10"):
        buy(shop, "S-1", "100.00", member={"email": FAN})
        made = redeem(artist, poster, "r-1")
    with on("2026-12-01", hour=9):
        out = io.StringIO()
        call_command("network_settle", "--month", "2026-11", stdout=out)
        assert "open 2026-11: closed" in out.getvalue()
        redemption_cancel(redemption=Redemption.objects.get(pk=made["id"]))  # in December
        november = statement(artist, "2026-11")
        december = statement(artist, "2026-12")
        call_command("network_settle", "--month", "2026-11", stdout=io.StringIO())  # again: nothing changes

    assert (november["redeemed"], november["net_amount"], november["closed"]) == (500, "5.00", True)
    assert (december["redeemed"], december["net_amount"], december["closed"]) == (-500, "-5.00", False)
    assert statement(artist, "2026-11") == november


def test_a_month_that_has_not_ended_cannot_be_closed(network):
    with on("2026-11-10"), pytest.raises(CommandError, match="not over yet"):
        call_command("network_settle", "--month", "2026-11", stdout=io.StringIO())


def test_the_settlement_api_refuses_a_bad_month_and_a_brand_outside_the_network(shop, coffee):
    response = api_client_for(shop).get("/api/v1/network/settlement?month=2026-13")
    assert response.status_code == 400
    assert "month" in response.json()["error"]["fields"]
    assert api_client_for(coffee).get("/api/v1/network/settlement?month=2026-11").status_code == 404


def test_the_portal_page_shows_the_statement_acquisition_and_a_csv(client, shop, artist, poster):
    with on("2026-10-05"):
        buy(shop, "S-0", "1.00", member={"email": FAN})  # the fan joins the shop first
    with on("2026-11-10"):
        buy(shop, "S-1", "100.00", member={"email": FAN})
        redeem(artist, poster, "r-1")  # and the artist through the network
        staff = BrandStaffFactory(brand=artist)
        client.force_login(staff.user)
        url = reverse("admin:loyalty_brand_network", args=[artist.pk])
        page = client.get(url).content.decode()
        csv = client.get(url, {"month": "2026-11", "format": "csv"})

    assert 'data-testid="redeemed" style="text-align:right">500<' in page
    assert "5.00 USD" in page
    assert '<td style="padding:.25rem 1rem .25rem 0">2026-11</td><td style="text-align:right">1</td>' in page
    assert csv["Content-Type"].startswith("text/csv")
    assert "shop,0,500,5.00" in csv.content.decode()
    other = BrandStaffFactory(brand=shop)
    client.force_login(other.user)
    assert client.get(url).status_code in (302, 404)  # another brand's page is not theirs
