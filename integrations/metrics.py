"""The outbox's figures for GET /metrics (config.metrics): the backlog, its age, and what failed."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from integrations.models import Delivery, OutboxMessage

# Both partial indexes (outbox_undispatched_idx, delivery_due_idx) hold only the backlog: cheap however
# many messages were ever delivered.
_BACKLOG_SQL = f"""
    SELECT 'undispatched', count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)
      FROM {OutboxMessage._meta.db_table} WHERE NOT dispatched
    UNION ALL
    SELECT 'pending', count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)
      FROM {Delivery._meta.db_table} WHERE status = 'pending'
"""  # noqa: S608 - only table names are formatted in
_FAILED_SQL = f"""
    SELECT sink_kind, count(*) FROM (
        SELECT CASE WHEN sink = 'analytics' THEN 'analytics' ELSE 'webhook' END AS sink_kind
          FROM {Delivery._meta.db_table} WHERE status = 'failed'
    ) AS f GROUP BY sink_kind
"""  # noqa: S608 - only the table name is formatted in


def collect() -> Iterator[Metric]:
    backlog = GaugeMetricFamily(
        "tally_outbox_backlog",
        "Outbox messages not fanned out yet (undispatched) and deliveries not made yet (pending).",
        labels=["state"],
    )
    age = GaugeMetricFamily(
        "tally_outbox_oldest_seconds", "Age of the oldest message or delivery of the backlog.", labels=["state"]
    )
    failed = CounterMetricFamily(
        "tally_outbox_deliveries_failed",
        "Deliveries given up on (retried for the whole retry period, or their endpoint disabled), by sink.",
        labels=["sink"],
    )
    with connection.cursor() as cursor:
        cursor.execute(_BACKLOG_SQL)
        for state, count, seconds in cursor.fetchall():
            backlog.add_metric([state], count)
            age.add_metric([state], float(seconds))
        cursor.execute(_FAILED_SQL)
        counts = dict(cursor.fetchall())
    for sink in ("analytics", "webhook"):
        failed.add_metric([sink], counts.get(sink, 0))
    yield backlog
    yield age
    yield failed
