"""Redemptions over HTTP: sustained rate and latency under a steady load, and no oversell under a rush."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from django.core.management import call_command

from config.bench.load import LUA_DIR, wrk
from config.bench.server import Server
from ledger.models import Balance
from perks.models import Perk, Redemption

MEMBERS = 2000
KEYS = 24  # tills: the throttle is per key
SCARCE_STOCK = 300


def _setup(out: Path, **options) -> Perk:
    call_command(
        "redeem_bench_setup", brand="bench", members=MEMBERS, keys=KEYS, out=str(out), stdout=io.StringIO(), **options
    )
    perk_id = int(next(line.split()[1] for line in out.read_text().splitlines() if line.startswith("perk ")))
    return Perk.objects.get(pk=perk_id)


def run(report, server: Server, *, seconds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="tally-bench-redeem-"))
    ample = work / "ample.txt"
    _setup(ample)
    script = (LUA_DIR / "redeem.lua").read_text()

    print("\nredemptions: saturation (64 connections), then steady (64 connections, 100 ms apart)...", flush=True)
    wrk(f"{server.base}/", seconds=5, connections=32, script=script, env={"REDEEM_BENCH": str(ample)})  # warm-up
    floor = wrk(f"{server.base}/api/v1/time", seconds=seconds, connections=64)
    saturated = wrk(f"{server.base}/", seconds=seconds, connections=64, script=script, env={"REDEEM_BENCH": str(ample)})
    steady = wrk(
        f"{server.base}/",
        seconds=seconds,
        connections=64,
        script=script,
        env={"REDEEM_BENCH": str(ample), "REDEEM_DELAY_MS": "100"},
    )
    print(
        f"  GET /api/v1/time {floor.rate:,.0f}/s; redemptions saturated {saturated.rate:,.0f}/s "
        f"(p50 {saturated.latency_ms.get('50%', 0):.0f} ms, p99 {saturated.latency_ms.get('99%', 0):.0f} ms); "
        f"steady {steady.rate:,.0f}/s (p50 {steady.latency_ms.get('50%', 0):.1f} ms, "
        f"p99 {steady.latency_ms.get('99%', 0):.1f} ms, {steady.non_2xx} not 201)",
        flush=True,
    )
    report.absolute("redemptions sustained (64 clients, 100 ms apart)", steady.rate, target=500, unit="/s")
    p99 = steady.latency_ms.get("99%", 1e9)
    report.absolute("redemptions p99 at that load", p99, target=100, unit="ms", at_most=True)

    print(f"\nredemptions: a rush of 64 connections on a perk with {SCARCE_STOCK} in stock...", flush=True)
    scarce_file = work / "scarce.txt"
    scarce = _setup(scarce_file, stock=SCARCE_STOCK, perk_name="Bench scarce")
    rush = wrk(f"{server.base}/", seconds=5, connections=64, script=script, env={"REDEEM_BENCH": str(scarce_file)})
    problems = oversold_check()
    sold = Redemption.objects.filter(perk=scarce).exclude(status=Redemption.Status.CANCELLED).count()
    scarce.refresh_from_db()
    verdict = "; ".join(problems) or "none oversold, no wallet below zero"
    print(f"  {rush.requests:,} requests: {sold} redeemed, stock left {scarce.stock}; {verdict}", flush=True)
    report.check(
        "redemptions: 0 oversold, 0 negative balances",
        not problems and sold == SCARCE_STOCK and scarce.stock == 0,
        "; ".join(problems) or f"sold {sold}, stock left {scarce.stock}",
    )


def oversold_check() -> list[str]:
    """What no rush may leave behind: a perk below zero stock, a wallet below zero points."""
    problems = [f"{perk.name} has stock {perk.stock}" for perk in Perk.objects.filter(stock__lt=0)]
    negative = Balance.objects.filter(allow_negative=False, balance__lt=0).count()
    if negative:
        problems.append(f"{negative} wallets below zero")
    return problems
