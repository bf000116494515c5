"""The rule-set simulator replaying 1,000,000 events: seconds for the whole comparison.

In a throwaway database of its own:

1. Seed a coffee-like brand of `members` members (config/bench/lifecycle.py: UTC, tiers Green 0 / Gold
   500 / Reserve 2500 at x1 / x1.2 / x1.7, points expire after 6 months), its earn rules (1 point per
   USD, a check-in of 5 capped at one a day), and, set-based, a year of processed events spread over
   its members in the order they came: purchases of 1.00 to 50.99 USD, every tenth event a check-in,
   and a refund of half of every 49th purchase an hour after it; `events` in all.
2. Time `program_simulate` over that year with the flat network rule as the alternative: every event
   replayed twice (once per rule set), with the monthly expiry and tier passes in between. As its
   baseline, the time to only read the same events in the same order (the part no replay can avoid).

Target: under 60 s for 1,000,000 events.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from decimal import Decimal

from django.core.management.base import OutputWrapper
from django.db import connection, transaction

from config.bench import lifecycle
from economics.simulator import Alternative, history_rows, program_simulate
from loyalty.models import EarnRule, Event

TARGET_SECONDS = 60
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR_SECONDS = 365 * 24 * 3600
REFUND_EVERY = 49


def events_seed(brand, events: int) -> int:
    """`events` processed events of the brand's members over 2026 (see the module docstring). Returns how
    many were written."""
    EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=Decimal(1), currency="USD")
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5, cap_per_day=1)
    table = Event._meta.db_table
    originals = events * REFUND_EVERY // (REFUND_EVERY + 1)
    step = (YEAR_SECONDS - 7200) / originals  # the last refund still in the year
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (brand_id, membership_id, type, status, order_id, amount, currency, occurred_at,
                                 processed_at, metadata)
            SELECT %(brand)s, m.ids[1 + ((g::bigint * 7919) %% m.n)::int],
                   CASE WHEN g %% 10 = 0 THEN 'check_in' ELSE 'purchase' END, 'awarded',
                   CASE WHEN g %% 10 = 0 THEN '' ELSE 'o-' || g END,
                   CASE WHEN g %% 10 = 0 THEN NULL ELSE 1 + (g %% 5000) / 100.0 END,
                   CASE WHEN g %% 10 = 0 THEN '' ELSE 'USD' END,
                   %(start)s::timestamptz + make_interval(secs => g * %(step)s),
                   %(start)s::timestamptz + make_interval(secs => g * %(step)s + 1), '{{}}'::jsonb
              FROM generate_series(1, %(originals)s) AS g,
                   (SELECT array_agg(id ORDER BY id) AS ids, count(*) AS n
                      FROM loyalty_membership WHERE brand_id = %(brand)s) AS m
             ORDER BY g
            """,  # noqa: S608 - only the table name is formatted in
            {"brand": brand.pk, "start": START, "step": step, "originals": originals},
        )
        cursor.execute(
            f"""
            INSERT INTO {table} (brand_id, membership_id, type, status, amount, currency, occurred_at,
                                 processed_at, refund_of_id, idempotency_key, metadata)
            SELECT brand_id, membership_id, 'refund', 'awarded', round(amount / 2, 2), currency,
                   occurred_at + interval '1 hour', processed_at + interval '1 hour', id, 'r-' || id, '{{}}'::jsonb
              FROM {table}
             WHERE brand_id = %(brand)s AND type = 'purchase' AND id %% %(every)s = 0
             ORDER BY id
            """,  # noqa: S608 - only the table name is formatted in
            {"brand": brand.pk, "every": REFUND_EVERY},
        )
        cursor.execute(f"ANALYZE {table}")
    return Event.objects.filter(brand=brand).count()


def run(report, *, members: int = 100_000, events: int = 1_000_000) -> None:
    from ledger.management.commands.ledger_bench import _throwaway_database

    print(f"\nrule-set simulator: {events:,} events of {members:,} members...", flush=True)
    with _throwaway_database(f"tally_bench_simulator_{os.getpid()}", OutputWrapper(sys.stdout)):
        started = time.perf_counter()
        brand = lifecycle.brand_seed(members, slug="simulator")
        written = events_seed(brand, events)
        lifecycle.vacuum_analyze()
        print(f"  seeded {written:,} events in {time.perf_counter() - started:.0f} s", flush=True)
        start, end = START.date(), dt.date(2026, 12, 31)

        started = time.perf_counter()
        with transaction.atomic():
            read = sum(1 for _ in history_rows(brand, start, end))
        reading = time.perf_counter() - started

        started = time.perf_counter()
        comparison = program_simulate(brand, start=start, end=end, alternative=Alternative(flat_network=True))
        seconds = time.perf_counter() - started
    print(
        f"  read {read:,} events in {reading:.1f} s; replayed {comparison.events:,} under both rule sets in "
        f"{seconds:.1f} s ({comparison.events / seconds:,.0f} events/s); issued {comparison.current.issued:,} "
        f"vs {comparison.alternative.issued:,}",
        flush=True,
    )
    report.absolute(
        f"simulate_program, {comparison.events:,} events under two rule sets (only reading them: {reading:.1f} s)",
        seconds,
        target=TARGET_SECONDS * comparison.events / 1_000_000,
        unit="s",
        at_most=True,
    )
    report.check(
        "simulator replayed every seeded event",
        comparison.events + comparison.events_skipped == written,
        f"{comparison.events} + {comparison.events_skipped} of {written}",
    )
