"""manage.py reconcile and manage.py verify_ledger: clean ledgers pass, tampering is found and named."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F

from ledger.hashing import entry_hash
from ledger.models import Balance, Entry, ReconciliationFix
from ledger.selectors import account_balance_get
from tests.ledger.factories import WalletFactory, earn, spend

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(command: str, *args: str) -> tuple[int, str]:
    """call_command, returning (exit status, stdout): 0, or the CommandError's returncode."""
    out = io.StringIO()
    try:
        call_command(command, *args, "--no-progress", stdout=out, stderr=io.StringIO())
    except CommandError as error:
        out.write(str(error))
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def books(issuance, wallet, redemptions):
    other = WalletFactory()
    earn(issuance=issuance, wallet=wallet, amount=100, key="earn-1")
    earn(issuance=issuance, wallet=other, amount=40, key="earn-2")
    spend(wallet=wallet, redemptions=redemptions, amount=30, key="spend-1")
    earn(issuance=issuance, wallet=wallet, amount=5, key="earn-3")
    return wallet


@contextmanager
def triggers_disabled(table: str):
    """What an attacker with owner rights does to get past the append-only triggers."""
    with connection.cursor() as cursor:
        # Inside the test's transaction the commit-time checks are still pending, and PostgreSQL will
        # not alter a table with pending trigger events: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def test_reconcile_and_verify_pass_on_a_clean_ledger(books):
    status, out = run("reconcile")
    assert status == 0, out
    assert "Checked 4 accounts: every balance matches its entries." in out

    status, out = run("verify_ledger")
    assert status == 0, out
    assert "Verified 8 entries in 4 accounts: every chain is intact." in out


def test_reconcile_finds_a_balance_row_altered_directly_and_fix_repairs_and_records_it(books):
    Balance.objects.filter(pk=books.pk).update(balance=F("balance") + 50, total_credited=F("total_credited") + 50)

    status, out = run("reconcile")
    assert status == 1
    assert f"DIFFERS {books.code}: balance stored 125 != 75 from entries" in out
    assert "total_credited stored 155 != 105 from entries" in out

    status, out = run("reconcile", "--fix", "--reason", "ticket 42: manual edit", "--by", "ops@example")
    assert status == 0, out
    assert f"FIXED {books.code}" in out
    assert "balance 125 -> 75" in out
    fix = ReconciliationFix.objects.get()
    assert (fix.account_id, fix.performed_by, fix.reason) == (books.pk, "ops@example", "ticket 42: manual edit")
    assert (fix.before["balance"], fix.after["balance"]) == (125, 75)
    assert account_balance_get(books).balance == 75

    assert run("reconcile") == (0, "Checked 4 accounts: every balance matches its entries.\n")


def test_reconcile_checks_one_account_and_every_rollup_field(books, issuance):
    Balance.objects.filter(pk=books.pk).update(entry_count=F("entry_count") + 1, head_seq=F("head_seq") + 1)

    assert run("reconcile", "--account", issuance.code)[0] == 0
    status, out = run("reconcile", "--account", books.code)
    assert status == 1
    assert "entry_count stored 4 != 3" in out
    assert "head_seq stored 4 != 3" in out
    assert run("reconcile", "--account", "nobody")[0] == 2


def test_reconcile_rebuilds_a_missing_balance_row(books):
    Balance.objects.filter(pk=books.pk).delete()

    status, out = run("reconcile", "--fix")

    assert status == 0, out
    assert ReconciliationFix.objects.get().before is None
    assert account_balance_get(books).balance == 75


def test_verify_ledger_names_an_entry_altered_with_the_triggers_disabled(books):
    entry = Entry.objects.select_related("transaction").get(account=books, seq=2)
    with triggers_disabled("ledger_entry"), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_entry SET amount = amount + 1000 WHERE id = %s", [entry.pk])

    status, out = run("verify_ledger")

    assert status == 1
    assert (
        f"BROKEN entry id={entry.pk} (account {books.code}, seq 2, transaction 'spend-1'): "
        "its hash does not match its content" in out
    )
    assert "1 of 4 account chains do not verify" in out
    assert run("verify_ledger", "--account", books.code)[0] == 1


def test_verify_ledger_catches_a_forger_who_recomputes_the_hash(books):
    # Rewriting an entry *and* its hash moves the break to the link with the next entry.
    entry = Entry.objects.select_related("transaction").get(account=books, seq=2)
    forged = entry_hash(
        idempotency_key=entry.transaction.idempotency_key,
        account_code=books.code,
        amount=-1,
        seq=2,
        created_at=entry.created_at,
        prev_hash=entry.prev_hash,
    )
    with triggers_disabled("ledger_entry"), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_entry SET amount = -1, hash = %s WHERE id = %s", [forged, entry.pk])

    status, out = run("verify_ledger")

    following = Entry.objects.get(account=books, seq=3)
    assert status == 1
    assert f"BROKEN entry id={following.pk}" in out
    assert "prev_hash is not the hash of seq 2" in out


def test_verify_ledger_notices_entries_removed_from_the_end_of_a_chain(books):
    last = Entry.objects.get(account=books, seq=3)
    with triggers_disabled("ledger_entry"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_entry WHERE transaction_id = %s", [last.transaction_id])

    status, out = run("verify_ledger")

    assert status == 1
    assert f"BROKEN account {books.code}: the balance head (seq 3" in out


def test_verify_ledger_notices_a_changed_transaction_key(books):
    with triggers_disabled("ledger_transaction"), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_transaction SET idempotency_key = 'earn-1-renamed' WHERE idempotency_key = 'earn-1'"
        )
    status, out = run("verify_ledger")
    assert status == 1
    assert "transaction 'earn-1-renamed'" in out


# --- the real exit status, from a separate process --------------------------------------------------


def _manage(*args: str) -> subprocess.CompletedProcess:
    params = connection.settings_dict
    host = params["HOST"] or params["OPTIONS"].get("host", "")
    credentials = f"{quote(params['USER'] or '')}:{quote(params['PASSWORD'] or '')}@"
    if host.startswith("/"):  # a Unix socket directory, as for the embedded server
        url = f"postgresql://{credentials}/{params['NAME']}?host={quote(host)}"
    else:
        url = f"postgresql://{credentials}{host}{':' + str(params['PORT']) if params['PORT'] else ''}/{params['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL}
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args, "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_the_commands_exit_with_status_1_on_a_difference_and_0_when_clean(issuance, wallet):
    earn(issuance=issuance, wallet=wallet, amount=10)
    clean = _manage("reconcile")
    assert clean.returncode == 0, clean.stderr
    assert "every balance matches" in clean.stdout

    # Two separate tamperings: a rollup row edited (reconcile's job), an entry's time edited with the
    # triggers off (the amounts still add up, so only verify_ledger can tell).
    Balance.objects.filter(pk=wallet.pk).update(balance=F("balance") + 1, total_credited=F("total_credited") + 1)
    with triggers_disabled("ledger_entry"), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_entry SET created_at = created_at - interval '1 day' WHERE account_id = %s", [wallet.pk]
        )

    reconcile = _manage("reconcile")
    verify = _manage("verify_ledger")
    assert reconcile.returncode == 1, reconcile.stderr
    assert "differ from their entries" in reconcile.stderr
    assert verify.returncode == 1, verify.stderr
    assert f"account {wallet.code}" in verify.stdout
