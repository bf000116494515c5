"""Real threads on real PostgreSQL connections: what the locks, the key claim and the fences promise."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import OperationalError

from ledger.errors import InsufficientBalanceError
from ledger.models import Entry, Transaction
from ledger.selectors import account_balance_get
from ledger.services import transaction_post
from tests.concurrency import run_concurrently
from tests.ledger.factories import IssuanceFactory, RedemptionsFactory, WalletFactory, earn, spend
from tests.ledger.helpers import ledger_problems

pytestmark = pytest.mark.django_db(transaction=True)


def _reconcile_is_clean() -> bool:
    out = io.StringIO()
    call_command("reconcile", "--no-progress", stdout=out)  # raises CommandError on any difference
    return "every balance matches" in out.getvalue()


def test_fifty_concurrent_spends_from_one_balance_give_exactly_the_affordable_number():
    issuance, wallet, redemptions = IssuanceFactory(), WalletFactory(), RedemptionsFactory()
    earn(issuance=issuance, wallet=wallet, amount=7 * 10)  # affords exactly 7 spends of 10

    results = run_concurrently(
        lambda n: spend(wallet=wallet, redemptions=redemptions, amount=10, key=f"spend-{n}"), callers=50
    )

    successes = [result for result in results if not isinstance(result, Exception)]
    refusals = [result for result in results if isinstance(result, InsufficientBalanceError)]
    assert len(successes) == 7
    assert len(refusals) == 43, [result for result in results if isinstance(result, Exception)][:3]
    assert account_balance_get(wallet).balance == 0
    assert account_balance_get(redemptions).balance == 70
    assert Transaction.objects.filter(kind="redeem").count() == 7  # refusals left nothing behind
    assert ledger_problems() == []
    assert _reconcile_is_clean()


def test_a_hundred_concurrent_postings_with_one_key_make_one_transaction():
    issuance, wallet = IssuanceFactory(), WalletFactory()

    results = run_concurrently(
        lambda n: transaction_post(idempotency_key="pos-7:order-1", kind="earn", entries=[(issuance, -5), (wallet, 5)]),
        callers=100,
    )

    assert not [result for result in results if isinstance(result, Exception)]
    assert len({result.transaction.pk for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert Transaction.objects.count() == 1
    assert Entry.objects.count() == 2
    assert account_balance_get(wallet).balance == 5
    assert ledger_problems() == []


def test_postings_touching_the_same_accounts_in_opposite_orders_never_deadlock():
    issuance, left, right = IssuanceFactory(), WalletFactory(), WalletFactory()
    earn(issuance=issuance, wallet=left, amount=1000)
    earn(issuance=issuance, wallet=right, amount=1000)

    def shuttle(n: int) -> int:
        done = 0
        for i in range(12):
            # Even callers list left first, odd callers right first; each moves 1 point each way.
            a, b = (left, right) if n % 2 == 0 else (right, left)
            transaction_post(idempotency_key=f"shuttle-{n}-{i}-ab", kind="transfer", entries=[(a, -1), (b, 1)])
            transaction_post(idempotency_key=f"shuttle-{n}-{i}-ba", kind="transfer", entries=[(a, 1), (b, -1)])
            done += 2
        return done

    results = run_concurrently(shuttle, callers=16)

    deadlocks = [result for result in results if isinstance(result, OperationalError)]
    assert not deadlocks, deadlocks[0]
    assert results == [24] * 16
    assert account_balance_get(left).balance == 1000
    assert account_balance_get(right).balance == 1000
    assert Transaction.objects.filter(kind="transfer").count() == 16 * 24
    assert _reconcile_is_clean()
