from __future__ import annotations

from fractions import Fraction

import pytest

from ledger.errors import (
    IdempotencyConflictError,
    InsufficientBalanceError,
    InvalidPostingError,
    ReversalExceedsRemainingError,
)
from ledger.models import Entry, Transaction
from ledger.selectors import account_balance_get, transaction_reversible_amounts
from ledger.services import transaction_post, transaction_reverse
from tests.ledger.factories import WalletFactory, earn, next_key, spend
from tests.ledger.helpers import ledger_problems

pytestmark = pytest.mark.django_db


@pytest.fixture
def earned(issuance, wallet):
    return earn(issuance=issuance, wallet=wallet, amount=100, key="order-1").transaction


def _amounts(txn: Transaction) -> dict[str, int]:
    return {entry.account.code: entry.amount for entry in txn.entries.select_related("account")}


def test_whole_reversal_posts_the_negated_entries_pointing_at_the_original(earned, issuance, wallet):
    result = transaction_reverse(original=earned, idempotency_key="refund-1", memo="order cancelled")

    reversal = result.transaction
    assert result.created is True
    assert (reversal.kind, reversal.reverses_id, reversal.memo) == ("reversal", earned.pk, "order cancelled")
    assert _amounts(reversal) == {issuance.code: 100, wallet.code: -100}
    assert account_balance_get(wallet).balance == 0
    assert account_balance_get(issuance).balance == 0
    assert transaction_reversible_amounts(original=earned) == {issuance.pk: 0, wallet.pk: 0}
    assert ledger_problems() == []


def test_partial_reversal_by_amounts_and_by_fraction(earned, issuance, wallet):
    transaction_reverse(original=earned, idempotency_key="refund-a", amounts={wallet: 30, issuance: -30})
    assert account_balance_get(wallet).balance == 70

    half = transaction_reverse(original=earned, idempotency_key="refund-b", fraction=Fraction(1, 2)).transaction
    assert _amounts(half) == {issuance.code: 50, wallet.code: -50}
    assert account_balance_get(wallet).balance == 20


def test_several_partial_reversals_add_up_to_the_whole_and_no_further(earned, issuance, wallet):
    for n, part in enumerate([10, 25, 65]):
        transaction_reverse(
            original=earned, idempotency_key=f"refund-{n}", amounts={wallet.code: part, issuance.code: -part}
        )

    assert account_balance_get(wallet).balance == 0
    assert transaction_reversible_amounts(original=earned) == {issuance.pk: 0, wallet.pk: 0}
    with pytest.raises(ReversalExceedsRemainingError):
        transaction_reverse(original=earned, idempotency_key="refund-too-many", amounts={wallet: 1, issuance: -1})
    with pytest.raises(ReversalExceedsRemainingError, match="Nothing is left"):
        transaction_reverse(original=earned, idempotency_key="refund-whole-again")


def test_a_partial_reversal_never_exceeds_what_is_left(earned, issuance, wallet):
    transaction_reverse(original=earned, idempotency_key="refund-60", amounts={wallet: 60, issuance: -60})
    before = Entry.objects.count()

    with pytest.raises(ReversalExceedsRemainingError) as caught:
        transaction_reverse(original=earned, idempotency_key="refund-41", amounts={wallet: 41, issuance: -41})
    with pytest.raises(ReversalExceedsRemainingError):
        transaction_reverse(original=earned, idempotency_key="refund-half", fraction="1/2")
    # Signs the other way would "reverse" by adding to the original: also more than what is left.
    with pytest.raises(ReversalExceedsRemainingError):
        transaction_reverse(original=earned, idempotency_key="refund-neg", amounts={wallet: -5, issuance: 5})

    assert caught.value.code == "reversal_exceeds_remaining"
    assert caught.value.status_code == 422
    assert Entry.objects.count() == before
    # What is left can still be reversed whole.
    transaction_reverse(original=earned, idempotency_key="refund-rest")
    assert account_balance_get(wallet).balance == 0


def test_posting_a_reversal_directly_is_held_to_the_same_limit(earned, issuance, wallet):
    with pytest.raises(ReversalExceedsRemainingError):
        transaction_post(
            idempotency_key=next_key(), kind="reversal", entries=[(wallet, -101), (issuance, 101)], reverses=earned
        )
    with pytest.raises(InvalidPostingError, match="original's accounts"):
        transaction_post(
            idempotency_key=next_key(),
            kind="reversal",
            entries=[(WalletFactory(), -1), (issuance, 1)],
            reverses=earned,
        )


