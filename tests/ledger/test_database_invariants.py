"""The database itself refuses what would break the books, whoever sends the SQL."""

from __future__ import annotations

import importlib
import io
import os

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from ledger.models import Entry, ReconciliationFix, Transaction
from ledger.selectors import account_balance_get
from tests.ledger.factories import earn

pytestmark = pytest.mark.django_db


def _sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.fixture
def posted(issuance, wallet):
    return earn(issuance=issuance, wallet=wallet, amount=50).transaction


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET amount = amount + 1",
        "DELETE FROM ledger_entry",
        "UPDATE ledger_transaction SET memo = 'edited'",
        "DELETE FROM ledger_transaction",
    ],
)
def test_raw_sql_cannot_update_or_delete_entries_or_transactions(posted, statement):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        _sql(statement)
    assert Entry.objects.filter(transaction=posted).count() == 2


def test_the_orm_cannot_delete_or_edit_the_books_either(posted):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Entry.objects.filter(transaction=posted).delete()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Transaction.objects.filter(pk=posted.pk).update(kind="redeem")


def test_reconciliation_fixes_are_append_only(wallet):
    fix = ReconciliationFix.objects.create(account=wallet, before=None, after={}, performed_by="test")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        ReconciliationFix.objects.filter(pk=fix.pk).update(reason="rewritten")


def test_the_database_refuses_an_overdraft_even_past_the_service(posted, wallet):
    # A rollup written past the service, as if by a bug: the balance row's constraint says no.
    with pytest.raises(IntegrityError, match="ledger_balance_not_overdrawn"), transaction.atomic():
        _sql(
            "UPDATE ledger_balance SET balance = balance - 60, total_debited = total_debited + 60 "
            "WHERE account_id = %s",
            [wallet.pk],
        )
    assert account_balance_get(wallet).balance == 50


def test_zero_amounts_and_duplicate_sequence_numbers_are_refused(posted, wallet):
    entry = Entry.objects.get(transaction=posted, account=wallet)
    insert = (
        "INSERT INTO ledger_entry (transaction_id, account_id, amount, seq, prev_hash, hash, created_at) "
        "VALUES (%s, %s, %s, %s, '', '', now())"
    )
    with pytest.raises(IntegrityError, match="ledger_entry_amount_not_zero"), transaction.atomic():
        _sql(insert, [posted.pk, wallet.pk, 0, 99])
    with pytest.raises(IntegrityError, match="ledger_entry_account_seq_unique"), transaction.atomic():
        _sql(insert, [posted.pk, wallet.pk, 5, entry.seq])


# --- checked at the end of every statement ---------------------------------------------------------


