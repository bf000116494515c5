"""Livestream's figure for GET /metrics (config.metrics): watched minutes credited, from the rollups."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from livestream import selectors


def collect() -> Iterator[Metric]:
    minutes = CounterMetricFamily(
        "tally_watch_minutes",
        "Watched minutes credited (awarded watch_minute events), by brand.",
        labels=["brand"],
    )
    for slug, count in selectors.watch_minutes_credited():
        minutes.add_metric([slug], count)
    yield minutes
