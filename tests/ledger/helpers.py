"""Helpers for ledger tests: ledger-wide audits in SQL (threads: tests.concurrency)."""

from __future__ import annotations

from django.db import connection


def ledger_problems() -> list[str]:
    """Every broken ledger invariant, found with set-based SQL over the whole ledger ([] when sound)."""
    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.code, b.balance, COALESCE(SUM(e.amount), 0), b.entry_count, COUNT(e.id)
              FROM ledger_account a
              JOIN ledger_balance b ON b.account_id = a.id
              LEFT JOIN ledger_entry e ON e.account_id = a.id
             GROUP BY a.code, b.balance, b.entry_count
            HAVING b.balance <> COALESCE(SUM(e.amount), 0) OR b.entry_count <> COUNT(e.id)
            """
        )
        problems += [f"{code}: balance row {row} != entries {summed}" for code, row, summed, *_ in cursor.fetchall()]
        cursor.execute(
            """
            SELECT t.idempotency_key, COUNT(e.id), COALESCE(SUM(e.amount), 0)
              FROM ledger_transaction t LEFT JOIN ledger_entry e ON e.transaction_id = t.id
             GROUP BY t.id HAVING COUNT(e.id) < 2 OR COALESCE(SUM(e.amount), 0) <> 0
            """
        )
        problems += [f"transaction {key}: {n} entries summing to {total}" for key, n, total in cursor.fetchall()]
        cursor.execute(
            """
            SELECT a.code, b.balance FROM ledger_account a JOIN ledger_balance b ON b.account_id = a.id
             WHERE NOT a.allow_negative AND b.balance < 0
            """
        )
        problems += [f"{code} may not go negative but holds {balance}" for code, balance in cursor.fetchall()]
    return problems
