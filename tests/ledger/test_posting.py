from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from ledger.errors import AccountConflictError, InsufficientBalanceError, InvalidPostingError
from ledger.hashing import GENESIS_HASH, entry_hash
from ledger.models import Account, Balance, Entry, Transaction
from ledger.rollups import balances_roll_up
from ledger.selectors import account_balance_get
from ledger.services import Leg, account_get_or_create, transaction_post
from ledger.signals import transactions_posted
from tests.ledger.factories import UNIT, WalletFactory, earn, next_key, spend
from tests.ledger.helpers import ledger_problems

pytestmark = pytest.mark.django_db


def test_posting_writes_entries_and_rolls_up_every_balance_field(issuance, wallet, redemptions):
    earn(issuance=issuance, wallet=wallet, amount=100)
    spend(wallet=wallet, redemptions=redemptions, amount=30)

    row = account_balance_get(wallet)
    assert (row.balance, row.total_credited, row.total_debited, row.entry_count, row.head_seq) == (70, 100, 30, 2, 2)
    last = Entry.objects.get(account=wallet, seq=2)
    assert row.head_hash == last.hash
    assert account_balance_get(issuance.code).balance == -100
    assert account_balance_get(redemptions).balance == 30
    assert ledger_problems() == []


def test_entries_are_chained_per_account_with_recomputable_hashes(issuance, wallet):
    first = earn(issuance=issuance, wallet=wallet, amount=5).transaction
    second = earn(issuance=issuance, wallet=wallet, amount=7).transaction

    one, two = Entry.objects.filter(account=wallet).order_by("seq")
    assert (one.seq, one.prev_hash, one.transaction_id) == (1, GENESIS_HASH, first.pk)
    assert (two.seq, two.prev_hash, two.transaction_id) == (2, one.hash, second.pk)
    assert two.hash == entry_hash(
        idempotency_key=second.idempotency_key,
        account_code=wallet.code,
        amount=7,
        seq=2,
        created_at=two.created_at,
        prev_hash=one.hash,
    )


def test_posting_accepts_legs_and_several_entries_on_one_account(issuance, wallet):
    other = WalletFactory()
    transaction_post(
        idempotency_key=next_key(),
        kind="earn",
        entries=[Leg(issuance, -10), Leg(wallet, 4), Leg(other, 3), Leg(wallet, 3)],
    )
    row = account_balance_get(wallet)
    assert (row.balance, row.entry_count, row.head_seq) == (7, 2, 2)
    assert ledger_problems() == []


@pytest.mark.parametrize(
    ("amounts", "message"),
    [
        ([100], "at least two"),
        ([100, -99], "sum to zero"),
        ([0, 0], "never zero"),
        ([1.5, -1.5], "whole numbers"),
        ([True, -1], "whole numbers"),
        ([2**63, -(2**63)], "out of range"),
    ],
)
def test_malformed_postings_are_refused_before_touching_the_database(issuance, wallet, amounts, message):
    accounts = [wallet, issuance]
    with pytest.raises(InvalidPostingError, match=message) as caught:
        transaction_post(idempotency_key=next_key(), kind="earn", entries=list(zip(accounts, amounts, strict=False)))
    assert caught.value.code == "invalid_posting"
    assert caught.value.status_code == 400
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_idempotency_key_must_be_1_to_255_characters(issuance, wallet, key):
    with pytest.raises(InvalidPostingError):
        transaction_post(idempotency_key=key, kind="earn", entries=[(issuance, -1), (wallet, 1)])


def test_all_entries_of_a_transaction_must_be_in_one_unit(issuance):
    other_unit = account_get_or_create(code="x:wallet", kind="wallet", unit="points:other")
    with pytest.raises(InvalidPostingError, match="one unit"):
        transaction_post(idempotency_key=next_key(), kind="earn", entries=[(issuance, -1), (other_unit, 1)])
    assert not Transaction.objects.exists()


def test_spending_more_than_the_wallet_holds_is_refused_with_what_is_missing(issuance, wallet, redemptions):
    earn(issuance=issuance, wallet=wallet, amount=40)

    with pytest.raises(InsufficientBalanceError) as caught:
        spend(wallet=wallet, redemptions=redemptions, amount=55)

    assert caught.value.code == "insufficient_balance"
    assert caught.value.status_code == 422
    assert caught.value.extra == {"missing": 15}
    assert caught.value.account_code == wallet.code
    assert account_balance_get(wallet).balance == 40


def test_accounts_that_allow_negative_may_go_below_zero(issuance, wallet):
    earn(issuance=issuance, wallet=wallet, amount=10)
    assert account_balance_get(issuance).balance == -10


