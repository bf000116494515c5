"""Database plumbing shared by the apps: a cursor with server-side parameter binding, for bulk statements.

Django's psycopg 3 cursors bind parameters client-side (they quote every value into the SQL text),
which costs more than the statement itself when a parameter is an array of 1,000 values. The set-based
statements of the ledger and the event processor pass their rows as arrays (`unnest(%s::bigint[], ...)`)
and run on this cursor instead: the same connection and transaction as the ORM, the values sent apart
from the SQL text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from django.db import connection, transaction
from django.db.models import Field, ForeignObject, Lookup


class _PreparingCursor(psycopg.Cursor):
    """Prepares every statement it runs: the bulk statements have a fixed text (their rows come as arrays)
    and run thousands of times on the same persistent connection, so PostgreSQL parses and plans each
    once per connection instead of once per call."""

    def execute(self, query, params=None, *, prepare: bool | None = None, binary: bool | None = None):
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


@contextlib.contextmanager
def bulk_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor with server-side binding on Django's current connection (and transaction), whose
    statements are prepared."""
    connection.ensure_connection()
    # Django's error classes (IntegrityError, OperationalError...), as from its own cursors: callers and
    # retry policies catch those.
    with connection.wrap_database_errors, _PreparingCursor(connection.connection) as cursor:
        yield cursor


@contextlib.contextmanager
def read_only_atomic() -> Iterator[None]:
    """A database transaction (or savepoint) in which PostgreSQL refuses every write, rolled back at the end:
    what a dry run or a simulation reads in, so that a write it should never make fails instead of landing."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
        yield
        transaction.set_rollback(True)


class AnyLookup(Lookup):
    """`field__any=[...]`: `field = ANY(%s)` with the whole list as one array parameter.

    What `__in` does, for the lists of a thousand ids the batch paths filter on: `IN (%s, %s, ...)` puts
    a placeholder per value in the SQL text, which psycopg and PostgreSQL then parse value by value.
    """

    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [list(value)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


Field.register_lookup(AnyLookup)
ForeignObject.register_lookup(AnyLookup)
