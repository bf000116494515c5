"""Django's PostgreSQL backend, with a cheaper check of a persistent connection before each request.

With CONN_HEALTH_CHECKS, Django runs `SELECT 1` on a reused connection before the first query of every
request: a round trip to PostgreSQL per request, as long as the rest of a heartbeat or an accepted event.
Here the connection is first looked at without a round trip: idle (no transaction open), not known to be
broken, and nothing waiting to be read on its socket. A server that closed the connection (a restart, an
idle timeout, pg_terminate_backend) leaves its goodbye (or the end of the stream) there, so that case goes
on to Django's own check, which finds it dead and reconnects. A peer that vanished without a word is not
seen by either check before a query fails, which Django then closes the connection after.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and self._quiet()
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _quiet(self) -> bool:
        """Whether the connection is open, idle and has nothing unread on its socket."""
        connection = self.connection
        if connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False
        try:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
            return not poller.poll(0)
        except (OSError, ValueError, AttributeError):  # no socket, or no poll() on this platform
            return False
