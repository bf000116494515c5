"""Earning at volume, end to end through HTTP: the single endpoint against the server's floor, and the
batched pipeline against today's one-event-at-a-time behaviour through the same code."""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.core.management import CommandError, call_command
from django.db.models import Count, Sum

from config.bench.load import BatchRun, lua, post_batches, wrk
from config.bench.server import Server
from ledger.models import Balance, Transaction
from loyalty.models import Brand, EarnRule, Event, Tier
from loyalty.services.members import api_key_create

MEMBERS = 20_000  # the population the events are spread over (created on first sight by the processor)


def brand_seed(slug: str = "bench") -> Brand:
    """A Starbucks-model brand: 1 point per $1, three tiers, a check-in a day."""
    brand = Brand.objects.create(name="Bench Coffee", slug=slug, timezone="America/Los_Angeles")
    EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=Decimal("1"), currency="USD")
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5, cap_per_day=1)
    for rank, (name, threshold, multiplier) in enumerate(
        [("Green", 0, "1.00"), ("Gold", 500, "1.20"), ("Reserve", 2500, "1.70")], start=1
    ):
        Tier.objects.create(brand=brand, name=name, rank=rank, threshold=threshold, multiplier=Decimal(multiplier))
    return brand


def api_keys(brand: Brand, count: int) -> list[str]:
    """One key per till: the per-key throttle (API_THROTTLE_RATE) applies to each."""
    return [api_key_create(brand=brand, name=f"till {n}")[1] for n in range(count)]


def pending(brand: Brand) -> int:
    return Event.objects.filter(brand=brand, status=Event.Status.PENDING).count()