def test_account_get_or_create_creates_the_balance_row_once_and_returns_the_same_account():
    first = account_get_or_create(code="b:1:wallet:1", kind="wallet", unit=UNIT)
    again = account_get_or_create(code="b:1:wallet:1", kind="wallet", unit=UNIT)

    assert first == again
    assert Balance.objects.filter(account=first).count() == 1
    assert account_balance_get(first).balance == 0


def test_account_get_or_create_refuses_an_existing_code_with_other_attributes():
    account_get_or_create(code="b:1:wallet:2", kind="wallet", unit=UNIT)
    with pytest.raises(AccountConflictError):
        account_get_or_create(code="b:1:wallet:2", kind="wallet", unit=UNIT, allow_negative=True)
    with pytest.raises(InvalidPostingError):
        account_get_or_create(code="b:1:nope", kind="nope", unit=UNIT)


def test_an_account_made_without_the_service_gets_its_balance_row_on_first_posting(issuance):
    bare = Account.objects.create(code="bare:wallet", kind="wallet", unit=UNIT)
    assert account_balance_get(bare).balance == 0

    earn(issuance=issuance, wallet=bare, amount=3)

    assert account_balance_get(bare).balance == 3


def test_account_code_and_unit_never_change_but_allow_negative_follows_to_the_balance_row(wallet):
    with pytest.raises(IntegrityError, match="never change"), transaction.atomic():
        Account.objects.filter(pk=wallet.pk).update(code="renamed")
    with pytest.raises(IntegrityError, match="never change"), transaction.atomic():
        Account.objects.filter(pk=wallet.pk).update(unit="points:other")

    Account.objects.filter(pk=wallet.pk).update(allow_negative=True)
    assert Balance.objects.get(pk=wallet.pk).allow_negative is True


def test_an_account_below_zero_cannot_be_made_non_negative(issuance, wallet):
    Account.objects.filter(pk=issuance.pk).update(allow_negative=False)  # at zero: allowed
    Account.objects.filter(pk=issuance.pk).update(allow_negative=True)
    earn(issuance=issuance, wallet=wallet, amount=5)

    with pytest.raises(IntegrityError, match="ledger_balance_not_overdrawn"), transaction.atomic():
        Account.objects.filter(pk=issuance.pk).update(allow_negative=False)
    assert Balance.objects.get(pk=issuance.pk).allow_negative is True


def test_transactions_posted_is_sent_inside_the_atomic_block_with_transaction_and_entries(issuance, wallet):
    seen = []

    def receiver(sender, *, posted, **kwargs):
        seen.append((sender, posted, connection.in_atomic_block))
        # The ledger's own rollup has already run when a receiver looks.
        seen.append(account_balance_get(wallet).balance)

    transactions_posted.connect(receiver, dispatch_uid="test-receiver")
    try:
        posted = earn(issuance=issuance, wallet=wallet, amount=8).transaction
        earn(issuance=issuance, wallet=wallet, amount=8, key=posted.idempotency_key)  # a replay sends nothing
    finally:
        transactions_posted.disconnect(dispatch_uid="test-receiver")

    (sender, results, in_atomic), balance = seen
    assert sender is Transaction
    [result] = results
    assert result.transaction.pk == posted.pk
    assert [(entry.account.code, entry.amount, entry.pk is not None) for entry in result.entries] == [
        (issuance.code, -8, True),
        (wallet.code, 8, True),
    ]
    assert in_atomic
    assert balance == 8


def test_a_receiver_that_raises_refuses_the_whole_posting(issuance, wallet):
    def receiver(sender, **kwargs):
        raise RuntimeError("higher app says no")

    transactions_posted.connect(receiver, dispatch_uid="test-refuser")
    try:
        with pytest.raises(RuntimeError, match="higher app says no"):
            earn(issuance=issuance, wallet=wallet, amount=8, key="refused-by-receiver")
    finally:
        transactions_posted.disconnect(dispatch_uid="test-refuser")

    assert not Transaction.objects.filter(idempotency_key="refused-by-receiver").exists()
    assert not Entry.objects.exists()
    assert account_balance_get(wallet).balance == 0


def test_the_rollup_receiver_itself_refuses_an_overdraft_or_a_chain_that_does_not_start_at_the_head(issuance, wallet):
    # Second line of defence, for a poster that skipped the locks and checks: the conditional UPDATE.
    earn(issuance=issuance, wallet=wallet, amount=10)

    def entries(amount: int, seq: int) -> list[Entry]:
        return [
            Entry(account=wallet, amount=-amount, seq=seq, hash="a" * 64),
            Entry(account=issuance, amount=amount, seq=seq, hash="b" * 64),
        ]

    with pytest.raises(InsufficientBalanceError) as caught, transaction.atomic():
        balances_roll_up(entries=entries(11, 2))
    assert caught.value.missing == 1
    with pytest.raises(RuntimeError, match="changed while locked"), transaction.atomic():
        balances_roll_up(entries=entries(1, 5))
    assert account_balance_get(wallet).balance == 10
