from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command
from django.db import connection

from ledger.models import Transaction

pytestmark = pytest.mark.django_db(transaction=True)


def _databases() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cursor.fetchall()}


def test_ledger_bench_runs_small_in_a_throwaway_database_and_drops_it():
    database = connection.settings_dict["NAME"]
    before = _databases()
    out = io.StringIO()
    started = time.monotonic()

    call_command("ledger_bench", transactions=600, fill=2000, wallets=20, workers=2, reads=50, stdout=out)

    output = out.getvalue()
    assert time.monotonic() - started < 30
    assert "postings, one connection: 500 earn transactions" in output
    assert "postings, 2 processes (2 brands, one issuance account each): 100 earn transactions" in output
    assert "postings, all: 600 in" in output
    assert "balance read with 1,000 entries in the ledger: median" in output
    assert "balance read with 2,000 entries in the ledger: median" in output
    assert "generate_series" in output
    # Nothing of it is left behind: the bench database is gone, this test's database untouched.
    assert connection.settings_dict["NAME"] == database
    assert _databases() == before
    assert not Transaction.objects.exists()
