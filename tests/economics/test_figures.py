"""The economics report's figures, computed from the rollups the posting path keeps, against hand-computed
ones and against the ledger itself."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from economics import selectors
from ledger.models import Account, Balance
from loyalty.models import Brand, DailyEvents, DailyPoints, MemberWeek, WeeklyActive
from perks.demo import COFFEE_MENU
from perks.models import Perk
from perks.services import perk_redeem, redemption_cancel
from tests.loyalty.lifecycle import buy, expiry_set, membership_of, on, refund, run_lifecycle

pytestmark = pytest.mark.django_db

A = {"email": "a@example.com"}
B = {"email": "b@example.com"}


def menu_load(brand: Brand) -> dict[str, Perk]:
    perks = {}
    for cost, name, _description, category, value in COFFEE_MENU:
        perks[name] = Perk.objects.create(
            brand=brand,
            name=name,
            cost=cost,
            category=category,
            cash_value=Decimal(value) if value else None,
            cash_currency="USD" if value else "",
        )
    return perks


def wallets_total(brand: Brand) -> int:
    """What the brand's members hold, summed over their ledger accounts (the slow way)."""
    kinds = [Account.Kind.WALLET, Account.Kind.PENDING]
    accounts = Balance.objects.filter(account__code__startswith=f"brand:{brand.pk}:", account__kind__in=kinds)
    return sum(accounts.values_list("balance", flat=True))


def test_the_coffee_menu_values_a_star_at_a_thirtieth_of_a_dollar_and_returns_the_seeds_rates(coffee):
    menu_load(coffee)

    value = selectors.point_value(coffee)
    rates = {tier.name: tier.return_rate for tier in selectors.tier_return_rates(coffee, value.value)}

    assert (value.value, value.currency, value.source) == (Decimal(2) / Decimal(60), "USD", "menu")
    assert rates == {"Green": Decimal("3.33"), "Gold": Decimal("4.00"), "Reserve": Decimal("5.67")}


def test_a_brands_own_point_value_overrides_its_menu(coffee):
    menu_load(coffee)
    coffee.point_value = Decimal("0.05")
    coffee.save()

    value = selectors.point_value(coffee)

    assert (value.value, value.source) == (Decimal("0.05"), "override")
    assert selectors.tier_return_rates(coffee, value.value)[0].return_rate == Decimal("5.00")


def test_a_brand_with_no_valued_perk_has_no_point_value_and_no_return_rate(coffee):
    value = selectors.point_value(coffee)

    assert (value.value, value.source) == (None, "none")
    assert [tier.return_rate for tier in selectors.tier_return_rates(coffee, None)] == [None, None, None]


def history(coffee: Brand) -> dict[str, Perk]:
    """January: A buys $100, B buys $600 (reaching Gold at the old rate) and $100 at 1.2x; the next day
    A returns $50 and B takes "$2 off" (60 Stars). Stars then last one month after their month."""
    perks = menu_load(coffee)
    with on("2026-01-10"):
        buy(coffee, "a-1", "100.00", A)
        buy(coffee, "b-1", "600.00", B)
        buy(coffee, "b-2", "100.00", B)
    with on("2026-01-11"):
        refund(coffee, "a-1", "50.00", A)
        perk_redeem(membership=membership_of(coffee, B["email"]), perk=perks["$2 off"], request_key="b-coffee")
    return perks


def test_realised_figures_equal_hand_computed_ones_and_the_ledger(coffee):
    history(coffee)

    january = selectors.figures(coffee, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31))

    assert january.issued == 100 + 600 + 120 - 50
    assert january.redeemed == 60
    assert january.expired == 0
    assert january.spend == Decimal("750.00")
    assert january.redeemed_value == Decimal("2.00")
    assert january.outstanding == 710 == wallets_total(coffee) == selectors.outstanding_now(coffee)
    assert january.liability == Decimal("23.67")  # 710 x $2/60
    assert january.cost_pct_of_revenue == Decimal("0.27")  # $2 of $750
    assert january.redemption_rate == Decimal("7.79")  # 60 of 770
    assert january.breakage_rate == Decimal("0.00")
    assert january.projected_breakage == 0  # nothing has ever expired here
    by_tier = {row.name: row for row in january.by_tier}
    assert (by_tier["Green"].issued, by_tier["Green"].spend) == (650, Decimal("650.00"))  # A's refund: Green
    assert (by_tier["Gold"].issued, by_tier["Gold"].spend, by_tier["Gold"].redeemed) == (120, Decimal("100.00"), 60)
    assert by_tier["Gold"].return_rate == Decimal("4.00")
    assert [(day["day"], day["issued"], day["redeemed"]) for day in january.days] == [
        (dt.date(2026, 1, 10), 820, 0),
        (dt.date(2026, 1, 11), -50, 60),
    ]


def test_expiry_counts_as_breakage_and_the_outstanding_points_at_a_range_end_are_what_members_held_then(coffee):
    history(coffee)
    expiry_set(coffee, 1)

    run_lifecycle(coffee, "2026-03-05")  # January's Stars expired at the end of February

    quarter = selectors.figures(coffee, start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31))
    january = selectors.figures(coffee, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31))
    assert (quarter.issued, quarter.redeemed, quarter.expired, quarter.outstanding) == (770, 60, 710, 0)
    assert quarter.breakage_rate == Decimal("92.21")  # 710 of 770
    assert quarter.outstanding == wallets_total(coffee) == 0
    assert january.outstanding == 710  # before the expiry
    assert january.projected_breakage == 710 * 710 // (60 + 710)  # what expired of the points settled so far


def test_the_rollups_count_each_active_member_once_a_week_and_every_event_outcome(coffee):
    history(coffee)
    with on("2026-01-12"):  # the Monday after: a new week
        buy(coffee, "a-2", "10.00", A)
        buy(coffee, "x-1", "10.00", {"email": "x@example.com"})
        buy(coffee, "x-2", "5.00", {"email": "x@example.com"})

    weeks = dict(WeeklyActive.objects.filter(brand=coffee).values_list("week").annotate(n=Sum("members")))

    assert weeks == {dt.date(2026, 1, 5): 2, dt.date(2026, 1, 12): 2}
    assert MemberWeek.objects.count() == 4
    events = {
        (row.type, row.status, row.tier_name): (row.events, row.amount)
        for row in DailyEvents.objects.filter(brand=coffee, day=dt.date(2026, 1, 10))
    }
    assert events == {
        ("purchase", "awarded", "Green"): (2, Decimal("700.00")),
        ("purchase", "awarded", "Gold"): (1, Decimal("100.00")),
    }
    assert DailyPoints.objects.filter(brand=coffee, kind="redeemed").get().value == Decimal("2.00")


def test_a_cancelled_redemption_gives_back_its_points_and_its_value(coffee):
    history(coffee)
    redemption = membership_of(coffee, B["email"]).redemptions.get()

    with on("2026-01-12"):
        redemption_cancel(redemption=redemption)

    january = selectors.figures(coffee, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31))
    assert (january.redeemed, january.redeemed_value, january.outstanding) == (0, Decimal("0.00"), 770)
    assert january.outstanding == wallets_total(coffee)
