"""The economics report over the API and in the partner portal: the key's (or the staff's) brand only,
clear 400s for bad ranges, a CSV that says the same as the page."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from loyalty.models import EarnRule, Tier
from tests.economics.test_figures import A, history, menu_load
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandFactory, BrandStaffFactory, UserFactory
from tests.loyalty.lifecycle import buy

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/economics"


def test_the_demo_coffee_report_gives_the_seeds_return_rates_per_tier(coffee, coffee_api):
    menu_load(coffee)

    body = coffee_api.get(URL).json()

    assert [(tier["name"], tier["multiplier"], tier["return_rate"]) for tier in body["tiers"]] == [
        ("Green", "1.00", "3.33"),
        ("Gold", "1.20", "4.00"),
        ("Reserve", "1.70", "5.67"),
    ]
    assert (body["point_value"], body["currency"], body["point_value_source"]) == ("0.033333", "USD", "menu")


def test_the_report_of_a_range_gives_the_realised_figures_as_strings(coffee, coffee_api):
    history(coffee)

    body = coffee_api.get(URL, {"from": "2026-01-01", "to": "2026-01-31"}).json()

    assert {key: body[key] for key in ("issued", "redeemed", "expired", "outstanding")} == {
        "issued": 770,
        "redeemed": 60,
        "expired": 0,
        "outstanding": 710,
    }
    assert (body["liability"], body["spend"], body["redeemed_value"]) == ("23.67", "750.00", "2.00")
    assert (body["cost_pct_of_revenue"], body["breakage_rate"], body["redemption_rate"]) == ("0.27", "0.00", "7.79")


def test_the_report_shows_only_the_keys_brand(coffee):
    history(coffee)
    other = BrandFactory(slug="other")
    EarnRule.objects.create(brand=other, event_type="purchase", points_per_unit=1, currency="USD")

    body = api_client_for(other).get(URL, {"from": "2026-01-01", "to": "2026-01-31"}).json()

    assert (body["issued"], body["outstanding"], body["spend"]) == (0, 0, "0.00")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ({"from": "2000-01-01", "to": "2026-01-01"}, "from"),
    ],
)
def test_a_bad_range_is_a_400_in_the_error_shape(coffee_api, query, field):
    answer = coffee_api.get(URL, query)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_input"
    assert field in answer.json()["error"]["fields"]


def test_no_key_no_report(client):
    assert client.get(URL).status_code in (401, 403)


@pytest.fixture
def staff(coffee):
    return BrandStaffFactory(brand=coffee).user


def test_the_portal_index_shows_the_staffs_brand_dashboard_with_its_charts(client, coffee, staff):
    history(coffee)
    client.force_login(staff)

    page = client.get(reverse("admin:index"), {"days": "365"})

    assert page.status_code == 200
    board = page.context["board"]
    assert page.context["brand"] == coffee
    assert board.figures.outstanding == 710
    assert dict(board.members_by_tier) == {"Green": 1, "Gold": 1}
    html = page.content.decode()
    for chart in ("chart-points", "chart-active", "chart-tiers", "chart-events"):
        assert f'data-testid="{chart}"' in html
    assert "cdn" not in html.lower()  # Chart.js is Unfold's own copy, served locally


def test_staff_of_one_brand_never_see_another_brands_dashboard(client, coffee):
    history(coffee)
    other = BrandFactory(slug="other", name="Other")
    Tier.objects.create(brand=other, name="Basic", rank=1, threshold=0)
    client.force_login(BrandStaffFactory(brand=other).user)

    page = client.get(reverse("admin:index"), {"brand": "coffee", "days": "365"})

    assert page.context["brand"] == other
    assert page.context["board"].figures.issued == 0
    assert client.get(reverse("economics_report"), {"brand": "coffee"}).context["brand"] == other


def test_an_operator_switches_between_brands(client, coffee):
    history(coffee)
    BrandFactory(slug="other", name="Other")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    coffee_page = client.get(reverse("admin:index"), {"brand": "coffee", "days": "365"})
    other_page = client.get(reverse("admin:index"), {"brand": "other", "days": "365"})

    assert coffee_page.context["board"].figures.issued == 770
    assert other_page.context["board"].figures.issued == 0
    assert 'id="brand-switch"' in coffee_page.content.decode()


def test_the_portal_report_and_its_csv_agree(client, coffee, staff):
    history(coffee)
    client.force_login(staff)
    query = {"from": "2026-01-01", "to": "2026-01-31"}

    page = client.get(reverse("economics_report"), query)
    download = client.get(reverse("economics_report"), {**query, "format": "csv"})

    assert page.status_code == 200
    assert 'data-testid="liability" style="text-align:right">23.67 USD' in page.content.decode()
    assert download["Content-Disposition"] == 'attachment; filename="coffee-economics-2026-01-01-2026-01-31.csv"'
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    figures = dict(row for row in rows if len(row) == 2)
    assert (figures["issued"], figures["liability"], figures["cost_pct_of_revenue"]) == ("770", "23.67", "0.27")
    tiers = {row[0]: row for row in rows if len(row) == 8}
    assert tiers["Gold"][1:3] == ["1.20", "4.00"]


def test_a_bad_range_in_the_portal_says_so_and_shows_the_last_30_days(client, coffee, staff):
    client.force_login(staff)

    page = client.get(reverse("economics_report"), {"from": "2026-02-30"})

    assert page.status_code == 200
    assert "from" in page.context["errors"]
    assert (page.context["end"] - page.context["start"]).days == 29


def test_a_login_without_a_brand_gets_no_report(client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(reverse("economics_report")).status_code == 404


def test_purchases_today_show_on_todays_dashboard(client, coffee, staff):
    buy(coffee, "today-1", "12.00", A)
    client.force_login(staff)

    board = client.get(reverse("admin:index")).context["board"]

    assert board.figures.issued == 12
    assert board.figures.days[-1]["issued"] == 12
    assert board.active_weeks[-1][1] == 1
    assert dt.date.today() - board.figures.days[-1]["day"] <= dt.timedelta(days=1)
