"""A model of the books in plain Python, run against the real ledger by Hypothesis.

Random earns, transfers, spends (some refused for insufficient balance), reversals (whole, by
fraction, by amounts, some refused for exceeding what is left) and replays of old keys, across a few
wallets. After every step an auditor checks the database as a whole: every balance row equals the sum
of its entries, every transaction has two or more entries summing to zero (the deferred triggers are
made to fire now with SET CONSTRAINTS ALL IMMEDIATE), no account that may not go negative is
negative, and the ledger agrees with the model on every balance and every accept/refuse decision.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from ledger.errors import InsufficientBalanceError, InvalidPostingError, ReversalExceedsRemainingError
from ledger.models import Account, Balance
from ledger.services import account_get_or_create, transaction_post, transaction_reverse
from tests.ledger.helpers import ledger_problems

UNIT = "points:model"
WALLETS = 4
_runs = itertools.count()


@dataclass
class Posted:
    """A two-legged transaction the model knows: `amount` moved from `debited` to `credited`."""

    key: str
    kind: str
    debited: int  # account id
    credited: int
    amount: int
    left: int  # what is left to reverse
    txn: object


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Each example runs in its own atomic block, rolled back at teardown: examples never see each other.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        run = next(_runs)
        self.issuance = account_get_or_create(code=f"m{run}:issuance", kind="issuance", unit=UNIT, allow_negative=True)
        self.redemptions = account_get_or_create(code=f"m{run}:redemptions", kind="redemptions", unit=UNIT)
        self.wallets = [
            account_get_or_create(code=f"m{run}:wallet:{n}", kind="wallet", unit=UNIT) for n in range(WALLETS)
        ]
        self.accounts: dict[int, Account] = {a.pk: a for a in [self.issuance, self.redemptions, *self.wallets]}
        self.balances = dict.fromkeys(self.accounts, 0)
        self.posted: list[Posted] = []
        self.keys = itertools.count()
        self.run = run

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    # --- the model's rules --------------------------------------------------------------------------

    def _may_go_negative(self, account_id: int) -> bool:
        return self.accounts[account_id].allow_negative

    def _move(self, kind: str, debited: Account, credited: Account, amount: int) -> None:
        key = f"m{self.run}:{kind}:{next(self.keys)}"
        affordable = self._may_go_negative(debited.pk) or self.balances[debited.pk] >= amount
        try:
            result = transaction_post(idempotency_key=key, kind=kind, entries=[(debited, -amount), (credited, amount)])
        except InsufficientBalanceError as refused:
            assert not affordable
            assert refused.missing == amount - self.balances[debited.pk]
            return
        assert affordable and result.created
        self.balances[debited.pk] -= amount
        self.balances[credited.pk] += amount
        self.posted.append(Posted(key, kind, debited.pk, credited.pk, amount, amount, result.transaction))

    @rule(wallet=st.integers(0, WALLETS - 1), amount=st.integers(1, 200))
    def earn(self, wallet: int, amount: int) -> None:
        self._move("earn", self.issuance, self.wallets[wallet], amount)

    @rule(source=st.integers(0, WALLETS - 1), destination=st.integers(0, WALLETS - 1), amount=st.integers(1, 200))
    def transfer(self, source: int, destination: int, amount: int) -> None:
        if source != destination:
            self._move("transfer", self.wallets[source], self.wallets[destination], amount)

    @rule(wallet=st.integers(0, WALLETS - 1), amount=st.integers(1, 120))
    def spend(self, wallet: int, amount: int) -> None:
        self._move("redeem", self.wallets[wallet], self.redemptions, amount)

    @precondition(lambda self: self.posted)
    @rule(
        data=st.data(),
        how=st.sampled_from(["whole", "fraction", "amounts"]),
        fraction=st.fractions(min_value=Fraction(1, 10), max_value=1, max_denominator=10),
        part=st.integers(1, 250),
    )
    def reverse(self, data, how: str, fraction: Fraction, part: int) -> None:
        original = data.draw(st.sampled_from(self.posted))
        key = f"m{self.run}:reversal:{next(self.keys)}"
        if how == "whole":
            amount, kwargs = original.left, {}
        elif how == "fraction":
            amount, kwargs = int(original.amount * fraction), {"fraction": fraction}  # rounds down
        else:
            amount = part
            kwargs = {"amounts": {self.accounts[original.credited]: part, self.accounts[original.debited]: -part}}

        if how == "whole" and original.left == 0:
            expected = ReversalExceedsRemainingError
        elif how == "fraction" and amount == 0:
            expected = InvalidPostingError
        elif amount > original.left:
            expected = ReversalExceedsRemainingError
        elif not self._may_go_negative(original.credited) and self.balances[original.credited] < amount:
            expected = InsufficientBalanceError
        else:
            expected = None

        if expected is not None:
            with pytest.raises(expected):
                transaction_reverse(original=original.txn, idempotency_key=key, **kwargs)
            return
        result = transaction_reverse(original=original.txn, idempotency_key=key, **kwargs)
        assert result.created
        original.left -= amount
        self.balances[original.credited] -= amount
        self.balances[original.debited] += amount

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def replay(self, data) -> None:
        original = data.draw(st.sampled_from(self.posted))
        result = transaction_post(
            idempotency_key=original.key,
            kind=original.kind,
            entries=[
                (self.accounts[original.debited], -original.amount),
                (self.accounts[original.credited], original.amount),
            ],
        )
        assert (result.created, result.transaction.pk) == (False, original.txn.pk)

    # --- the auditor ----------------------------------------------------------------------------------

    @invariant()
    def books_are_sound(self) -> None:
        with connection.cursor() as cursor:
            # Fire the commit-time checks now (sum to zero, two or more entries), then defer them again.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        assert ledger_problems() == []
        stored = dict(Balance.objects.filter(account_id__in=self.accounts).values_list("account_id", "balance"))
        assert stored == self.balances


def test_ledger_matches_a_simple_model_under_random_workloads(db):
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
