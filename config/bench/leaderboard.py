"""Leaderboard reads at 1,000,000 ranked members: the top 100 and the viewer's rank, against 1,000.

In a throwaway database (for the brand and its fans' profiles) and Redis databases of the bench's own:
a board of `members` members written through the same versioned script the posting path uses
(engagement.leaderboards.scores_push, 10,000 a call), then `leaderboards.board(brand, "all", limit=100,
viewer_id=...)` timed REQUESTS times in this process (the figure includes its two small database
queries: hidden fans and display names). The same for a board of 1,000 members, as the baseline: a
sorted set's reads are O(log n), so the big board must cost about what the small one does.

Target: under 10 ms (p95) at 1,000,000 members.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time

from django.core.management.base import OutputWrapper

from engagement import leaderboards
from loyalty.models import Brand

TARGET_MS = 10
REQUESTS = 200
CHUNK = 10_000


def _seed(brand: Brand, members: int) -> None:
    leaderboards.board_rebuild(brand, leaderboards.ALL_TIME)  # marks it built (empty)
    now = dt.datetime.now(dt.UTC)
    for start in range(0, members, CHUNK):
        leaderboards.scores_push(
            [
                (brand.pk, n, leaderboards.ALL_TIME, (n * 7919) % 100_000, now - dt.timedelta(minutes=n % 5000), 1)
                for n in range(start + 1, min(members, start + CHUNK) + 1)
            ]
        )


def _time(brand: Brand, members: int) -> tuple[float, float]:
    times = []
    for n in range(REQUESTS):
        viewer = 1 + (n * 104_729) % members
        started = time.perf_counter()
        board = leaderboards.board(brand, leaderboards.ALL_TIME, limit=100, viewer_id=viewer)
        times.append((time.perf_counter() - started) * 1000)
        assert len(board.entries) == min(100, members) and board.me is not None
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def run(report, *, members: int = 1_000_000) -> None:
    from ledger.management.commands.ledger_bench import _throwaway_database

    print(f"\nleaderboard reads: {members:,} ranked members...", flush=True)
    with _throwaway_database(f"tally_bench_leaderboard_{os.getpid()}", OutputWrapper(sys.stdout)):
        small = Brand.objects.create(name="Small fan club", slug="small")
        big = Brand.objects.create(name="Big fan club", slug="big")
        started = time.perf_counter()
        _seed(small, 1_000)
        _seed(big, members)
        print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
        small_median, small_p95 = _time(small, 1_000)
        big_median, big_p95 = _time(big, members)
        from django_redis import get_redis_connection

        for brand in (small, big):
            get_redis_connection("default").delete(*leaderboards._keys(brand.pk, leaderboards.ALL_TIME))
    print(
        f"  top 100 and a rank: 1,000 members median {small_median:.2f} ms / p95 {small_p95:.2f} ms; "
        f"{members:,} median {big_median:.2f} ms / p95 {big_p95:.2f} ms",
        flush=True,
    )
    report.absolute(
        f"leaderboard top 100 + own rank at {members:,} members (p95; at 1,000: {small_p95:.2f} ms)",
        big_p95,
        target=TARGET_MS,
        unit="ms",
        at_most=True,
    )
