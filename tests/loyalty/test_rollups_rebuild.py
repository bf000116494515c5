"""Rebuilding the economics rollups from the ledger and the events gives what the posting path kept."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from loyalty.models import DailyEvents, DailyPoints, EarnRule, MemberWeek, WeeklyActive
from loyalty.services.earning import adjustment_create
from loyalty.services.rollups import economics_rollups_rebuild
from perks.services import redemption_cancel
from tests.economics.test_figures import A, B, history
from tests.loyalty.events import accept, process
from tests.loyalty.factories import BrandFactory
from tests.loyalty.lifecycle import buy, expiry_set, membership_of, on, run_lifecycle

pytestmark = pytest.mark.django_db


def rollups(brand) -> dict:
    """Every rollup of the brand, with the shards added up (a rebuild writes shard 0 only)."""
    points = DailyPoints.objects.filter(brand=brand).values_list("day", "tier_name", "kind")
    events = DailyEvents.objects.filter(brand=brand).values_list("day", "type", "status", "reason", "tier_name")
    return {
        "points": set(points.annotate(Sum("points"), Sum("value"), Sum("transactions"))),
        "events": set(events.annotate(Sum("events"), Sum("amount"), Sum("points"))),
        "weeks": set(WeeklyActive.objects.filter(brand=brand).values_list("week").annotate(Sum("members"))),
        "member_weeks": Counter(MemberWeek.objects.filter(membership__brand=brand).values_list("membership", "week")),
    }


def test_a_rebuild_gives_exactly_what_the_posting_path_kept(coffee):
    history(coffee)
    with on("2026-01-12"):
        redemption_cancel(redemption=membership_of(coffee, B["email"]).redemptions.get())
        adjustment_create(membership=membership_of(coffee, A["email"]), points=7, reason="sorry", idempotency_key="a")
        accept(coffee, {"type": "purchase", "member": A, "order_id": "eur", "amount": "5.00", "currency": "EUR"})
        process(coffee)  # rejected: currency_mismatch
    with on("2026-02-03"):
        buy(coffee, "b-3", "40.00", B)
    expiry_set(coffee, 1)
    run_lifecycle(coffee, "2026-03-05")
    other = BrandFactory(slug="other")
    EarnRule.objects.create(brand=other, event_type="purchase", points_per_unit=2, currency="USD")
    buy(other, "o-1", "3.00", A)
    kept, kept_other = rollups(coffee), rollups(other)
    assert len(kept["points"]) >= 6 and len(kept["events"]) >= 4 and kept["weeks"]

    written = economics_rollups_rebuild(brand=coffee)

    assert rollups(coffee) == kept
    assert rollups(other) == kept_other  # another brand's rollups are left alone
    assert written["points"] == len(kept["points"])


def test_the_command_rebuilds_one_brand_or_refuses_an_unknown_one(coffee):
    history(coffee)
    DailyPoints.objects.filter(brand=coffee).delete()  # as if the history predated the rollups
    out = io.StringIO()

    call_command("rollups_rebuild", "--brand", "coffee", stdout=out)

    assert "coffee:" in out.getvalue()
    assert DailyPoints.objects.filter(brand=coffee, kind="issued").aggregate(n=Sum("points"))["n"] == 820
    with pytest.raises(CommandError, match="No brand"):
        call_command("rollups_rebuild", "--brand", "nope", stdout=io.StringIO())
