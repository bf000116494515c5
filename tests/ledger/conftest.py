from __future__ import annotations

import pytest

from tests.ledger.factories import IssuanceFactory, RedemptionsFactory, WalletFactory


@pytest.fixture
def issuance(db):
    return IssuanceFactory()


@pytest.fixture
def wallet(db):
    return WalletFactory()


@pytest.fixture
def redemptions(db):
    return RedemptionsFactory()
