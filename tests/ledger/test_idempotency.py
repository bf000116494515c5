from __future__ import annotations

import pytest

from ledger.errors import IdempotencyConflictError, InsufficientBalanceError
from ledger.models import Balance, Entry, Transaction
from ledger.selectors import account_balance_get
from ledger.services import transaction_post
from tests.ledger.factories import WalletFactory, earn, spend

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        Transaction.objects.count(),
        Entry.objects.count(),
        sorted(Balance.objects.values_list("account_id", "balance", "entry_count", "head_hash")),
    )


def test_same_key_same_content_returns_the_original_and_writes_nothing(issuance, wallet):
    first = earn(issuance=issuance, wallet=wallet, amount=25, key="pos-1:order-9")
    before = _snapshot()

    again = transaction_post(
        idempotency_key="pos-1:order-9",
        kind="earn",
        # Same entries in another order, another memo and fresh metadata: still the same request.
        entries=[(wallet, 25), (issuance, -25)],
        memo="retried by the POS",
        metadata={"retried_at": "2025-01-01T10:00:00Z"},
    )

    assert first.created is True
    assert again.created is False
    assert again.transaction.pk == first.transaction.pk
    assert again.transaction.memo == ""
    assert _snapshot() == before


def test_same_key_different_content_is_a_conflict(issuance, wallet):
    earn(issuance=issuance, wallet=wallet, amount=25, key="order-10")
    other_wallet = WalletFactory()
    before = _snapshot()

    with pytest.raises(IdempotencyConflictError) as caught:
        earn(issuance=issuance, wallet=wallet, amount=26, key="order-10")
    assert caught.value.code == "idempotency_conflict"
    assert caught.value.status_code == 409

    with pytest.raises(IdempotencyConflictError):
        earn(issuance=issuance, wallet=other_wallet, amount=25, key="order-10")
    with pytest.raises(IdempotencyConflictError):
        earn(issuance=issuance, wallet=wallet, amount=25, key="order-10", kind="adjustment")
    assert _snapshot() == before


def test_a_refused_posting_writes_nothing_and_its_key_can_be_used_later(issuance, wallet, redemptions):
    earn(issuance=issuance, wallet=wallet, amount=10)
    before = _snapshot()

    with pytest.raises(InsufficientBalanceError):
        spend(wallet=wallet, redemptions=redemptions, amount=30, key="redeem-1")
    assert _snapshot() == before
    assert not Transaction.objects.filter(idempotency_key="redeem-1").exists()

    earn(issuance=issuance, wallet=wallet, amount=20)
    result = spend(wallet=wallet, redemptions=redemptions, amount=30, key="redeem-1")
    assert result.created is True
    assert account_balance_get(wallet).balance == 0


def test_a_retried_spend_returns_the_original_even_though_the_money_is_gone(issuance, wallet, redemptions):
    earn(issuance=issuance, wallet=wallet, amount=30)
    first = spend(wallet=wallet, redemptions=redemptions, amount=30, key="redeem-2")

    again = spend(wallet=wallet, redemptions=redemptions, amount=30, key="redeem-2")

    assert again.created is False
    assert again.transaction.pk == first.transaction.pk
    assert account_balance_get(wallet).balance == 0


def test_a_posting_key_that_would_not_fit_the_column_is_hashed_the_same_way_every_time():
    from ledger.services import IDEMPOTENCY_KEY_MAX, posting_key

    short, long, other = posting_key("p:1", "abc"), posting_key("p:1", "k" * 255), posting_key("p:1", "k" * 254 + "j")

    assert short == "p:1:abc"
    assert len(long) <= IDEMPOTENCY_KEY_MAX and long.startswith("p:1:sha256:")
    assert posting_key("p:1", "k" * 255) == long != other
