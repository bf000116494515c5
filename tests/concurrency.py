"""Real concurrency for tests: threads, each on its own database connection, released at one start line."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection, connections

# Connections left free for everyone else sharing the server (other test runs, the dev server).
CONNECTION_MARGIN = 12


def free_connection_slots() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)")
        return cursor.fetchone()[0] - CONNECTION_MARGIN


def run_concurrently(call: Callable[[int], Any], callers: int) -> list[Any]:
    """Run call(0..callers-1), each in its own thread on its own database connection, all released at once.

    Returns each call's result or the exception it raised. If the server has fewer free connection slots
    than callers, at most that many callers hold a connection at the same time (the rest queue for one);
    every caller still uses a connection of its own, opened for it and closed at its end.
    """
    parallel = min(callers, max(2, free_connection_slots()))
    slots = threading.BoundedSemaphore(parallel)
    connected = threading.Semaphore(0)
    start = threading.Event()
    results: list[Any] = [None] * callers

    def worker(index: int) -> None:
        with slots:
            try:
                try:
                    connection.ensure_connection()  # connect before the start line, so that the calls collide
                finally:
                    connected.release()
                start.wait(timeout=60)
                results[index] = call(index)
            except Exception as exc:
                results[index] = exc
            finally:
                connections.close_all()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(callers)]
    for thread in threads:
        thread.start()
    for _ in range(parallel):  # the first `parallel` callers are connected and waiting
        assert connected.acquire(timeout=60), "callers could not connect"
    start.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a caller is stuck"
    return results
