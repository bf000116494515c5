"""Count what a block of code sends to PostgreSQL, to pin hot paths' statement counts.

CaptureQueriesContext sees Django's cursors only; the set-based paths also run statements on raw
psycopg cursors (config.db.bulk_cursor). This counts both, and the commits: it spies on psycopg's
Cursor.execute (every cursor derives from it) and Connection.commit, and calls through to them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psycopg


@contextlib.contextmanager
def statements_sent() -> Iterator[list[str]]:
    """The statements this thread sends while the block runs (BEGIN, which psycopg sends by itself
    before a transaction's first statement, is not among them: one per COMMIT)."""
    sent: list[str] = []
    thread = threading.get_ident()
    execute, commit = psycopg.Cursor.execute, psycopg.Connection.commit

    def spy_execute(self, query, params=None, **kwargs):
        if threading.get_ident() == thread:
            sent.append(" ".join(str(query).split())[:160])
        return execute(self, query, params, **kwargs)

    def spy_commit(self):
        if threading.get_ident() == thread:
            sent.append("COMMIT")
        return commit(self)

    psycopg.Cursor.execute, psycopg.Connection.commit = spy_execute, spy_commit
    try:
        yield sent
    finally:
        psycopg.Cursor.execute, psycopg.Connection.commit = execute, commit
