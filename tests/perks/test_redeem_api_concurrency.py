"""POST /api/v1/redemptions under real concurrency: threads, each with its own connection, released at
once. In one process, concurrent redemptions of a brand are made in batches (perks.batching): these
tests check that batches keep every guarantee of one-at-a-time redemptions."""

import threading

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from ledger.selectors import account_balance_get
from loyalty.models import IdempotencyRecord, Membership
from perks import services
from perks.models import Perk, Redemption
from tests.concurrency import run_concurrently
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandFactory
from tests.perks.factories import PerkFactory, funded_membership
from tests.statements import statements_sent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def batch_sizes(monkeypatch):
    """The size of every batch made while the test runs (to check that batches did form)."""
    sizes, lock, make = [], threading.Lock(), services.redemptions_make

    def spy(**kwargs):
        with lock:
            sizes.append(len(kwargs["requests"]))
        return make(**kwargs)

    monkeypatch.setattr(services, "redemptions_make", spy)
    return sizes


def poster(brand):
    key = api_client_for(brand).api_key

    def post(email, perk, idempotency_key):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.plain_key}")
        response = client.post(
            "/api/v1/redemptions",
            {"member": {"email": email}, "perk": perk.pk},
            format="json",
            HTTP_IDEMPOTENCY_KEY=idempotency_key,
        )
        return response.status_code, response.json(), response.get("Idempotent-Replayed")

    return post


def balance(membership) -> int:
    return account_balance_get(Membership.objects.get(pk=membership.pk).wallet).balance


def outcome(answer) -> str:
    status, body, _ = answer
    return "ok" if status == 201 else body["error"]["code"]


def test_50_redemptions_of_one_member_at_once_spend_exactly_what_the_balance_pays_for(batch_sizes):
    brand = BrandFactory()
    ann = funded_membership(brand=brand, points=7 * 30 + 29, member__email="ann@example.com")
    perk = PerkFactory(brand=brand, cost=30)
    post = poster(brand)

    answers = run_concurrently(lambda n: post("ann@example.com", perk, f"k-{n}"), 50)

    outcomes = [outcome(answer) for answer in answers]
    assert outcomes.count("ok") == 7
    assert set(outcomes) == {"ok", "insufficient_points"}
    assert balance(ann) == 29
    assert Redemption.objects.count() == 7
    assert Membership.objects.get(pk=ann.pk).lifetime_redeemed == 210
    assert sorted(body["balance"] for status, body, _ in answers if status == 201) == [29, 59, 89, 119, 149, 179, 209]
    assert max(batch_sizes) > 1
    call_command("reconcile")
    call_command("verify_ledger")


def test_a_stock_of_5_and_40_members_at_once_sells_exactly_5(batch_sizes):
    brand = BrandFactory()
    perk = PerkFactory(brand=brand, cost=10, stock=5)
    members = [funded_membership(brand=brand, points=10, member__email=f"m{n}@example.com") for n in range(40)]
    post = poster(brand)

    answers = run_concurrently(lambda n: post(f"m{n}@example.com", perk, f"k-{n}"), 40)

    outcomes = [outcome(answer) for answer in answers]
    assert outcomes.count("ok") == 5
    assert set(outcomes) == {"ok", "out_of_stock"}
    assert Perk.objects.get(pk=perk.pk).stock == 0
    assert Redemption.objects.count() == 5
    assert sum(balance(member) for member in members) == 35 * 10
    assert all(balance(member) >= 0 for member in members)
    assert max(batch_sizes) > 1
    call_command("reconcile")


