"""`make chaos`: a running Tally, as `make run` starts it, under the faults production will meet.

    python -m config.chaos                 every scenario (about two minutes)
    python -m config.chaos --only redis    some: worker, redis, postgres

It starts the supervisor (`python -m config.supervisor`: web, Celery worker, beat) on embedded
PostgreSQL and Redis of its own, in a throwaway folder (DATABASE_URL / REDIS_URL are ignored: the
scenarios kill these servers), and loads it over HTTP the way tills do: each event is sent until the
server accepts it, retried with the same order id after a 5xx or a dropped connection, as a POS
retries. Then, for each scenario:

  worker    SIGKILL the Celery worker (and its pool) while 2,000 events are in flight;
  redis     SIGKILL the embedded Redis while events are being accepted (the supervisor starts it again);
  postgres  drop every PostgreSQL connection (pg_terminate_backend), twice, under load.

After each: every accepted event has exactly one outcome, nothing is lost or credited twice, the
brand's wallets hold what its events earned, and `reconcile` and `verify_ledger` are clean; and no
answer was a 500 (a server that is away is a 503 in the error shape). It prints a table of what it
did and what it found, and exits non-zero if anything did not hold.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = ("worker", "redis", "postgres")
OUTCOME_TIMEOUT_SECONDS = 90.0  # every accepted event has its outcome within this long after the fault
RETRY_PAUSE_SECONDS = 0.5


@dataclass
class Load:
    """What a scenario's tills sent and were answered."""

    statuses: Counter = field(default_factory=Counter)  # every answer, retries included ("conn" = dropped)
    accepted: set[str] = field(default_factory=set)  # order ids the server accepted (2xx)
    given_up: set[str] = field(default_factory=set)  # never accepted, even after retries
    not_error_shape: int = 0  # 4xx/5xx answers not in the API's error shape


@dataclass
class Finding:
    scenario: str
    fault: str
    load: Load
    problems: list[str]
    recovered_seconds: float | None


