"""The economics dashboard and report at 1,000,000 ledger entries: server time per request.

The dashboard reads rollups the posting path keeps (loyalty.models.DailyPoints, DailyEvents,
WeeklyActive), four balance rows and one index-only count of memberships by tier, so its time must not
depend on how many entries or events a brand has. In a throwaway database of its own:

1. Seed a brand of `members` members (250,000 by default) with two real earns each, set-based, as the
   lifecycle section does (config/bench/lifecycle.py): 1,000,000 ledger entries at 250,000 members.
2. `rollups_rebuild` from those entries (timed: what an installation whose history predates the
   rollups runs once), then a year of rollup rows at their worst: every day of the last 365 with every
   tier, every kind of movement and every shard, events of four types with three outcomes each.
3. Time, in this process with Django's test client (the server's own time, no network): the portal's
   index with the dashboard over 365 days, the economics report page, `GET /api/v1/reports/economics`,
   and as the baseline a plain portal page (the tiers changelist) of the same brand's staff.

Target: each dashboard request under 300 ms server time (p95 of 20).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time

from django.core.management.base import OutputWrapper
from django.db import connection
from django.test import Client
from django.utils import timezone

from config.bench import lifecycle
from loyalty.models import (
    ROLLUP_SHARDS,
    BrandApiKey,
    BrandStaff,
    DailyEvents,
    DailyPoints,
    Tier,
    User,
    WeeklyActive,
)
from loyalty.services.rollups import economics_rollups_rebuild

TARGET_MS = 300
REQUESTS = 20


def _year_of_rollups(brand) -> int:
    """Rollup rows for every day of the last year at their widest (see the module docstring)."""
    today = timezone.now().date()
    days = [today - dt.timedelta(days=n) for n in range(365)]
    tiers = list(Tier.objects.filter(brand=brand).values_list("name", flat=True))
    points = [
        DailyPoints(brand=brand, day=day, tier_name=tier, kind=kind, shard=shard, points=100, transactions=10)
        for day in days
        for tier in tiers
        for kind in DailyPoints.Kind.values
        for shard in range(ROLLUP_SHARDS)
    ]
    events = [
        DailyEvents(brand=brand, day=day, type=kind, status=status, reason=reason, tier_name=tier, events=10, points=50)
        for day in days
        for tier in tiers
        for kind in ("purchase", "refund", "check_in", "watch_minute")
        for status, reason in (("awarded", ""), ("rejected", "cap_reached"), ("rejected", "no_rule"))
    ]
    weeks = {day - dt.timedelta(days=day.weekday()) for day in days}
    active = [WeeklyActive(brand=brand, week=week, shard=shard, members=50) for week in weeks for shard in range(8)]
    DailyPoints.objects.bulk_create(points, batch_size=5000, ignore_conflicts=True)
    DailyEvents.objects.bulk_create(events, batch_size=5000, ignore_conflicts=True)
    WeeklyActive.objects.bulk_create(active, batch_size=5000, ignore_conflicts=True)
    return len(points) + len(events) + len(active)


def _timed(client: Client, url: str, **headers) -> tuple[float, float]:
    """(median, p95) in ms of REQUESTS GETs of `url`, after one to warm the caches."""
    assert client.get(url, **headers).status_code == 200, url
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        answer = client.get(url, **headers)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def run(report, *, members: int = 250_000) -> None:
    from ledger.management.commands.ledger_bench import _throwaway_database

    print(f"\neconomics dashboard: {members:,} members, {4 * members:,} ledger entries...", flush=True)
    with _throwaway_database(f"tally_bench_dashboard_{os.getpid()}", OutputWrapper(sys.stdout)):
        started = time.perf_counter()
        brand = lifecycle.brand_seed(members, slug="dashboard")
        lifecycle.vacuum_analyze()
        print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        written = economics_rollups_rebuild(brand=brand)
        rebuild = time.perf_counter() - started
        print(f"  rollups_rebuild from {4 * members:,} entries: {rebuild:.1f} s ({written})", flush=True)
        rows = _year_of_rollups(brand)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE loyalty_dailypoints, loyalty_dailyevents, loyalty_weeklyactive")
        print(f"  plus a year of rollups at their widest: {rows:,} rows", flush=True)

        user = User.objects.create_user(email="bench-staff@bench.example", password=None)  # force_login below
        BrandStaff.objects.create(user=user, brand=brand)
        User.objects.filter(pk=user.pk).update(is_staff=True)
        _, key = BrandApiKey.objects.create_key(name="bench", brand=brand)
        client = Client()
        client.force_login(user)
        today = timezone.now().date()
        span = f"from={today - dt.timedelta(days=364)}&to={today}"
        figures = {
            "dashboard": _timed(client, "/admin/?days=365"),
            "report": _timed(client, f"/admin/economics/report/?{span}"),
            "api": _timed(client, f"/api/v1/reports/economics?{span}", HTTP_AUTHORIZATION=f"Api-Key {key}"),
            "plain": _timed(client, "/admin/loyalty/tier/"),
        }
    for name, (median, p95) in figures.items():
        print(f"  {name}: median {median:.0f} ms, p95 {p95:.0f} ms", flush=True)
    dashboard, plain = figures["dashboard"][1], figures["plain"][1]
    report.absolute(
        f"economics dashboard, 365 days at {4 * members:,} entries (p95 server time; a plain portal page "
        f"{plain:.0f} ms)",
        dashboard,
        target=TARGET_MS,
        unit="ms",
        at_most=True,
    )
    report.absolute("economics report page (p95 server time)", figures["report"][1], target=TARGET_MS, unit="ms",
                    at_most=True)  # fmt: skip
    report.absolute("GET /api/v1/reports/economics (p95 server time)", figures["api"][1], target=TARGET_MS, unit="ms",
                    at_most=True)  # fmt: skip
    report.note(f"rollups_rebuild from {4 * members:,} entries", f"{rebuild:.1f} s")