def wait_processed(brand: Brand, timeout: float) -> float:
    """Block until the brand has no pending events; returns the monotonic time it got there.

    Asks whether any is pending (the first row of the partial index), not how many: counting a backlog
    of 100,000 every 0.1 s took a sixth of a core from the processor it was timing."""
    deadline = time.monotonic() + timeout
    while Event.objects.filter(brand=brand, status=Event.Status.PENDING).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{pending(brand)} events still pending after {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic()


@dataclass
class Throughput:
    events: int
    seconds: float
    detail: str

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def single_endpoint(server: Server, keys: list[str], seconds: int, rounds: int = 3) -> tuple[float, float, str]:
    """Accepted events/s of POST /api/v1/events and requests/s of GET /api/v1/time, same server, same run:
    `seconds` of each, in `rounds` alternating turns, so that a neighbour taking the machine's CPU for a
    while weighs on both sides, not on one."""
    turn = max(5, round(seconds / rounds))
    floors, accepts = [], []
    for _ in range(rounds):
        floors.append(wrk(f"{server.base}/api/v1/time", seconds=turn))
        script = lua("events.lua", keys=keys, tag=uuid.uuid4().hex[:8], members=MEMBERS)
        accepts.append(wrk(f"{server.base}/", seconds=turn, script=script))
    floor = sum(run.rate * run.seconds for run in floors) / sum(run.seconds for run in floors)
    accepted = sum(run.rate * run.seconds for run in accepts) / sum(run.seconds for run in accepts)
    detail = (
        f"GET /api/v1/time {floor:,.0f}/s (rounds: {', '.join(f'{run.rate:,.0f}' for run in floors)}; "
        f"p99 {max(run.latency_ms.get('99%', 0) for run in floors):.0f} ms); POST /api/v1/events {accepted:,.0f}/s "
        f"accepted (rounds: {', '.join(f'{run.rate:,.0f}' for run in accepts)}; "
        f"p99 {max(run.latency_ms.get('99%', 0) for run in accepts):.0f} ms, "
        f"{sum(run.non_2xx for run in accepts)} not 2xx)"
    )
    return accepted, floor, detail


def end_to_end_batched(server: Server, brand: Brand, key: str, seconds: int) -> Throughput:
    """Batches of 1,000 over HTTP for `seconds` (1 in 100 events a retry of one sent before), until every
    accepted event is processed: events per second from the first request to the last outcome."""
    tag = uuid.uuid4().hex[:8]

    def item(client: int, n: int, i: int) -> dict:
        # Deterministic in (client, batch, position): a retry sends exactly the same body.
        number = f"{tag}-{client}-{n}-{i}"
        member = {"email": f"m{(client * 7919 + n * 1009 + i * 31) % MEMBERS}@bench.example"}
        if i % 10 == 9:
            return {"type": "check_in", "member": member, "idempotency_key": number}
        amount = f"{1 + (client * 31 + n * 17 + i * 7) % 2900 / 100:.2f}"
        return {"type": "purchase", "member": member, "order_id": number, "amount": amount, "currency": "USD"}

    def batch(client: int, n: int) -> list[dict]:
        # 1 in 100 is a till retrying an event of its previous batch: replayed, never doubled.
        return [item(client, n - 1, i + 1) if n and i % 100 == 0 else item(client, n, i) for i in range(1000)]

    started = time.monotonic()
    before = Event.objects.filter(brand=brand).count()
    run: BatchRun = post_batches(port=server.port, key=key, make_batch=batch, seconds=seconds)
    sent_done = time.monotonic()
    processed_while_sending = Event.objects.filter(brand=brand).exclude(status="pending").count() - before
    done = wait_processed(brand, timeout=600)
    elapsed = done - started
    detail = (
        f"{run.sent:,} sent in {run.seconds:.0f} s ({run.accepted:,} new, {run.sent - run.accepted - run.refused:,} "
        f"retries replayed, {run.refused} refused, {run.failed_requests} failed requests); accepted "
        f"{run.sent / run.seconds:,.0f}/s; processed {processed_while_sending / (sent_done - started):,.0f}/s while "
        f"sending; all processed {done - sent_done:.1f} s after the last batch"
    )
    return Throughput(run.accepted, elapsed, detail)


def end_to_end_one_by_one(server: Server, brand: Brand, keys: list[str], seconds: int) -> Throughput:
    """Today's one-at-a-time behaviour through the same code: one event per request (the single endpoint)
    and one event per processing batch (the worker restarted with INGEST_BATCH_SIZE=1)."""
    server.restart("worker", INGEST_BATCH_SIZE="1")
    try:
        before = Event.objects.filter(brand=brand).count()
        started = time.monotonic()
        script = lua("events.lua", keys=keys, tag=uuid.uuid4().hex[:8], members=MEMBERS)
        result = wrk(f"{server.base}/", seconds=seconds, script=script, connections=16)
        done = wait_processed(brand, timeout=900)
        accepted = Event.objects.filter(brand=brand).count() - before
    finally:
        server.restart("worker")
    detail = (
        f"{accepted:,} events accepted one per request ({result.rate:,.0f}/s) and processed one per batch; "
        f"all processed {done - started - result.seconds:.1f} s after the last request"
    )
    return Throughput(accepted, done - started, detail)


def books_check(brand: Brand) -> list[str]:
    """What must hold after the runs: every event processed exactly once, the books balanced."""
    problems = []
    events = Event.objects.filter(brand=brand)
    if events.filter(status=Event.Status.PENDING).exists():
        problems.append("events still pending")
    awarded = events.filter(status=Event.Status.AWARDED, points__gt=0)
    postings = Transaction.objects.filter(idempotency_key__startswith="event:").count()
    if postings != awarded.count():
        problems.append(f"{awarded.count()} events earned points but there are {postings} event postings")
    doubled = (
        Transaction.objects.filter(idempotency_key__startswith="event:")
        .values("idempotency_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    if doubled.exists():
        problems.append("an event was posted twice")
    points = awarded.aggregate(total=Sum("points"))["total"] or 0
    wallets = wallets_total(brand)
    if points != wallets:
        problems.append(f"events earned {points} points but the wallets hold {wallets}")
    return problems + ledger_audit()


def wallets_total(brand: Brand) -> int:
    """The points the brand's wallets hold (their rolled-up balance rows)."""
    wallets = Balance.objects.filter(account__code__startswith=f"brand:{brand.pk}:wallet:")
    return wallets.aggregate(total=Sum("balance"))["total"] or 0


def ledger_audit() -> list[str]:
    """`reconcile` and `verify_ledger`, as an operator runs them: what they found, if anything."""
    problems = []
    for command in ("reconcile", "verify_ledger"):
        out = io.StringIO()
        try:
            call_command(command, stdout=out, stderr=out)
        except (SystemExit, CommandError) as error:
            if not isinstance(error, SystemExit) or error.code:
                problems.append(f"{command} failed: {out.getvalue()[-500:]} {error}")
    return problems
