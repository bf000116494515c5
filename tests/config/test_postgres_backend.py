"""config.postgres: reused connections are checked before a request without a round trip, and a
connection the server closed is still found dead and replaced (real PostgreSQL)."""

import time

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def full_checks(monkeypatch):
    """Counts Django's own check (SELECT 1) as the request-start check runs it."""
    calls = []
    original = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: calls.append(1) or original())
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.health_check_enabled = True
    return calls


def request_starts() -> None:
    connection.health_check_done = False
    connection.close_if_health_check_failed()  # what Django runs before a request's first query


def test_an_idle_healthy_connection_is_reused_without_a_query(full_checks):
    connection.ensure_connection()
    before = connection.connection

    request_starts()

    assert connection.connection is before
    assert full_checks == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_connection_the_server_terminated_is_replaced_before_the_request_uses_it(full_checks):
    connection.ensure_connection()
    before = connection.connection
    backend_pid = before.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    time.sleep(0.2)  # the server's goodbye reaches our socket

    request_starts()

    assert full_checks == [1]  # the quiet look saw something: Django's check ran, and found it dead
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != backend_pid
    assert connection.connection is not before
