"""transactions_post: many postings in one database transaction, with the guarantees of one."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from ledger import locks
from ledger.errors import IdempotencyConflictError, InsufficientBalanceError, ReversalExceedsRemainingError
from ledger.hashing import entry_hash
from ledger.models import Entry, Transaction
from ledger.selectors import account_balance_get
from ledger.services import Leg, Posting, transactions_post
from tests.concurrency import run_concurrently
from tests.ledger.factories import RedemptionsFactory, WalletFactory, earn, next_key
from tests.ledger.helpers import ledger_problems

pytestmark = pytest.mark.django_db


def earning(issuance, wallet, amount, key=None) -> Posting:
    return Posting(
        idempotency_key=key or next_key("earn"), kind="earn", entries=[(issuance, -amount), (wallet, amount)]
    )


def test_many_postings_chain_per_account_in_order_and_move_each_balance_once(issuance, wallet):
    other = WalletFactory()
    results = transactions_post(
        postings=[earning(issuance, wallet, 5), earning(issuance, other, 7), earning(issuance, wallet, 11)]
    )

    assert [result.created for result in results] == [True, True, True]
    assert account_balance_get(wallet).balance == 16
    assert account_balance_get(issuance).balance == -23
    chain = list(Entry.objects.filter(account=wallet).order_by("seq"))
    assert [(entry.seq, entry.amount) for entry in chain] == [(1, 5), (2, 11)]
    assert chain[1].prev_hash == chain[0].hash
    assert chain[1].hash == entry_hash(
        idempotency_key=results[2].transaction.idempotency_key,
        account_code=wallet.code,
        amount=11,
        seq=2,
        created_at=chain[1].created_at,
        prev_hash=chain[0].hash,
    )
    assert account_balance_get(wallet).head_hash == chain[1].hash
    assert ledger_problems() == []


def test_a_key_posted_before_comes_back_as_a_replay_without_a_gap_in_the_chain(issuance, wallet):
    first = earn(issuance=issuance, wallet=wallet, amount=5, key="known")

    results = transactions_post(
        postings=[earning(issuance, wallet, 3), earning(issuance, wallet, 5, key="known"), earning(issuance, wallet, 2)]
    )

    assert [result.created for result in results] == [True, False, True]
    assert results[1].transaction.pk == first.transaction.pk
    assert [entry.seq for entry in Entry.objects.filter(account=wallet).order_by("seq")] == [1, 2, 3]
    assert account_balance_get(wallet).balance == 10
    assert ledger_problems() == []


def test_a_key_posted_before_with_other_content_refuses_the_whole_call(issuance, wallet):
    earn(issuance=issuance, wallet=wallet, amount=5, key="known")

    with pytest.raises(IdempotencyConflictError):
        transactions_post(postings=[earning(issuance, wallet, 3), earning(issuance, wallet, 6, key="known")])

    assert Transaction.objects.count() == 1
    assert account_balance_get(wallet).balance == 5


def test_two_spends_in_one_call_cannot_both_take_the_last_points(issuance, wallet, redemptions):
    earn(issuance=issuance, wallet=wallet, amount=10)
    spends = [
        Posting(idempotency_key=next_key("spend"), kind="redeem", entries=[(wallet, -6), (redemptions, 6)])
        for _ in range(2)
    ]

    with pytest.raises(InsufficientBalanceError) as refused:
        transactions_post(postings=spends)

    assert refused.value.missing == 2
    assert account_balance_get(wallet).balance == 10
    assert Transaction.objects.count() == 1


def test_two_reversals_of_one_original_in_one_call_cannot_reverse_more_than_is_left(issuance, wallet):
    original = earn(issuance=issuance, wallet=wallet, amount=10).transaction

    def reversal(amount):
        return Posting(
            idempotency_key=next_key("reversal"),
            kind="reversal",
            entries=[(wallet, -amount), (issuance, amount)],
            reverses=original,
        )

    with pytest.raises(ReversalExceedsRemainingError):
        transactions_post(postings=[reversal(6), reversal(6)])
    transactions_post(postings=[reversal(6), reversal(4)])

    assert account_balance_get(wallet).balance == 0
    assert ledger_problems() == []


def test_rows_the_caller_locked_are_used_and_moved_on_for_a_second_call(issuance, wallet):
    with transaction.atomic():
        heads = locks.balances_lock(account_ids=[issuance.pk, wallet.pk])
        transactions_post(postings=[earning(heads[issuance.pk], heads[wallet.pk], 4)], locked=heads)
        assert (heads[wallet.pk].balance, heads[wallet.pk].head_seq) == (4, 1)
        transactions_post(postings=[earning(heads[issuance.pk], heads[wallet.pk], 3)], locked=heads)

    assert account_balance_get(wallet).balance == 7
    assert ledger_problems() == []


def test_rows_that_were_not_really_locked_are_refused_by_the_database(issuance, wallet):
    with transaction.atomic():
        stale = locks.balances_lock(account_ids=[issuance.pk, wallet.pk])
    earn(issuance=issuance, wallet=wallet, amount=5)  # the head moves on meanwhile

    # The entries chained onto the stale head collide with the entry posted meanwhile (account, seq).
    with pytest.raises(IntegrityError, match="ledger_entry_account_seq_unique"), transaction.atomic():
        transactions_post(postings=[earning(stale[issuance.pk], stale[wallet.pk], 3)], locked=stale)

    assert account_balance_get(wallet).balance == 5
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_batches_over_overlapping_accounts_posted_at_once_never_deadlock_or_overdraw():
    from tests.ledger.factories import IssuanceFactory

    issuance, redemptions = IssuanceFactory(), RedemptionsFactory()
    wallets = [WalletFactory() for _ in range(6)]
    for wallet in wallets:
        earn(issuance=issuance, wallet=wallet, amount=30)

    def post(n):
        # Each caller spends 10 from every wallet, listing them in its own order.
        order = wallets[n % 6 :] + wallets[: n % 6]
        return transactions_post(
            postings=[
                Posting(
                    idempotency_key=f"spend-{n}-{wallet.pk}",
                    kind="redeem",
                    entries=[Leg(wallet, -10), Leg(redemptions, 10)],
                )
                for wallet in order
            ]
        )

    results = run_concurrently(post, callers=8)

    done = [result for result in results if not isinstance(result, Exception)]
    refused = [result for result in results if isinstance(result, InsufficientBalanceError)]
    assert (len(done), len(refused)) == (3, 5), results
    assert all(account_balance_get(wallet).balance == 0 for wallet in wallets)
    assert ledger_problems() == []