class Tills:
    """Threads posting purchases, one order id each, retrying each until accepted (or `retries` spent)."""

    def __init__(self, *, port: int, key: str, tag: str, threads: int = 6, retries: int = 60) -> None:
        self.port, self.key, self.tag, self.threads, self.retries = port, key, tag, threads, retries
        self.load = Load()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _send(self, conn: http.client.HTTPConnection, order_id: str) -> tuple[http.client.HTTPConnection, bool]:
        body = json.dumps(
            {
                "type": "purchase",
                "member": {"email": f"{order_id.rsplit('-', 1)[1]}@chaos.example"},
                "order_id": order_id,
                "amount": "4.20",
                "currency": "USD",
            }
        )
        headers = {"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json"}
        try:
            conn.request("POST", "/api/v1/events", body, headers)
            answer = conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            with self._lock:
                self.load.statuses["conn"] += 1
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30), False
        status = answer.status
        with self._lock:
            self.load.statuses[status] += 1
            if status >= 400 and not _error_shaped(data):
                self.load.not_error_shape += 1
        return conn, 200 <= status < 300

    def _till(self, number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        while not self._stop.is_set():
            order_id = f"{self.tag}-{number}-{n}"
            n += 1
            for _attempt in range(self.retries):
                conn, accepted = self._send(conn, order_id)
                if accepted:
                    with self._lock:
                        self.load.accepted.add(order_id)
                    break
                time.sleep(RETRY_PAUSE_SECONDS)
            else:
                with self._lock:
                    self.load.given_up.add(order_id)
        conn.close()

    def __enter__(self) -> Tills:
        self._workers = [threading.Thread(target=self._till, args=(n,), daemon=True) for n in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.retries * (RETRY_PAUSE_SECONDS + 30))


def _error_shaped(data: bytes) -> bool:
    try:
        error = json.loads(data)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and {"code", "message", "fields"} <= set(error)


class Tally:
    """`python -m config.supervisor` in a throwaway folder, on embedded servers of its own."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Tally:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "config.supervisor"],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Tally did not start; see {self.log}")
            time.sleep(0.5)
        return self

    def _answers(self) -> bool:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/api/v1/time")
            return conn.getresponse().status == 200
        return False

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def worker_pids(self) -> list[int]:
        """The Celery worker's main process and its pool (the supervisor's child running `celery worker`)."""
        import psutil

        pids = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                command = child.cmdline()
                if "celery" in " ".join(command) and "worker" in command:
                    pids.append(child.pid)
        return pids


def _brand_and_key():
    from config.bench.ingest import brand_seed
    from loyalty.services.members import api_key_create

    brand = brand_seed(slug=f"chaos-{uuid.uuid4().hex[:6]}")
    return brand, api_key_create(brand=brand, name="chaos till")[1]


def _wait_outcomes(brand) -> float | None:
    """Seconds until every accepted event has an outcome (None: not within OUTCOME_TIMEOUT_SECONDS)."""
    from django.db import connection

    from loyalty.models import Event

    started = time.monotonic()
    while time.monotonic() - started < OUTCOME_TIMEOUT_SECONDS:
        try:
            pending = Event.objects.filter(brand=brand, status=Event.Status.PENDING).count()
        except Exception:
            connection.close()
            pending = -1
        if pending == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def _books(brand, load: Load) -> list[str]:
    """What must hold: one outcome per accepted event, none lost or doubled, wallets = what events earned,
    the ledger reconciled and its chains intact, no 500s and every error in the error shape."""
    from django.db.models import Count, Sum

    from config.bench.ingest import ledger_audit, wallets_total
    from ledger.models import Transaction
    from loyalty.models import Event

    problems = []
    events = Event.objects.filter(brand=brand)
    by_order = dict(events.values_list("order_id").annotate(n=Count("id")).values_list("order_id", "n"))
    lost = [order_id for order_id in load.accepted if order_id not in by_order]
    if lost:
        problems.append(f"{len(lost)} accepted events lost (e.g. {lost[0]})")
    if any(n > 1 for n in by_order.values()):
        problems.append("an order id was stored twice")
    if events.filter(status=Event.Status.PENDING).exists():
        problems.append(f"{events.filter(status=Event.Status.PENDING).count()} events without an outcome")
    if events.filter(status=Event.Status.FAILED).exists():
        problems.append(f"{events.filter(status=Event.Status.FAILED).count()} events failed (set aside)")
    earned = events.filter(status=Event.Status.AWARDED).exclude(points=0)
    keys = [f"event:{pk}" for pk in earned.values_list("pk", flat=True)]
    postings = Transaction.objects.filter(idempotency_key__in=keys).count()
    if postings != len(keys):
        problems.append(f"{len(keys)} events earned points, {postings} ledger postings")
    points = earned.aggregate(total=Sum("points"))["total"] or 0
    wallets = wallets_total(brand)
    if points != wallets:
        problems.append(f"events earned {points} points, the wallets hold {wallets}")
    if load.statuses.get(500):
        problems.append(f"{load.statuses[500]} answers were 500")
    if load.not_error_shape:
        problems.append(f"{load.not_error_shape} error answers not in the error shape")
    if load.given_up:
        problems.append(f"{len(load.given_up)} events never accepted, however often they were sent")
    return problems + ledger_audit()


# --- the scenarios ----------------------------------------------------------------------------------------


def scenario_worker(tally: Tally) -> Finding:
    """SIGKILL the worker and its pool while 2,000 events are in flight."""
    from loyalty.models import Event

    brand, key = _brand_and_key()
    load = Load()
    tag = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

    def upload(batch: int) -> None:
        events = [
            {
                "type": "purchase",
                "member": {"email": f"m{(batch * 1000 + i) % 300}@chaos.example"},
                "order_id": f"{tag}-{batch}-{i}",
                "amount": "3.10",
                "currency": "USD",
            }
            for i in range(1000)
        ]
        conn = http.client.HTTPConnection("127.0.0.1", tally.port, timeout=60)
        conn.request("POST", "/api/v1/events/batch", json.dumps({"events": events}), headers)
        answer = conn.getresponse()
        body = json.loads(answer.read())
        conn.close()
        load.statuses[answer.status] += 1
        for item, result in zip(events, body.get("results", []), strict=False):
            if result["http_status"] in (200, 201, 202):
                load.accepted.add(item["order_id"])

    upload(0)
    second = threading.Thread(target=upload, args=(1,))
    second.start()  # the second thousand arrives while the first is being processed
    deadline = time.monotonic() + 10
    events = Event.objects.filter(brand=brand)
    while not events.exclude(status=Event.Status.PENDING).exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    killed = tally.worker_pids()
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    done = events.exclude(status=Event.Status.PENDING).count()
    second.join()
    recovered = _wait_outcomes(brand)
    fault = f"SIGKILL of the worker ({len(killed)} processes) when {done:,} of the 2,000 events were processed"
    return Finding("worker", fault, load, _books(brand, load), recovered)


def scenario_redis(tally: Tally, data_dir: Path) -> Finding:
    """SIGKILL the embedded Redis while tills send events; the supervisor starts it again."""
    brand, key = _brand_and_key()
    pid_file = data_dir / "redis" / "redis.pid"
    with Tills(port=tally.port, key=key, tag=uuid.uuid4().hex[:8]) as tills:
        time.sleep(3)
        old_pid = int(pid_file.read_text().strip())
        os.kill(old_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        back = None
        while time.monotonic() - killed_at < 30:
            with contextlib.suppress(OSError, ValueError):
                pid = int(pid_file.read_text().strip())
                if pid != old_pid and _alive(pid):
                    back = time.monotonic() - killed_at
                    break
            time.sleep(0.05)
        time.sleep(5)
    recovered = _wait_outcomes(brand)
    problems = _books(brand, tills.load)
    if back is None:
        problems.append("the supervisor did not start Redis again within 30 s")
    fault = f"SIGKILL of Redis under load; the supervisor had a new one up {back or 0:.1f} s later"
    return Finding("redis", fault, tills.load, problems, recovered)


def scenario_postgres(tally: Tally) -> Finding:
    """Terminate every PostgreSQL connection of Tally's database, twice, under load."""
    from django.db import connection

    brand, key = _brand_and_key()
    terminated = 0
    with Tills(port=tally.port, key=key, tag=uuid.uuid4().hex[:8]) as tills:
        for _ in range(2):
            time.sleep(3)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                terminated += cursor.fetchone()[0]
        time.sleep(3)
    recovered = _wait_outcomes(brand)
    fault = f"pg_terminate_backend of every connection, twice under load ({terminated} connections)"
    return Finding("postgres", fault, tills.load, _books(brand, tills.load), recovered)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _table(findings: list[Finding]) -> str:
    lines = [
        f"{'scenario':<9} {'answers (status: count)':<40} {'accepted':>8} {'outcomes in':>11}  verdict",
        "-" * 100,
    ]
    for finding in findings:
        answers = ", ".join(f"{status}: {count:,}" for status, count in sorted(finding.load.statuses.items(), key=str))
        recovered = f"{finding.recovered_seconds:.1f} s" if finding.recovered_seconds is not None else "never"
        verdict = "ok" if not finding.problems else "; ".join(finding.problems)
        lines.append(f"{finding.scenario:<9} {answers:<40} {len(finding.load.accepted):>8,} {recovered:>11}  {verdict}")
        lines.append(f"{'':<9} fault: {finding.fault}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m config.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    chosen = [name for name in SCENARIOS if not args.only or name in args.only.split(",")]

    data_dir = Path(tempfile.mkdtemp(prefix="tally-chaos-"))
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    from config.bench.server import free_port

    port = free_port()
    os.environ.update({"TALLY_DATA_DIR": str(data_dir), "PORT": str(port), "HOST": "127.0.0.1", "DEBUG": "false"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    passed = False
    # Registered first, so it runs last: after the embedded servers (started below) have stopped.
    atexit.register(lambda: passed and shutil.rmtree(data_dir, ignore_errors=True))
    import django

    django.setup()  # starts the embedded servers in data_dir; the supervisor joins them

    findings: list[Finding] = []
    log = data_dir / "tally.log"
    print(f"Tally chaos run: servers and logs in {data_dir}", flush=True)
    started = time.monotonic()
    try:
        with Tally(dict(os.environ), port, log) as tally:
            print(f"Tally is up on port {port} ({time.monotonic() - started:.0f} s)", flush=True)
            scenarios = {
                "worker": lambda: scenario_worker(tally),
                "redis": lambda: scenario_redis(tally, data_dir),
                "postgres": lambda: scenario_postgres(tally),
            }
            for name in chosen:
                print(f"\n{name}: {globals()[f'scenario_{name}'].__doc__}", flush=True)
                finding = scenarios[name]()
                findings.append(finding)
                print(f"  {'ok' if not finding.problems else '; '.join(finding.problems)}", flush=True)
    finally:
        print(f"\n{_table(findings)}\nwhole run: {time.monotonic() - started:.0f} s (log: {log})", flush=True)
    passed = len(findings) == len(chosen) and not any(finding.problems for finding in findings)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