def test_one_member_many_perks_low_stock_and_a_limit_at_once_never_oversell_or_overdraw():
    brand = BrandFactory()
    rich = funded_membership(brand=brand, points=1000, member__email="rich@example.com")
    poor = funded_membership(brand=brand, points=25, member__email="poor@example.com")
    scarce = PerkFactory(brand=brand, cost=10, stock=3)
    limited = PerkFactory(brand=brand, cost=5, limit_per_day=2)
    post = poster(brand)
    plan = [(email, perk) for email in ("rich@example.com", "poor@example.com") for perk in (scarce, limited)] * 8

    answers = run_concurrently(lambda n: post(plan[n][0], plan[n][1], f"k-{n}"), len(plan))

    assert {outcome(answer) for answer in answers} <= {"ok", "out_of_stock", "limit_reached", "insufficient_points"}
    assert Perk.objects.get(pk=scarce.pk).stock == 3 - Redemption.objects.filter(perk=scarce).count() >= 0
    for member in (rich, poor):
        assert Redemption.objects.filter(membership=member, perk=limited).count() <= 2
        spent = sum(Redemption.objects.filter(membership=member).values_list("cost", flat=True))
        assert balance(member) == (1000 if member == rich else 25) - spent >= 0
    call_command("reconcile")


def test_the_same_key_and_request_from_20_threads_redeems_once_and_all_hear_the_same_answer():
    brand = BrandFactory()
    ann = funded_membership(brand=brand, points=100, member__email="ann@example.com")
    perk = PerkFactory(brand=brand, cost=10, stock=10)
    post = poster(brand)

    answers = run_concurrently(lambda n: post("ann@example.com", perk, "double-click"), 20)

    assert {status for status, _, _ in answers} == {201}
    assert len({repr(sorted(body.items())) for _, body, _ in answers}) == 1
    assert [replayed for _, _, replayed in answers].count(None) == 1  # the one that made it; the others replay
    assert Redemption.objects.count() == 1
    assert balance(ann) == 90
    assert Perk.objects.get(pk=perk.pk).stock == 9


def test_the_same_key_with_different_requests_at_once_makes_one_and_refuses_the_others():
    brand = BrandFactory()
    for n in range(10):
        funded_membership(brand=brand, points=100, member__email=f"m{n}@example.com")
    perk = PerkFactory(brand=brand, cost=10)
    post = poster(brand)

    answers = run_concurrently(lambda n: post(f"m{n}@example.com", perk, "shared-key"), 10)

    assert sorted(outcome(answer) for answer in answers) == ["idempotency_conflict"] * 9 + ["ok"]
    assert Redemption.objects.count() == 1
    assert IdempotencyRecord.objects.get(key="shared-key").response_status == 201


def test_redeeming_and_cancelling_over_the_api_at_once_refunds_each_cancel_once():
    brand = BrandFactory()
    perk = PerkFactory(brand=brand, cost=5, stock=50)
    members = [funded_membership(brand=brand, points=50, member__email=f"m{n}@example.com") for n in range(6)]
    post = poster(brand)
    issued = [post(f"m{n}@example.com", perk, f"first-{n}")[1]["id"] for n in range(6)]
    client = api_client_for(brand)

    def work(n):
        if n % 2:
            return client.post(f"/api/v1/redemptions/{issued[n % 6]}/cancel").status_code
        return post(f"m{n % 6}@example.com", perk, f"again-{n}")[0]

    statuses = run_concurrently(work, 36)

    assert set(statuses) <= {200, 201}
    live = Redemption.objects.exclude(status=Redemption.Status.CANCELLED)
    assert Perk.objects.get(pk=perk.pk).stock == 50 - live.count()
    for member in members:
        assert balance(member) == 50 - sum(live.filter(membership=member).values_list("cost", flat=True))
    call_command("reconcile")


def test_one_redemption_over_the_api_sends_a_fixed_number_of_statements():
    brand = BrandFactory()
    funded_membership(brand=brand, points=100, member__email="ann@example.com")
    perk = PerkFactory(brand=brand, cost=10, stock=10)
    post = poster(brand)
    post("ann@example.com", perk, "warm-up")  # prepares the statements on this connection

    with statements_sent() as sent:
        status, _, _ = post("ann@example.com", perk, "counted")

    assert status == 201
    # One transaction (the API key was checked by the warm-up, and the process remembers it for a few
    # seconds): lock the membership, read (and claim the key), take the stock, lock the balance rows,
    # post (the ledger's insert and rollup, the lifetime rollup, the look for the brand's integration
    # sinks: it has none, so no outbox message), insert the redemption and store the answer, commit. It
    # was 28 statements and 3 Redis round trips (the membership lock) before; it must not silently grow.
    assert len(sent) == 12, "\n".join(sent)
