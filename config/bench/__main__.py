"""`make bench`: Tally measured as a user runs it, every figure a ratio against a baseline of the same run.

    python -m config.bench                   everything (about 25 minutes, the lifecycle section 12 of them)
    python -m config.bench --only single     some sections: single, e2e, redeem, heartbeat, reads, lifecycle
    python -m config.bench --seconds 20      shorter sustained runs (the targets speak of 60 s)
    python -m config.bench --only lifecycle --lifecycle-members 200000   the daily lifecycle job, smaller
    python -m config.bench --only dashboard  the economics dashboard at 1,000,000 ledger entries
    python -m config.bench --only simulator  the rule-set simulator replaying 1,000,000 events
    python -m config.bench --only leaderboard   leaderboard reads at 1,000,000 ranked members

It creates a throwaway database (dropped at the end, also on failure or Ctrl-C), starts the processes
`make run` starts (gunicorn, a Celery worker, beat: config.supervisor.process_commands) against it and
against Redis databases of its own, and loads them over HTTP from this process (wrk for high request
rates, a Python client for the batch endpoint). The machine is shared and noisy: each target is a
ratio to something measured in the same run, and the run says which targets it met.

The lifecycle section needs no server: it seeds brands of 10,000 and of `--lifecycle-members` members
set-based into a throwaway database of its own and times the daily points-lifecycle job on each
(config/bench/lifecycle.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The bench's seeded viewers all come from this machine's address and each sends far more heartbeats
# than a page does (1,000 of them stand for tens of thousands): the watch limits, which would refuse
# them, are raised out of the way. They are still counted on every heartbeat, so their cost is measured.
BENCH_SERVER_ENV = {
    "LIVESTREAM_HEARTBEATS_PER_MEMBER": "1000000000",
    "LIVESTREAM_HEARTBEATS_PER_ADDRESS": "1000000000",
    "LIVESTREAM_LEASES_PER_MEMBER": "1000000000",
    "LIVESTREAM_LEASES_PER_ADDRESS": "1000000000",
}


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m config.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        help="comma-separated sections: single, e2e, redeem, heartbeat, reads, lifecycle, dashboard, simulator, "
        "leaderboard",
    )
    parser.add_argument("--seconds", type=int, default=60, help="length of the sustained end-to-end run")
    parser.add_argument("--short", type=int, default=15, help="length of each rate measurement")
    parser.add_argument(
        "--lifecycle-members", type=int, default=1_000_000, help="members of the lifecycle section's big brand"
    )
    parser.add_argument(
        "--dashboard-members", type=int, default=250_000, help="members of the dashboard brand (4 entries each)"
    )
    parser.add_argument("--simulator-events", type=int, default=1_000_000, help="events the simulator replays")
    args = parser.parse_args()
    every = {"single", "e2e", "redeem", "heartbeat", "reads", "lifecycle", "dashboard", "simulator", "leaderboard"}
    sections = set(args.only.split(",")) if args.only else every

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management.base import OutputWrapper

    from config.bench import ingest
    from config.bench.report import Report
    from config.bench.server import Server, free_port
    from ledger.management.commands.ledger_bench import _throwaway_database

    report = Report(machine=_machine())
    print(f"Tally bench on {report.machine}", flush=True)
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="tally-bench-logs-"))
    try:
        if sections & {"single", "e2e", "redeem", "heartbeat"}:
            with _throwaway_database(f"tally_bench_{os.getpid()}", OutputWrapper(sys.stdout)):
                brand = ingest.brand_seed()
                keys = ingest.api_keys(brand, 40)
                with Server(port=free_port(), log_dir=logs, env=BENCH_SERVER_ENV) as server:
                    print(f"server up at {server.base} (logs: {logs})", flush=True)
                    if "single" in sections:
                        _single(report, server, brand, keys, args)
                    if "e2e" in sections:
                        _end_to_end(report, server, brand, keys, args)
                    if "redeem" in sections:
                        from config.bench import redeem

                        redeem.run(report, server, seconds=args.short)
                    if "heartbeat" in sections:
                        from config.bench import heartbeat

                        heartbeat.run(report, server, seconds=args.short)
        if "reads" in sections:
            print("\nbalance reads (ledger_bench: 1,000 entries, then 1,000,000):", flush=True)
            # Its own process: ledger_bench forks workers, and this process holds broker connections
            # (the Celery pings) that a forked child would try, and fail, to close.
            output = subprocess.run(  # noqa: S603 - our own command
                [sys.executable, str(settings.BASE_DIR / "manage.py"), "ledger_bench", "--transactions", "2000"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            print(output, flush=True)
            _reads(report, output)
        if "lifecycle" in sections:
            from config.bench import lifecycle

            lifecycle.run(report, members=args.lifecycle_members)
        if "dashboard" in sections:
            from config.bench import dashboard

            dashboard.run(report, members=args.dashboard_members)
        if "simulator" in sections:
            from config.bench import simulator

            simulator.run(report, members=max(1_000, args.simulator_events // 10), events=args.simulator_events)
        if "leaderboard" in sections:
            from config.bench import leaderboard

            leaderboard.run(report)
    finally:
        print(f"\n{report.render()}\nwhole run: {time.monotonic() - started:.0f} s", flush=True)
    return 0 if report.all_met else 1


def _reads(report, output: str) -> None:
    found = re.findall(r"balance read with ([\d,]+) entries in the ledger: median (\d+) µs", output)
    if len(found) != 2:
        report.check("balance reads measured", False, "ledger_bench printed no read figures")
        return
    (small_entries, small), (big_entries, big) = found
    report.absolute(
        f"balance read at {big_entries} entries / at {small_entries} ({big} vs {small} µs)",
        int(big) / int(small),
        target=1.5,
        unit="x",
        at_most=True,
    )


def _single(report, server, brand, keys, args) -> None:
    from config.bench import ingest

    print("\nsingle-event endpoint vs GET /api/v1/time...", flush=True)
    accepted, floor, detail = ingest.single_endpoint(server, keys, seconds=args.short)
    print(f"  {detail}", flush=True)
    ingest.wait_processed(brand, timeout=600)
    report.ratio("POST /api/v1/events accepted / GET /api/v1/time", accepted, floor, target=0.5, unit="req/s")


def _end_to_end(report, server, brand, keys, args) -> None:
    from config.bench import ingest

    print(f"\nend to end, batched: batches of 1,000 for {args.seconds} s...", flush=True)
    batched = ingest.end_to_end_batched(server, brand, keys[0], seconds=args.seconds)
    print(f"  {batched.rate:,.0f} events/s: {batched.detail}", flush=True)
    report.absolute("end to end, batched (events/s, HTTP to ledger)", batched.rate, target=5000, unit="events/s")

    print("\nend to end, one at a time (batch size 1, the same code)...", flush=True)
    one = ingest.end_to_end_one_by_one(server, brand, keys, seconds=args.short)
    print(f"  {one.rate:,.0f} events/s: {one.detail}", flush=True)
    report.ratio("end to end, batched / batch size 1", batched.rate, one.rate, target=10, unit="events/s")

    problems = ingest.books_check(brand)
    verdict = "; ".join(problems) or "every event processed once, reconcile and verify_ledger clean"
    print(f"\nbooks after the ingest runs: {verdict}", flush=True)
    report.check("ingest: 0 lost, 0 doubled, reconcile and verify_ledger clean", not problems, "; ".join(problems))


if __name__ == "__main__":
    sys.exit(main())
