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
    # 100 connections, each pausing 100 ms before its next heartbeat: about 1,000 a second offered, every
    # viewer beating about once a second (a page beats every 30 s: this is 30 times the real load).
    paced = wrk(
        f"{server.base}/", seconds=seconds, connections=100, script=script, script_args=[str(viewers), "100", "2"]
    )
    print(
        f"  GET /api/v1/time {floor.rate:,.0f}/s; heartbeats saturated {saturated.rate:,.0f}/s "
        f"(p99 {saturated.latency_ms.get('99%', 0):.0f} ms, {saturated.non_2xx} not 2xx); paced {paced.rate:,.0f}/s "
        f"(p50 {paced.latency_ms.get('50%', 0):.1f} ms, p99 {paced.latency_ms.get('99%', 0):.1f} ms)",
        flush=True,
    )
    report.ratio("heartbeats / GET /api/v1/time (saturation)", saturated.rate, floor.rate, target=0.5, unit="req/s")
    p99 = paced.latency_ms.get("99%", 1e9)
    report.absolute(f"heartbeat p99 at {VIEWERS:,} viewers (~1,000/s)", p99, target=50, unit="ms", at_most=True)
    report.check("heartbeats: all answered 2xx", saturated.non_2xx == 0 and paced.non_2xx == 0, "non-2xx answers")
