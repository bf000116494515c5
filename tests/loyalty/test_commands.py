import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework_api_key.models import AbstractAPIKey

from loyalty.models import (
    Adjustment,
    Brand,
    BrandApiKey,
    BrandStaff,
    EarnRule,
    Member,
    Membership,
    Tier,
    User,
)
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Brand, BrandStaff, Member, Membership, User, EarnRule, Tier, Adjustment)
    }


def test_demo_loads_both_brands_staff_and_a_fan_and_prints_the_logins():
    out = io.StringIO()
    call_command("demo", stdout=out)

    assert set(Brand.objects.values_list("slug", flat=True)) == {"coffee", "artist", "shop"}
    assert BrandStaff.objects.get(user__email="staff@coffee.example").brand.slug == "coffee"
    assert BrandStaff.objects.get(user__email="staff@artist.example").brand.slug == "artist"
    assert Membership.objects.filter(member__user__email="fan@tally.example").count() == 2
    assert User.objects.get(email="staff@coffee.example").check_password("tally-demo-2026")
    for email in (
        "admin@tally.example",
        "staff@coffee.example",
        "staff@artist.example",
        "staff@shop.example",
        "fan@tally.example",
    ):
        assert email in out.getvalue()


def test_the_demo_coffee_program_expires_stars_after_6_months_and_pays_a_7_day_check_in_streak():
    call_command("demo", stdout=io.StringIO())
    coffee, artist = Brand.objects.get(slug="coffee"), Brand.objects.get(slug="artist")
    assert (coffee.points_expire_months, coffee.tier_window, coffee.tier_window_months, coffee.tier_downgrade) == (
        6,
        "rolling",
        12,
        "immediately",
    )
    assert artist.points_expire_months is None
    check_in = coffee.earn_rules.get(event_type="check_in")
    assert (check_in.streak_length, check_in.streak_period, check_in.streak_bonus) == (7, "day", 50)
    assert coffee.earn_rules.get(event_type="purchase").pending_days == 0


def test_the_demo_s_open_network_has_the_shop_issuing_ltz_and_the_artist_honoring_it():
    call_command("demo", stdout=io.StringIO())
    shop, artist, coffee = (Brand.objects.get(slug=slug) for slug in ("shop", "artist", "coffee"))
    network = shop.network
    assert (network.slug, network.unit, str(network.point_value), network.currency) == ("open", "LTZ", "0.0100", "USD")
    assert artist.network == network and coffee.network is None
    assert shop.loyalteez_brand_id == "shop-ltz"
    rule = shop.earn_rules.get(event_type="purchase")
    assert (rule.points_per_unit, rule.network_points_per_unit) == (None, 10)
    assert BrandStaff.objects.get(user__email="staff@shop.example").brand == shop
    perks = {perk.name: (perk.cost, perk.stock) for perk in artist.perks.filter(is_network_perk=True)}
    assert perks == {"Signed poster": (500, 50), "Backstage video call": (2000, 5)}


def test_demo_twice_creates_nothing_twice():
    call_command("demo", stdout=io.StringIO())
    first = _counts()
    call_command("demo", stdout=io.StringIO())
    assert _counts() == first


def test_create_api_key_prints_only_a_working_key_on_its_last_line():
    brand = BrandFactory(slug="coffee")
    out = io.StringIO()

    call_command("create_api_key", brand="coffee", name="Till 1", stdout=out, stderr=io.StringIO())

    key = out.getvalue().strip().splitlines()[-1]
    stored = BrandApiKey.objects.get_from_key(key)
    assert stored.brand == brand
    assert stored.name == "Till 1"
    assert stored.is_valid(key)
    assert key not in {stored.hashed_key, stored.id}  # only a hash is at rest
    assert isinstance(stored, AbstractAPIKey)


def test_create_api_key_for_an_unknown_brand_is_a_clear_error():
    BrandFactory(slug="coffee")
    with pytest.raises(CommandError, match=r"No brand with slug 'tea' \(known: coffee\)"):
        call_command("create_api_key", brand="tea", name="x")


def test_demo_refuses_to_run_in_production_and_creates_nothing(settings):
    settings.PRODUCTION = True
    before = _counts()

    with pytest.raises(CommandError, match="never runs in production"):
        call_command("demo", stdout=io.StringIO())

    assert _counts() == before


def test_demo_logins_present_names_the_logins_that_open_with_the_demo_password():
    from loyalty.demo import DEMO_PASSWORD, demo_logins_present

    call_command("demo", stdout=io.StringIO())
    User.objects.create_user(email="other-fan@example.com", password=DEMO_PASSWORD)  # a fan: not checked
    User.objects.create_user(email="new-staff@example.com", password=DEMO_PASSWORD, is_staff=True)
    admin = User.objects.get(email="admin@tally.example")
    admin.set_password("a long and private passphrase")
    admin.save()

    assert demo_logins_present() == [
        "fan@tally.example",
        "new-staff@example.com",
        "staff@artist.example",
        "staff@coffee.example",
        "staff@shop.example",
    ]


@pytest.mark.django_db
def test_check_deploy_names_a_staff_login_that_opens_with_the_demo_password():
    from django.core.management.base import SystemCheckError

    from loyalty.demo import DEMO_PASSWORD
    from loyalty.models import User

    User.objects.create_user(email="ops@example.com", password=DEMO_PASSWORD, is_staff=True)
    with pytest.raises(SystemCheckError, match=r"ops@example\.com logs in with the demo's published password"):
        call_command("check", "--deploy", "--fail-level", "ERROR")

    User.objects.filter(email="ops@example.com").update(is_active=False)
    call_command("check", "--deploy", "--fail-level", "ERROR", "--tag", "security")
