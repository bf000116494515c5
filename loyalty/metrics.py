"""Loyalty's figures for GET /metrics (config.metrics), computed at each scrape from PostgreSQL: exact
whichever process answers and across restarts, since they are the rollups the posting path keeps."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from loyalty import selectors
from loyalty.models import DailyPoints

ADJUSTED = DailyPoints.Kind.ADJUSTED


def collect() -> Iterator[Metric]:
    events = CounterMetricFamily(
        "tally_events",
        "Events processed, by brand, type and outcome (awarded, rejected): the DailyEvents rollups.",
        labels=["brand", "type", "status"],
    )
    for slug, type_, status, count in selectors.events_totals():
        events.add_metric([slug, type_, status], count)
    yield events

    # Staff adjustments are signed, so their net can go down: a gauge of its own, since a counter that
    # falls reads as a restart to rate() and increase().
    points = CounterMetricFamily(
        "tally_points",
        "Points moved, by brand and kind (issued, refunded, redeemed, cancelled, expired): the DailyPoints "
        "rollups. Staff adjustments are tally_points_adjusted_net.",
        labels=["brand", "kind"],
    )
    adjusted = GaugeMetricFamily(
        "tally_points_adjusted_net", "Points staff adjustments moved, net (signed), by brand.", labels=["brand"]
    )
    for slug, kind, total in selectors.points_totals():
        if kind == ADJUSTED:
            adjusted.add_metric([slug], total)
        else:
            points.add_metric([slug, kind], total)
    yield points
    yield adjusted

    pending = GaugeMetricFamily(
        "tally_events_pending", "Events accepted and not yet processed, by brand.", labels=["brand"]
    )
    oldest = GaugeMetricFamily(
        "tally_events_pending_oldest_seconds",
        "How long the brand's oldest pending event (the next its processor takes) has waited; 0 when none.",
        labels=["brand"],
    )
    for slug, count, seconds in selectors.events_pending_by_brand():
        pending.add_metric([slug], count)
        oldest.add_metric([slug], seconds)
    yield pending
    yield oldest
