"""The rule-set simulator: a replay equals really processing the same history under the same rules (in a
scratch brand with those rules), figures equal hand-computed ones, and nothing is written."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from economics import selectors
from economics.simulator import Alternative, TierInput, program_simulate, tiers_parse
from loyalty.models import Brand, EarnRule, Membership, Tier
from perks.models import Perk
from perks.services import perk_redeem
from tests.economics.test_figures import wallets_total
from tests.loyalty.factories import BrandFactory, BrandStaffFactory, UserFactory
from tests.loyalty.lifecycle import buy, check_in, expiry_set, membership_of, on, refund, run_lifecycle

pytestmark = pytest.mark.django_db

A = {"email": "a@example.com"}
B = {"email": "b@example.com"}
START, END = dt.date(2026, 1, 1), dt.date(2026, 3, 31)


def coffee_cup(brand: Brand) -> Perk:
    """$2 off for 60 points: a point worth a thirtieth of a dollar."""
    return Perk.objects.create(brand=brand, name="$2 off", cost=60, cash_value=Decimal("2"), cash_currency="USD")


def scratch_brand(*, rate: str, tiers: list[tuple[str, int, str]]) -> Brand:
    """A brand like the coffee one (timezone, check-in, one-month expiry) with other purchase rules."""
    brand = BrandFactory(name="Scratch", slug="scratch", timezone="America/Los_Angeles")
    EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=Decimal(rate), currency="USD")
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5, cap_per_day=1)
    for rank, (name, threshold, multiplier) in enumerate(tiers, start=1):
        Tier.objects.create(brand=brand, name=name, rank=rank, threshold=threshold, multiplier=Decimal(multiplier))
    return expiry_set(brand, 1)


def live_history(brand: Brand) -> None:
    """Three months of a brand's life, as it happens: purchases (B reaches Gold at the old rate), a check-in
    capped at one a day, a refund, a redemption, the daily job at the start of each month (January's
    points expire at the start of March), more purchases after it."""
    cup = coffee_cup(brand)
    with on("2026-01-10"):
        buy(brand, "a-1", "100.00", A)
        buy(brand, "b-1", "600.00", B)
        buy(brand, "b-2", "100.00", B)
        check_in(brand, A)
        check_in(brand, A)  # over the day's cap
    with on("2026-01-11"):
        refund(brand, "a-1", "50.00", A)
        perk_redeem(membership=membership_of(brand, B["email"]), perk=cup, request_key="b-cup")
    run_lifecycle(brand, "2026-02-01")
    with on("2026-02-05"):
        buy(brand, "a-2", "30.00", A)
        buy(brand, "c-1", "45.50", {"email": "c@example.com"})
    run_lifecycle(brand, "2026-03-01")
    with on("2026-03-02"):
        buy(brand, "b-3", "10.00", B)
        refund(brand, "c-1", "45.50", {"email": "c@example.com"})


def actual(brand: Brand) -> dict:
    """What really processing the history left: the realised figures and the members by tier."""
    figures = selectors.figures(brand, start=START, end=END)
    tiers = dict(Tier.objects.filter(brand=brand).values_list("id", "name"))
    by_tier: dict[str, int] = {}
    for tier_id in Membership.objects.filter(brand=brand).values_list("tier_id", flat=True):
        name = tiers.get(tier_id, "All members" if not tiers else "No tier")
        by_tier[name] = by_tier.get(name, 0) + 1
    assert figures.outstanding == wallets_total(brand)
    return {
        "issued": figures.issued,
        "redeemed": figures.redeemed,
        "redeemed_value": figures.redeemed_value,
        "expired": figures.expired,
        "outstanding": figures.outstanding,
        "liability": figures.liability,
        "members_by_tier": by_tier,
    }


def simulated(column) -> dict:
    return {
        "issued": column.issued,
        "redeemed": column.redeemed,
        "redeemed_value": column.redeemed_value,
        "expired": column.expired,
        "outstanding": column.outstanding,
        "liability": column.liability,
        "members_by_tier": {name: count for name, count in column.members_by_tier if count},
    }


def test_the_replay_under_other_rules_gives_what_really_processing_the_history_under_them_gives(coffee):
    expiry_set(coffee, 1)
    live_history(coffee)
    scratch = scratch_brand(rate="10", tiers=[])
    live_history(scratch)

    comparison = program_simulate(
        coffee, start=START, end=END, alternative=Alternative(points_per_unit=Decimal(10), tiers=())
    )

    assert simulated(comparison.current) == actual(coffee)
    assert simulated(comparison.alternative) == actual(scratch)
    assert comparison.current.issued == 100 + 600 + 120 + 5 - 50 + 30 + 45 + 12 - 45  # b-3 at Gold: 12
    assert comparison.alternative.issued == 1000 + 6000 + 1000 + 5 - 500 + 300 + 455 + 100 - 455
    assert comparison.spend == Decimal("100") + 600 + 100 - 50 + 30 + Decimal("45.50") + 10 - Decimal("45.50")
    assert (comparison.events, comparison.members, comparison.events_skipped) == (10, 3, 0)


def test_the_replay_under_the_brands_own_tiers_but_other_thresholds_matches_a_brand_with_them(coffee):
    expiry_set(coffee, 1)
    live_history(coffee)
    scratch = scratch_brand(rate="1", tiers=[("Green", 0, "1.0"), ("Gold", 100, "1.5")])
    live_history(scratch)

    alternative = Alternative(tiers=(TierInput("Green", 0, Decimal("1.0")), TierInput("Gold", 100, Decimal("1.5"))))
    comparison = program_simulate(coffee, start=START, end=END, alternative=alternative)

    assert simulated(comparison.alternative) == actual(scratch)
    assert dict(comparison.alternative.members_by_tier)["Gold"] == 1  # B; A lost it with the refund


def test_a_stingier_rule_leaves_a_redemption_unaffordable_and_the_points_never_expire_when_told(coffee):
    expiry_set(coffee, 1)
    live_history(coffee)

    alternative = Alternative(points_per_unit=Decimal("0.05"), never_expire=True)
    comparison = program_simulate(coffee, start=START, end=END, alternative=alternative)

    other = comparison.alternative
    # B earns 30 + 5 (Green, 0.05 per $) for $700 in January: not the 60 the cup costs.
    assert (other.redemptions_made, other.redemptions_unaffordable, other.redeemed) == (0, 1, 0)
    assert other.redeemed_value == Decimal(0) and other.cost_pct_of_revenue == Decimal("0.00")
    assert other.expired == 0
    assert other.outstanding == other.issued
    assert comparison.current.redemptions_made == 1 and comparison.current.expired > 0


def test_return_rates_follow_the_rule_set_and_the_flat_network_rule_returns_ten_percent(coffee):
    coffee_cup(coffee)
    with on("2026-01-10"):
        buy(coffee, "a-1", "100.00", A)

    comparison = program_simulate(coffee, start=START, end=END, alternative=Alternative(flat_network=True))

    assert [(name, rate) for name, _multiplier, rate in comparison.current.tiers] == [
        ("Green", Decimal("3.33")),
        ("Gold", Decimal("4.00")),
        ("Reserve", Decimal("5.67")),
    ]
    assert [(name, rate) for name, _multiplier, rate in comparison.alternative.tiers] == [
        ("All members", Decimal("10.00"))
    ]
    assert comparison.alternative.issued == 1000
    assert comparison.alternative.issued_value_pct == Decimal("10.00")  # 1,000 x $0.01 of $100
    assert comparison.current.issued_value_pct == Decimal("3.33")  # 100 x $2/60 of $100


def test_a_refund_of_a_purchase_before_the_range_is_left_out(coffee):
    with on("2026-01-10"):
        buy(coffee, "a-1", "100.00", A)
    with on("2026-02-10"):
        refund(coffee, "a-1", "40.00", A)
        buy(coffee, "a-2", "20.00", A)

    comparison = program_simulate(
        coffee, start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28), alternative=Alternative()
    )

    assert (comparison.events, comparison.events_skipped) == (1, 1)
    assert comparison.current.issued == comparison.alternative.issued == 20
    assert comparison.spend == Decimal("20.00")


def row_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables ORDER BY relname"
        )
        return dict(cursor.fetchall())


def test_simulating_writes_nothing_and_the_command_prints_the_comparison(coffee):
    expiry_set(coffee, 1)
    live_history(coffee)
    before = row_counts()
    out = io.StringIO()

    call_command(
        "simulate_program", "--brand", "coffee", "--from", "2026-01-01", "--to", "2026-03-31",
        "--rate", "10", "--no-tiers", stdout=out,
    )  # fmt: skip

    assert row_counts() == before
    text = out.getvalue()
    assert "10 events of 3 members replayed" in text
    issued = next(line for line in text.splitlines() if line.startswith("Points issued"))
    assert issued.split()[-2:] == ["817", "7,905"]
    assert "Members in All members" in text and "Nothing was written" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--brand", "nope"], "No brand with the slug 'nope'"),
        (["--brand", "coffee", "--from", "2026-02-30"], "A date is YYYY-MM-DD"),
        (["--brand", "coffee", "--from", "2026-03-01", "--to", "2026-02-01"], "--from must not be after --to"),
        (["--brand", "coffee", "--rate", "lots"], "--rate is points per currency unit"),
        (["--brand", "coffee", "--tiers", "Gold:many:1.2"], "is not name:threshold:multiplier"),
        (["--brand", "coffee", "--expire-months", "0"], "--expire-months is 1 or more"),
    ],
)
def test_the_command_refuses_bad_input_with_a_clear_message(coffee, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate_program", *args, stdout=io.StringIO())


def test_tiers_parse_reads_name_threshold_multiplier_lowest_first():
    assert tiers_parse("Green:0:1, Gold:500:1.2") == (
        TierInput("Green", 0, Decimal("1")),
        TierInput("Gold", 500, Decimal("1.2")),
    )
    assert tiers_parse("") == ()
    with pytest.raises(ValueError, match="lowest first"):
        tiers_parse("Gold:500:1.2,Green:0:1")
    with pytest.raises(ValueError, match="multiplier above 0"):
        tiers_parse("Gold:500:0")


# --- the portal page ----------------------------------------------------------------------------------

SIMULATE = {"start": "2026-01-01", "end": "2026-03-31", "tiers_mode": "none", "expiry_mode": "keep", "rate": "10"}


@pytest.fixture
def staff(coffee):
    return BrandStaffFactory(brand=coffee).user


def test_the_portal_simulator_shows_both_rule_sets_side_by_side_with_a_chart(client, coffee, staff):
    expiry_set(coffee, 1)
    live_history(coffee)
    client.force_login(staff)

    blank = client.get(reverse("economics_simulator"))
    page = client.get(reverse("economics_simulator"), SIMULATE)

    assert blank.status_code == 200 and blank.context["comparison"] is None
    assert page.status_code == 200
    rows = {label: (current, other) for label, current, other in page.context["rows"]}
    assert rows["Points issued"] == ("817", "7,905")
    assert rows["Members in All members"] == ("", "3")
    chart = json.loads(page.context["chart"])
    assert chart["labels"] == ["Jan 2026", "Feb 2026", "Mar 2026"]
    assert [dataset["data"] for dataset in chart["datasets"]] == [[775, 75, -33], [7505, 755, -355]]
    html = page.content.decode()
    assert 'data-testid="chart-simulation"' in html and "Points per unit" in html


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-03-01", "end": "2026-01-01"}, "start"),
        ({"start": "2026-02-30"}, "start"),
        ({"tiers_mode": "custom", "tiers": "Gold:lots:2"}, "tiers"),
        ({"tiers_mode": "custom", "tiers": ""}, "tiers"),
        ({"expiry_mode": "months", "expire_months": ""}, "expire_months"),
        ({"rate": "-1"}, "rate"),
    ],
)
def test_bad_simulator_input_is_shown_on_the_form_and_nothing_runs(client, coffee, staff, query, field):
    client.force_login(staff)

    page = client.get(reverse("economics_simulator"), {**SIMULATE, **query})

    assert page.status_code == 200
    assert field in page.context["form"].errors
    assert page.context["comparison"] is None
    assert f'data-testid="error-{field}"' in page.content.decode()


def test_staff_simulate_only_their_own_brand(client, coffee):
    live_history(coffee)
    other = BrandFactory(slug="other", name="Other")
    EarnRule.objects.create(brand=other, event_type="purchase", points_per_unit=Decimal(1), currency="USD")
    client.force_login(BrandStaffFactory(brand=other).user)

    page = client.get(reverse("economics_simulator"), {**SIMULATE, "brand": "coffee"})

    assert page.context["brand"] == other
    assert (page.context["comparison"].events, page.context["comparison"].current.issued) == (0, 0)


def test_a_login_without_a_brand_gets_no_simulator(client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(reverse("economics_simulator")).status_code == 404
