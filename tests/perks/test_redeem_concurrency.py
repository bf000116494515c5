"""No double spend, no overselling, limits hold: 50 / 20 / 10 attempts at once on separate connections."""

import uuid

import pytest
from django.core.management import call_command

from config.errors import ApplicationError
from ledger.selectors import account_balance_get
from loyalty.models import Membership
from perks.models import Perk, Redemption
from perks.services import perk_redeem, redemption_cancel
from tests.concurrency import run_concurrently
from tests.perks.factories import PerkFactory, funded_membership

pytestmark = pytest.mark.django_db(transaction=True)


def attempt_all(calls):
    """Run each call on its own thread and connection, all at once; return "ok" or each refusal's code."""

    def run(index):
        calls[index]()
        return "ok"

    outcomes = run_concurrently(run, len(calls))
    for outcome in outcomes:
        if isinstance(outcome, Exception) and not isinstance(outcome, ApplicationError):
            raise outcome
    return [outcome.code if isinstance(outcome, ApplicationError) else outcome for outcome in outcomes]


def wallet_balance(membership) -> int:
    return account_balance_get(Membership.objects.get(pk=membership.pk).wallet).balance


def test_50_concurrent_redemptions_issue_exactly_as_many_as_the_balance_pays_for():
    membership = funded_membership(points=7 * 30 + 29)  # enough for k = 7 perks of 30
    perk = PerkFactory(brand=membership.brand, cost=30)

    outcomes = attempt_all(
        [lambda: perk_redeem(membership=membership, perk=perk, request_key=uuid.uuid4().hex) for _ in range(50)]
    )

    assert outcomes.count("ok") == 7
    assert set(outcomes) == {"ok", "insufficient_points"}
    assert Redemption.objects.count() == 7
    assert wallet_balance(membership) == 29
    call_command("reconcile")  # raises SystemExit(1) on any difference between a balance and its entries


def test_stock_of_one_and_20_members_at_once_sells_exactly_one():
    perk = PerkFactory(cost=10, stock=1)
    members = [funded_membership(brand=perk.brand, points=10) for _ in range(20)]

    outcomes = attempt_all(
        [lambda m=m: perk_redeem(membership=m, perk=perk, request_key=uuid.uuid4().hex) for m in members]
    )

    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "out_of_stock"}
    assert Perk.objects.get(pk=perk.pk).stock == 0
    assert sum(wallet_balance(m) for m in members) == 19 * 10


def test_a_limit_of_one_per_member_with_10_attempts_at_once_gives_one():
    membership = funded_membership(points=1000)
    perk = PerkFactory(brand=membership.brand, cost=10, limit_total=1)

    outcomes = attempt_all(
        [lambda: perk_redeem(membership=membership, perk=perk, request_key=uuid.uuid4().hex) for _ in range(10)]
    )

    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "limit_reached"}
    assert wallet_balance(membership) == 990


def test_concurrent_double_cancel_refunds_once_and_returns_stock_once():
    membership = funded_membership(points=100)
    perk = PerkFactory(brand=membership.brand, cost=40, stock=5)
    redemption = perk_redeem(membership=membership, perk=perk, request_key="r").redemption

    outcomes = attempt_all([lambda: redemption_cancel(redemption=redemption) for _ in range(2)])

    assert outcomes == ["ok", "ok"]  # the second finds it cancelled already: same answer, nothing more
    assert wallet_balance(membership) == 100
    assert Perk.objects.get(pk=perk.pk).stock == 5
    assert Membership.objects.get(pk=membership.pk).lifetime_redeemed == 0


def test_the_same_request_key_at_once_redeems_once():
    membership = funded_membership(points=100)
    perk = PerkFactory(brand=membership.brand, cost=10)

    attempt_all([lambda: perk_redeem(membership=membership, perk=perk, request_key="double-click")] * 10)

    assert Redemption.objects.count() == 1
    assert wallet_balance(membership) == 90