def test_an_adjustment_that_points_at_a_transaction_is_not_counted_as_a_reversal(earned, issuance, wallet):
    transaction_post(
        idempotency_key=next_key(), kind="adjustment", entries=[(wallet, -100), (issuance, 100)], reverses=earned
    )
    assert transaction_reversible_amounts(original=earned) == {issuance.pk: -100, wallet.pk: 100}


def test_reversing_points_already_spent_is_refused_for_insufficient_balance(earned, wallet, redemptions):
    spend(wallet=wallet, redemptions=redemptions, amount=80)

    with pytest.raises(InsufficientBalanceError) as caught:
        transaction_reverse(original=earned, idempotency_key="refund-after-spend")

    assert caught.value.extra == {"missing": 80}
    assert not Transaction.objects.filter(idempotency_key="refund-after-spend").exists()


def test_a_retried_reversal_returns_the_first_even_though_nothing_is_left(earned, issuance, wallet):
    whole = transaction_reverse(original=earned, idempotency_key="refund-x")
    again = transaction_reverse(original=earned, idempotency_key="refund-x")
    assert (again.created, again.transaction.pk) == (False, whole.transaction.pk)

    other = earn(issuance=issuance, wallet=wallet, amount=10).transaction
    part = transaction_reverse(original=other, idempotency_key="refund-y", amounts={wallet: 10, issuance: -10})
    again = transaction_reverse(original=other, idempotency_key="refund-y", amounts={wallet: 10, issuance: -10})
    assert (again.created, again.transaction.pk) == (False, part.transaction.pk)


def test_a_reversal_key_reused_for_another_request_is_a_conflict(earned, issuance, wallet):
    transaction_reverse(original=earned, idempotency_key="refund-z", fraction=Fraction(1, 4))
    with pytest.raises(IdempotencyConflictError):
        transaction_reverse(original=earned, idempotency_key="refund-z", fraction=Fraction(1, 3))
    with pytest.raises(IdempotencyConflictError):
        transaction_reverse(original=earned, idempotency_key="refund-z")
    other = earn(issuance=issuance, wallet=wallet, amount=10).transaction
    with pytest.raises(IdempotencyConflictError):
        transaction_reverse(original=other, idempotency_key="refund-z", fraction=Fraction(1, 4))


def test_fraction_rounds_the_credited_side_down_and_keeps_the_reversal_balanced(issuance, redemptions):
    w0, w1, w2 = (WalletFactory() for _ in range(3))
    tiny = transaction_post(
        idempotency_key=next_key(), kind="earn", entries=[(issuance, -3), (w0, 1), (w1, 1), (w2, 1)]
    ).transaction
    with pytest.raises(InvalidPostingError, match="rounds down to nothing"):
        transaction_reverse(original=tiny, idempotency_key=next_key(), fraction=Fraction(1, 2))

    spread = transaction_post(
        idempotency_key=next_key(), kind="earn", entries=[(issuance, -10), (w0, 5), (w1, 3), (w2, 2)]
    ).transaction
    half = transaction_reverse(original=spread, idempotency_key=next_key(), fraction=Fraction(1, 2)).transaction
    # Each wallet gives back half, rounded down (2.5 -> 2, 1.5 -> 1, 1); issuance takes exactly that.
    assert _amounts(half) == {w0.code: -2, w1.code: -1, w2.code: -1, issuance.code: 4}

    # Spent from two wallets (3 and 1): the credited side (redemptions) gives back half of 4, rounded
    # down; the wallets share those 2 as 1.5 and 0.5, the leftover unit going to the largest remainder
    # (a tie here, so to the lower account id).
    split = transaction_post(
        idempotency_key=next_key(), kind="redeem", entries=[(w0, -3), (w2, -1), (redemptions, 4)]
    ).transaction
    back = transaction_reverse(original=split, idempotency_key=next_key(), fraction=Fraction(1, 2)).transaction
    assert _amounts(back) == {redemptions.code: -2, w0.code: 2}
    assert ledger_problems() == []


@pytest.mark.parametrize("fraction", [0, -1, 2, "abc"])
def test_a_fraction_must_be_more_than_zero_and_at_most_one(earned, fraction):
    with pytest.raises(InvalidPostingError):
        transaction_reverse(original=earned, idempotency_key=next_key(), fraction=fraction)
