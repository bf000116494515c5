"""Factories for ledger tests. Accounts go through account_get_or_create so they get their balance row."""

from __future__ import annotations

import itertools

import factory

from ledger.models import Account
from ledger.services import account_get_or_create, transaction_post

UNIT = "points:test"
_keys = itertools.count(1)


class AccountFactory(factory.Factory):
    class Meta:
        model = Account

    code = factory.Sequence(lambda n: f"test:wallet:{n}")
    kind = Account.Kind.WALLET
    unit = UNIT
    allow_negative = False

    @classmethod
    def _create(cls, model_class, **kwargs):
        return account_get_or_create(**kwargs)


class WalletFactory(AccountFactory):
    pass


class IssuanceFactory(AccountFactory):
    code = factory.Sequence(lambda n: f"test:issuance:{n}")
    kind = Account.Kind.ISSUANCE
    allow_negative = True


class RedemptionsFactory(AccountFactory):
    code = factory.Sequence(lambda n: f"test:redemptions:{n}")
    kind = Account.Kind.REDEMPTIONS
    allow_negative = False


def next_key(prefix: str = "key") -> str:
    return f"{prefix}-{next(_keys)}"


def earn(*, issuance: Account, wallet: Account, amount: int, key: str | None = None, kind: str = "earn"):
    """Issue `amount` into `wallet`; returns the PostResult."""
    return transaction_post(
        idempotency_key=key or next_key("earn"), kind=kind, entries=[(issuance, -amount), (wallet, amount)]
    )


def spend(*, wallet: Account, redemptions: Account, amount: int, key: str | None = None):
    return transaction_post(
        idempotency_key=key or next_key("spend"), kind="redeem", entries=[(wallet, -amount), (redemptions, amount)]
    )
