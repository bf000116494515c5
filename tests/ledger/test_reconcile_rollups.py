"""ledger.audit.rollups_recompute, the query behind `manage.py reconcile`: what it computes, chunk by chunk.

The query reads each chunk's entries through the (account_id, seq) index (the ids handed over as an
array, the head hash looked up per account): these pin down that it still computes, for every account
and across chunk boundaries, exactly what the entries say, including accounts with no entries at all.
"""

from __future__ import annotations

import pytest
from django.db.models import F

from ledger.audit import rollups_recompute
from ledger.hashing import GENESIS_HASH
from ledger.models import Account, Balance, Entry
from tests.ledger.factories import WalletFactory, earn, spend

pytestmark = pytest.mark.django_db


def _from_entries(account: Account) -> dict[str, object]:
    """The rollup of one account, worked out in Python from its entries."""
    entries = list(Entry.objects.filter(account=account).order_by("seq"))
    amounts = [entry.amount for entry in entries]
    return {
        "balance": sum(amounts),
        "total_credited": sum(a for a in amounts if a > 0),
        "total_debited": -sum(a for a in amounts if a < 0),
        "entry_count": len(entries),
        "head_seq": entries[-1].seq if entries else 0,
        "head_hash": entries[-1].hash if entries else GENESIS_HASH,
        "allow_negative": account.allow_negative,
    }


@pytest.fixture
def ledger(issuance, redemptions):
    """Accounts of every shape in id order: busy, a few entries, none at all (between the others)."""
    wallets = [WalletFactory() for _ in range(5)]
    idle = wallets[2]  # never posted to: no entries, a zero balance row
    for n, wallet in enumerate(wallets):
        if wallet is idle:
            continue
        earn(issuance=issuance, wallet=wallet, amount=10 + n)
        earn(issuance=issuance, wallet=wallet, amount=3)
        if n % 2:
            spend(wallet=wallet, redemptions=redemptions, amount=4 + n)
    return {"wallets": wallets, "idle": idle}


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 1000])
def test_every_account_is_recomputed_once_from_its_entries_whatever_the_chunk_size(ledger, chunk_size):
    chunks = list(rollups_recompute(chunk_size=chunk_size))

    rollups = [rollup for chunk in chunks for rollup in chunk]
    accounts = list(Account.objects.order_by("id"))
    assert [rollup.account_id for rollup in rollups] == [account.pk for account in accounts]
    assert all(len(chunk) <= chunk_size for chunk in chunks)
    for rollup, account in zip(rollups, accounts, strict=True):
        assert rollup.computed == _from_entries(account), account.code
        assert rollup.differences == {}, account.code
    idle = next(rollup for rollup in rollups if rollup.account_id == ledger["idle"].pk)
    assert (idle.computed["entry_count"], idle.computed["head_seq"], idle.computed["head_hash"]) == (0, 0, GENESIS_HASH)


def test_the_head_hash_is_the_last_entrys_and_a_stale_head_is_a_difference(ledger, issuance):
    wallet = ledger["wallets"][1]
    stale = Balance.objects.get(pk=wallet.pk)
    earn(issuance=issuance, wallet=wallet, amount=7)
    last = Entry.objects.filter(account=wallet).order_by("-seq").first()
    # The balance row pointing back at the previous head, as if the last posting's rollup were lost.
    Balance.objects.filter(pk=wallet.pk).update(
        head_seq=stale.head_seq,
        head_hash=stale.head_hash,
        entry_count=F("entry_count") - 1,
        balance=F("balance") - 7,
        total_credited=F("total_credited") - 7,
    )

    rollups = {rollup.account_id: rollup for chunk in rollups_recompute(chunk_size=2) for rollup in chunk}

    assert rollups[wallet.pk].computed["head_hash"] == last.hash
    assert rollups[wallet.pk].differences == {
        "balance": (stale.balance, stale.balance + 7),
        "total_credited": (stale.total_credited, stale.total_credited + 7),
        "entry_count": (stale.entry_count, stale.entry_count + 1),
        "head_seq": (stale.head_seq, last.seq),
        "head_hash": (stale.head_hash, last.hash),
    }
    assert [pk for pk, rollup in rollups.items() if rollup.differences] == [wallet.pk]


def test_one_account_and_an_account_without_a_balance_row(ledger):
    wallet = ledger["wallets"][3]
    Balance.objects.filter(pk=wallet.pk).delete()

    (rollup,) = next(rollups_recompute(account_id=wallet.pk))

    assert rollup.stored is None
    assert rollup.computed == _from_entries(wallet)
    assert set(rollup.differences) == set(rollup.computed)