def _insert_transaction(key: str, legs: list[tuple[int, int, int]]) -> int:
    """A transaction and its entries, in one statement (as the ledger's own INSERT does)."""
    values = ", ".join(["(%s::bigint, %s::bigint, %s::bigint)"] * len(legs))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH txn AS (
                INSERT INTO ledger_transaction (idempotency_key, kind, memo, metadata, content_hash, created_at)
                VALUES (%s, 'earn', '', '{{}}', '', now()) RETURNING id
            ), entries AS (
                INSERT INTO ledger_entry (transaction_id, account_id, amount, seq, prev_hash, hash, created_at)
                SELECT txn.id, v.account_id, v.amount, v.seq, '', '', now()
                  FROM txn CROSS JOIN (VALUES {values}) AS v(account_id, amount, seq)
            )
            SELECT id FROM txn
            """,  # noqa: S608 - only placeholders are formatted in
            [key, *[value for leg in legs for value in leg]],
        )
        return cursor.fetchone()[0]


def _insert_entries(transaction_id: int, legs: list[tuple[int, int, int]]) -> None:
    for account_id, amount, seq in legs:
        _sql(
            "INSERT INTO ledger_entry (transaction_id, account_id, amount, seq, prev_hash, hash, created_at) "
            "VALUES (%s, %s, %s, %s, '', '', now())",
            [transaction_id, account_id, amount, seq],
        )


def test_a_transaction_that_does_not_sum_to_zero_is_refused_by_its_statement(issuance, wallet):
    with pytest.raises(IntegrityError, match="sum to 5, not zero"), transaction.atomic():
        _insert_transaction("unbalanced", [(issuance.pk, -10, 1), (wallet.pk, 15, 1)])
    assert not Transaction.objects.filter(idempotency_key="unbalanced").exists()


def test_a_transaction_with_one_entry_or_none_is_refused_by_its_statement(issuance):
    with pytest.raises(IntegrityError, match="at least two"), transaction.atomic():
        _insert_transaction("lonely", [(issuance.pk, 10, 1)])
    with pytest.raises(IntegrityError, match="0 entries"), transaction.atomic():
        _sql(
            "INSERT INTO ledger_transaction (idempotency_key, kind, memo, metadata, content_hash, created_at) "
            "VALUES ('empty', 'earn', '', '{}', '', now())"
        )
    assert not Transaction.objects.exists()


def test_entries_inserted_one_statement_at_a_time_are_refused_at_the_first(issuance, wallet, posted):
    with pytest.raises(IntegrityError, match="not zero"), transaction.atomic():
        _insert_entries(posted.pk, [(issuance.pk, -10, 2), (wallet.pk, 10, 2)])
    assert Entry.objects.filter(transaction=posted).count() == 2


def test_entries_added_later_to_an_old_transaction_must_still_balance_it(issuance, wallet):
    posted = earn(issuance=issuance, wallet=wallet, amount=5).transaction
    with pytest.raises(IntegrityError, match="not zero"), transaction.atomic():
        _insert_entries(posted.pk, [(wallet.pk, 1, 2)])
    assert Entry.objects.filter(transaction=posted).count() == 2


def test_an_entry_naming_an_account_or_transaction_that_does_not_exist_is_refused(issuance, wallet, posted):
    with pytest.raises(IntegrityError, match="does not exist"), transaction.atomic():
        _insert_transaction("ghost", [(issuance.pk, -10, 99), (wallet.pk + 10_000, 10, 1)])
    with pytest.raises(IntegrityError, match="does not exist"), transaction.atomic():
        _insert_entries(posted.pk + 10_000, [(wallet.pk, 1, 9)])
    assert not Transaction.objects.filter(idempotency_key="ghost").exists()


def test_accounts_are_never_deleted(wallet):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        _sql("DELETE FROM ledger_account WHERE id = %s", [wallet.pk])


def test_a_balanced_transaction_written_in_raw_sql_is_accepted(issuance, wallet):
    txn = _insert_transaction("raw", [(issuance.pk, -10, 1), (wallet.pk, 10, 1)])
    assert Entry.objects.filter(transaction_id=txn).count() == 2


# --- TRUNCATE, outside test databases -------------------------------------------------------------


@pytest.fixture
def scratch_ledger_db():
    """A database not named test_* holding the ledger's tables and triggers, dropped afterwards.

    Django's test databases are exempt from the TRUNCATE guard (the test runner empties tables with
    TRUNCATE), so the guard itself is proven here, on a database named like a real one.
    """
    name = f"ledger_scratch_{os.getpid()}"
    params = connection.get_connection_params()
    server = {key: params[key] for key in ("host", "port", "user", "password") if params.get(key)}
    schema = io.StringIO()
    call_command("sqlmigrate", "ledger", "0001", stdout=schema)
    with psycopg.connect(**server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            with psycopg.connect(**server, dbname=name, autocommit=True) as scratch:
                scratch.execute(schema.getvalue())
                scratch.execute(importlib.import_module("ledger.migrations.0002_invariants").FORWARD)
                for migration in ("0003_entries_checked_per_statement", "0005_entry_references_checked_per_statement"):
                    scratch.execute(importlib.import_module(f"ledger.migrations.{migration}").FORWARD)
                yield scratch
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("table", ["ledger_entry", "ledger_transaction", "ledger_reconciliationfix", "ledger_account"])
def test_truncate_is_refused_outside_test_databases(scratch_ledger_db, table):
    with pytest.raises(psycopg.errors.RestrictViolation, match=r"TRUNCATE on \w+ is refused"):
        scratch_ledger_db.execute(f"TRUNCATE {table} CASCADE")
