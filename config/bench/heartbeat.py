"""Livestream heartbeats over HTTP: the saturation rate against GET /api/v1/time, and latency at 1,000
simulated viewers."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from config.bench.load import LUA_DIR, wrk
from config.bench.server import Server

VIEWERS = 1000
PACED_CONNECTIONS = 16
PACED_PAUSE_MS = 480  # 16 connections x 1,000 / 480 ms: about 33 heartbeats/s, 1,000 viewers every 30 s


def run(report, server: Server, *, seconds: int) -> None:
    viewers = Path(tempfile.mkdtemp(prefix="tally-bench-tv-")) / "viewers.txt"
    # Seeded by a process with the server's settings: leases live in the server's Redis databases.
    subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "config.bench.heartbeat_seed", "--viewers", str(VIEWERS), "--out", str(viewers)],
        env=server.env,
        check=True,
        capture_output=True,
    )
    script = (LUA_DIR / "heartbeat.lua").read_text()

    print(f"\nheartbeats: {VIEWERS:,} viewers; warm-up, saturation vs GET /api/v1/time, then paced...", flush=True)
    wrk(f"{server.base}/", seconds=10, connections=100, script=script, script_args=[str(viewers), "100", "2"])
    floor = wrk(f"{server.base}/api/v1/time", seconds=seconds, connections=32)
    saturated = wrk(
        f"{server.base}/", seconds=seconds, connections=32, script=script, script_args=[str(viewers), "0", "2"]
    )
    # 1,000 viewers as they watch: each beats every 30 s (heartbeat_seconds), about 33 heartbeats a second
    # from 16 connections pausing about 480 ms each (drawn at random, as independent viewers send), for at
    # least 30 s (a thousand heartbeats for the p99); and GET /api/v1/time at the same pace, the server's
    # own latency at that load. No more connections than a web process has threads: wrk opens every
    # connection at the start and waits a pause before its first request, and gunicorn's threaded worker
    # holds a thread for a new connection until its first request arrives (a browser sends at once).
    time_paced = wrk(
        f"{server.base}/api/v1/time",
        seconds=max(seconds, 30),
        connections=PACED_CONNECTIONS,
        script=(LUA_DIR / "time.lua").read_text(),
        script_args=[str(PACED_PAUSE_MS)],
    )
    watching = wrk(
        f"{server.base}/",
        seconds=max(seconds, 30),
        connections=PACED_CONNECTIONS,
        script=script,
        script_args=[str(viewers), str(PACED_PAUSE_MS), "2"],
    )
    # 30 times that load: 100 connections pausing 100 ms, about 1,000 a second, every viewer beating
    # about once a second.
    rushed = wrk(
        f"{server.base}/", seconds=seconds, connections=100, script=script, script_args=[str(viewers), "100", "2"]
    )

    def latency(run) -> str:
        return f"p50 {run.latency_ms.get('50%', 0):.1f} ms, p99 {run.latency_ms.get('99%', 0):.1f} ms"

    print(
        f"  GET /api/v1/time {floor.rate:,.0f}/s; heartbeats saturated {saturated.rate:,.0f}/s "
        f"(p99 {saturated.latency_ms.get('99%', 0):.0f} ms, {saturated.non_2xx} not 2xx); {VIEWERS:,} viewers "
        f"beating every 30 s: {watching.rate:,.0f}/s ({latency(watching)}; GET /api/v1/time at that pace: "
        f"{latency(time_paced)}); 30 times that: {rushed.rate:,.0f}/s ({latency(rushed)})",
        flush=True,
    )
    report.ratio("heartbeats / GET /api/v1/time (saturation)", saturated.rate, floor.rate, target=0.5, unit="req/s")
    p99 = watching.latency_ms.get("99%", 1e9)
    report.absolute(f"heartbeat p99, {VIEWERS:,} viewers every 30 s", p99, target=50, unit="ms", at_most=True)
    report.note("  GET /api/v1/time p99 at the same pace", f"{time_paced.latency_ms.get('99%', 0):,.1f} ms")
    runs = (saturated, watching, rushed)
    report.check("heartbeats: all answered 2xx", all(run.non_2xx == 0 for run in runs), "non-2xx answers")
