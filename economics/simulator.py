"""The rule-set simulator: a brand's real history replayed under its own rules and under another set.

What is replayed: the brand's processed events that occurred in the range (purchases, refunds, custom
events, watched minutes) in the order they were processed, and its redemptions of its own perks in the
range (cancelled ones left out), between them in time. The rules are the processor's own
(loyalty.engine.decide); around them the replay does what the daily job does (loyalty.services.lifecycle),
at the start of each brand day with activity: pending points released on their day, and on a new month
lots expired and tiers weighed again (the only times they can change).

Both columns start from a clean slate: every member of the range at zero, in the entry tier. They compare
like with like; the current column is what the range alone gives, not the ledger's figures (the report
has those). A redemption a member could not afford under a rule set is not made (its count is shown).

Nothing is written: it all reads in one read-only database transaction (config.db.read_only_atomic), and
streams: the events are read in chunks and both rule sets replay each chunk, so the memory is the
members' state, not the history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import QuerySet

from config.db import read_only_atomic
from economics.selectors import CENT, brand_currency, percent, point_value, return_rate
from loyalty import engine
from loyalty.models import Brand, Event
from loyalty.services.lifecycle import tier_decide
from loyalty.services.processing import program_load
from perks.models import Redemption

# The open network's flat rule: 10 points per currency unit, no tiers (Loyalteez' 10 LTZ per $1).
NETWORK_FLAT_RATE = Decimal("10")
NETWORK_DEFAULT_POINT_VALUE = Decimal("0.01")
CHUNK = 5000  # events read and replayed at a time
# The rejections the rules did not make (the member was inactive): the replay keeps them.
KEPT_REJECTIONS = frozenset({"membership_inactive"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TierInput:
    name: str
    threshold: int
    multiplier: Decimal


@dataclass(frozen=True)
class Alternative:
    """What the other rule set changes; what it leaves as None stays the brand's."""

    points_per_unit: Decimal | None = None  # purchase points per currency unit
    tiers: tuple[TierInput, ...] | None = None  # () for no tiers
    expire_months: int | None = None
    never_expire: bool = False
    flat_network: bool = False  # NETWORK_FLAT_RATE per unit, no tiers, valued as the network's point

    def describe(self) -> str:
        parts = []
        if self.flat_network:
            parts.append(f"flat network rule ({NETWORK_FLAT_RATE} per unit, no tiers)")
        if self.points_per_unit is not None:
            parts.append(f"{self.points_per_unit} per unit")
        if self.tiers == ():
            parts.append("no tiers")
        elif self.tiers:
            parts.append("tiers " + ", ".join(f"{t.name} {t.threshold} x{t.multiplier}" for t in self.tiers))
        if self.never_expire:
            parts.append("points never expire")
        elif self.expire_months is not None:
            parts.append(f"points expire after {self.expire_months} months")
        return "; ".join(parts) or "the brand's rules"


def tiers_parse(text: str) -> tuple[TierInput, ...]:
    """`"Green:0:1.0,Gold:500:1.2"` (name:threshold:multiplier, lowest first); "" for no tiers. Raises
    ValueError with a message fit for the person who typed it."""
    tiers = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        try:
            name, threshold, multiplier = (value.strip() for value in part.split(":"))
            tier = TierInput(name, int(threshold), Decimal(multiplier))
        except (ValueError, ArithmeticError) as error:
            raise ValueError(f'"{part}" is not name:threshold:multiplier (for example Gold:500:1.2)') from error
        if not name or tier.threshold < 0 or tier.multiplier <= 0:
            raise ValueError(f'"{part}": a tier needs a name, a threshold of 0 or more and a multiplier above 0')
        tiers.append(tier)
    if [tier.threshold for tier in tiers] != sorted({tier.threshold for tier in tiers}):
        raise ValueError("tiers go lowest first, each with a higher threshold than the one before")
    return tuple(tiers)


@dataclass(frozen=True)
class RuleSet:
    label: str
    program: engine.Program
    points_per_unit: Decimal  # purchases (0: they earn nothing)
    point_value: Decimal | None
    currency: str


@dataclass(frozen=True)
class Column:
    """One rule set's figures over the range."""

    label: str
    points_per_unit: Decimal
    point_value: Decimal | None
    tiers: list[tuple[str, Decimal, Decimal | None]]  # (name, multiplier, return rate %)
    issued: int  # net of refunds
    redeemed: int
    redeemed_value: Decimal
    expired: int
    outstanding: int  # at the end of the range, pending points included
    liability: Decimal | None
    members_by_tier: list[tuple[str, int]]  # at the end of the range, lowest first
    issued_value_pct: Decimal | None  # the value of the points issued as % of spend (the realised return)
    cost_pct_of_revenue: Decimal | None  # value redeemed as % of spend
    redemptions_made: int
    redemptions_unaffordable: int
    months: list[tuple[dt.date, int]]  # points issued per month


@dataclass(frozen=True)
class Comparison:
    brand: str
    start: dt.date
    end: dt.date
    currency: str
    events: int  # replayed
    events_skipped: int  # refunds of purchases before the range
    members: int
    spend: Decimal  # purchases minus refunds: the same under any rules
    current: Column
    alternative: Column
    alternative_described: str


def program_simulate(
    brand: Brand, *, start: dt.date, end: dt.date, alternative: Alternative, progress: Progress | None = None
) -> Comparison:
    """Replay the brand's history of [start, end] (brand days) under its rules and under `alternative`."""
    with read_only_atomic():
        current, other = rule_sets(brand, alternative)
        refunded = _refunded_purchase_ids(brand, start, end)
        replays = [_Replay(current, refunded), _Replay(other, refunded)]
        total = range_events(brand, start, end).count() if progress else 0
        spend = Decimal("0")
        replayed = skipped = 0
        seen_purchases: set[int] = set()
        for item in _timeline(brand, start, end):
            if isinstance(item, _Redemption):
                for replay in replays:
                    replay.day_start(item.day)
                    replay.redeem(item)
                continue
            chunk, now, day = item
            events = []
            for event in chunk:
                if event.type == engine.REFUND and event.refund_of_id not in seen_purchases:
                    skipped += 1  # its purchase is not in the replay: there is nothing to take back
                    continue
                if event.type == engine.PURCHASE:
                    if event.id in refunded:
                        seen_purchases.add(event.id)
                    spend += event.amount
                elif event.type == engine.REFUND:
                    spend -= event.amount
                events.append(event)
            for replay in replays:
                replay.day_start(day)
                replay.events(events, now)
            replayed += len(events)
            if progress:
                progress(replayed + skipped, total)
        columns = [replay.column(spend) for replay in replays]
    return Comparison(
        brand=brand.slug,
        start=start,
        end=end,
        currency=current.currency,
        events=replayed,
        events_skipped=skipped,
        members=len(replays[0].members),
        spend=spend,
        current=columns[0],
        alternative=columns[1],
        alternative_described=alternative.describe(),
    )


def rule_sets(brand: Brand, alternative: Alternative) -> tuple[RuleSet, RuleSet]:
    """The brand's rules as they are now, and the alternative made from them."""
    program = program_load(brand)
    # Brand economics count the brand's own points: network points are the network's (its settlement).
    rules = {kind: dataclasses.replace(rule, network_points_per_unit=None) for kind, rule in program.rules.items()}
    program = dataclasses.replace(program, rules=rules)
    currency = brand_currency(brand)
    value = point_value(brand, currency).value
    purchase = rules.get(engine.PURCHASE)
    current = RuleSet("Current rules", program, _purchase_rate(program), value, currency)

    rate, tiers, alt_value = alternative.points_per_unit, program.tiers, value
    if alternative.flat_network:
        rate, tiers = NETWORK_FLAT_RATE, ()
        alt_value = brand.network.point_value if brand.network_id else NETWORK_DEFAULT_POINT_VALUE
    if alternative.tiers is not None:
        tiers = tuple(
            # Ids of their own (negative: no tier row has one) so that no state mixes them with the brand's.
            engine.TierSpec(-rank, tier.name, rank, tier.threshold, tier.multiplier)
            for rank, tier in enumerate(alternative.tiers, start=1)
        )
    if rate is not None:
        rules = dict(rules)
        rules[engine.PURCHASE] = (
            dataclasses.replace(purchase, points_per_unit=rate)
            if purchase is not None
            else engine.RuleSpec(engine.PURCHASE, True, rate, currency, None, None, None, None, None, None, None)
        )
    expire_months, expire_from = program.expire_months, program.expire_from
    if alternative.never_expire:
        expire_months, expire_from = None, None
    elif alternative.expire_months is not None:
        expire_months, expire_from = alternative.expire_months, None
    other_program = dataclasses.replace(
        program, rules=rules, tiers=tiers, expire_months=expire_months, expire_from=expire_from
    )
    return current, RuleSet("Alternative", other_program, _purchase_rate(other_program), alt_value, currency)


def _purchase_rate(program: engine.Program) -> Decimal:
    rule = program.rules.get(engine.PURCHASE)
    return (rule.points_per_unit if rule is not None else None) or Decimal(0)


# --- reading the history --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Redemption:
    membership_id: int
    cost: int
    value: Decimal
    at: dt.datetime
    day: dt.date


def _bounds(brand: Brand, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = brand.zone
    first = dt.datetime.combine(start, dt.time(), tzinfo=zone)
    return first, dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone)


def range_events(brand: Brand, start: dt.date, end: dt.date) -> QuerySet[Event]:
    """The events a replay of [start, end] reads: processed ones (awarded or rejected) of a member, that
    occurred in the range."""
    first, after = _bounds(brand, start, end)
    return Event.objects.filter(
        brand=brand,
        occurred_at__gte=first,
        occurred_at__lt=after,
        status__in=[Event.Status.AWARDED, Event.Status.REJECTED],
        membership__isnull=False,
    )


def _refunded_purchase_ids(brand: Brand, start: dt.date, end: dt.date) -> set[int]:
    """The purchases that a refund of the range undoes: the only ones whose state the replay keeps."""
    return set(range_events(brand, start, end).filter(type=Event.REFUND).values_list("refund_of_id", flat=True))


def _redemptions(brand: Brand, start: dt.date, end: dt.date) -> Iterator[_Redemption]:
    first, after = _bounds(brand, start, end)
    rows = (
        Redemption.objects.filter(brand=brand, created_at__gte=first, created_at__lt=after, perk__is_network_perk=False)
        .exclude(status=Redemption.Status.CANCELLED)
        .order_by("created_at", "id")
        .values_list("membership_id", "cost", "perk__cash_value", "created_at")
    )
    zone = brand.zone
    for membership_id, cost, value, at in rows.iterator(chunk_size=CHUNK):
        yield _Redemption(membership_id, cost, value or Decimal(0), at, at.astimezone(zone).date())


def history_rows(brand: Brand, start: dt.date, end: dt.date) -> Iterator[tuple]:
    """The events of the range in the order they were processed, as (id, type, membership id, occurred at,
    amount, currency, refund of, reason, processed at)."""
    return _stream(
        range_events(brand, start, end)
        .order_by("id")
        .values_list(
            "id", "type", "membership_id", "occurred_at", "amount", "currency", "refund_of_id", "reason", "processed_at"
        )
    )


def _stream(queryset: QuerySet) -> Iterator[tuple]:
    """The rows of a values_list queryset from a server-side cursor in binary: a million rows without
    holding them, and without parsing every timestamp from text (Django's iterator() would, taking as
    long as the replay itself)."""
    sql, params = queryset.query.sql_with_params()
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor(name="simulator_rows", binary=True) as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            yield from rows


def _timeline(brand: Brand, start: dt.date, end: dt.date) -> Iterator[_Redemption | tuple[list, dt.datetime, dt.date]]:
    """The history in the order it happened: runs of events processed on one brand day (as the engine's
    input, with the moment the last was processed), and redemptions between them.

    A run ends at a new day, before a redemption made before its next event, before a refund of a purchase
    in the run (the engine needs the purchase decided first), and at CHUNK events.
    """
    zone = brand.zone
    rows = history_rows(brand, start, end)
    redemptions = _redemptions(brand, start, end)
    redemption = next(redemptions, None)
    run: list[engine.EventIn] = []
    run_ids: set[int] = set()
    run_day = run_at = None
    for pk, kind, membership_id, occurred_at, amount, currency, refund_of_id, reason, processed_at in rows:
        processed_at = processed_at or occurred_at
        day = processed_at.astimezone(zone).date()
        due = redemption is not None and redemption.at <= processed_at
        if run and (day != run_day or due or refund_of_id in run_ids or len(run) >= CHUNK):
            yield run, run_at, run_day
            run, run_ids = [], set()
        while redemption is not None and redemption.at <= processed_at:
            yield redemption
            redemption = next(redemptions, None)
        run.append(
            engine.EventIn(
                id=pk,
                type=kind,
                membership_id=membership_id,
                occurred_at=occurred_at,
                amount=amount,
                currency=currency,
                refund_of_id=refund_of_id,
                rejection=reason if reason in KEPT_REJECTIONS else None,
            )
        )
        run_ids.add(pk)
        run_day, run_at = day, processed_at
    if run:
        yield run, run_at, run_day
    while redemption is not None:
        yield redemption
        redemption = next(redemptions, None)


# --- one rule set's replay ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Member:
    state: engine.MemberState
    lots: dict[dt.date, int] = field(default_factory=dict)  # wallet points by the month they expire with
    pending: dict[dt.date, int] = field(default_factory=dict)  # pending points by release day
    keep_until: dt.date | None = None


class _Replay:
    """The state of every member under one rule set, and the totals so far."""

    def __init__(self, rules: RuleSet, refunded: set[int]) -> None:
        self.rules = rules
        self.program = rules.program
        self.refunded = refunded
        self.entry_tier = next((tier.id for tier in self.program.tiers if tier.threshold == 0), None)
        self.members: dict[int, _Member] = {}
        self.purchases: dict[int, engine.PurchaseState] = {}
        self.waiting: dict[tuple[int, dt.date], list[int]] = {}  # pending purchases that refunds will need
        self.releases: list[tuple[dt.date, int]] = []  # a heap of (release day, membership id)
        self.day: dt.date | None = None
        self.issued = self.redeemed = self.expired = 0
        self.redeemed_value = Decimal("0")
        self.made = self.unaffordable = 0
        self.months: dict[dt.date, int] = {}

    def member(self, membership_id: int) -> _Member:
        member = self.members.get(membership_id)
        if member is None:
            state = engine.MemberState(membership_id, active=True, tier_id=self.entry_tier, balance=0)
            member = self.members[membership_id] = _Member(state)
        return member

    # The daily job's part, before the day's activity.
    def day_start(self, day: dt.date) -> None:
        if self.day is not None and day <= self.day:
            return
        new_month = self.day is not None and day.replace(day=1) != self.day.replace(day=1)
        self.day = day
        self._release(day)
        if new_month:
            self._expire(day)
            self._tiers(day)

    def _release(self, day: dt.date) -> None:
        month = day.replace(day=1)
        while self.releases and self.releases[0][0] <= day:
            release_on, membership_id = heapq.heappop(self.releases)
            member = self.members[membership_id]
            if release_on in member.pending:
                points = member.pending.pop(release_on)
                if points > 0:
                    member.state.balance += points
                    member.lots[month] = member.lots.get(month, 0) + points
                for purchase_id in self.waiting.pop((membership_id, release_on), []):
                    purchase = self.purchases[purchase_id]
                    purchase.released, purchase.lot = True, month

    def _expire(self, day: dt.date) -> None:
        live = self.program.live_lot(dt.datetime.combine(day, dt.time(12), tzinfo=self.program.zone))
        if live is None or (self.program.expire_from is not None and live <= self.program.expire_from):
            return
        keeping = {tier.id for tier in self.program.tiers if tier.points_never_expire}
        for member in self.members.values():
            if member.state.tier_id in keeping or not member.lots or min(member.lots) >= live:
                continue
            newer = sum(points for month, points in member.lots.items() if month >= live)
            due = member.state.balance - newer
            if due > 0:
                member.state.balance -= due
                self.expired += due
            member.lots = {month: points for month, points in member.lots.items() if month >= live}

    def _tiers(self, day: dt.date) -> None:
        if not self.program.tiers:
            return
        window = self.program.window(dt.datetime.combine(day, dt.time(12), tzinfo=self.program.zone))
        for member in self.members.values():
            state = member.state
            qualifying = engine.qualifying_points(state, window)
            tier, keep_until, _what = tier_decide(self.program, state.tier_id, member.keep_until, qualifying, day)
            state.tier_id, member.keep_until = (tier.id if tier else None), keep_until
            # What no window will count again, and no cap look at: gone, so that the state stays small.
            state.buckets = {month: points for month, points in state.buckets.items() if month >= window[0]}
            state.counts = {key: n for key, n in state.counts.items() if key[1] >= day - dt.timedelta(days=40)}

    def events(self, events: list[engine.EventIn], now: dt.datetime) -> None:
        if not events:
            return
        states = {event.membership_id: self.member(event.membership_id).state for event in events}
        decision = engine.decide(program=self.program, events=events, members=states, purchases=self.purchases, now=now)
        by_id = {event.id: event for event in events}
        today = now.astimezone(self.program.zone).date()
        for outcome in decision.outcomes:
            if outcome.status != engine.AWARDED:
                continue
            event, member = by_id[outcome.event_id], self.members[outcome.membership_id]
            self.issued += outcome.points
            month = today.replace(day=1)
            self.months[month] = self.months.get(month, 0) + outcome.points
            if event.type == engine.REFUND:
                purchase = self.purchases[event.refund_of_id]
                if outcome.source in ("wallet", "released") and purchase.lot is not None:
                    member.lots[purchase.lot] = member.lots.get(purchase.lot, 0) + outcome.points
                continue
            if outcome.lot is not None:
                member.lots[outcome.lot] = member.lots.get(outcome.lot, 0) + outcome.points
            if event.id in self.refunded and event.type == engine.PURCHASE:
                self.purchases[event.id] = engine.PurchaseState(
                    event_id=event.id,
                    membership_id=outcome.membership_id,
                    status=outcome.status,
                    amount=event.amount,
                    currency=event.currency,
                    points=outcome.points,
                    refunded_amount=Decimal(0),
                    refunded_points=0,
                    occurred_at=event.occurred_at,
                    lot=outcome.lot,
                    pending_until=outcome.pending_until,
                )
                if outcome.pending_until is not None:
                    self.waiting.setdefault((outcome.membership_id, outcome.pending_until), []).append(event.id)
        for event in events:
            # A rejected purchase that a refund will name: refunds of it take nothing back.
            if event.type == engine.PURCHASE and event.id in self.refunded and event.id not in self.purchases:
                self.purchases[event.id] = engine.PurchaseState(
                    event.id, event.membership_id, engine.REJECTED, event.amount, event.currency, 0,
                    Decimal(0), 0, event.occurred_at,
                )  # fmt: skip
        for (membership_id, release_on), points in decision.pending.items():
            pending = self.members[membership_id].pending
            if release_on not in pending:
                heapq.heappush(self.releases, (release_on, membership_id))
            pending[release_on] = pending.get(release_on, 0) + points
        keep_until = self.program.tier_keep_until(today)
        for move in decision.tier_moves:
            tier = self.program.tier(move.to_id)
            self.members[move.membership_id].keep_until = keep_until if tier and tier.threshold > 0 else None

    def redeem(self, redemption: _Redemption) -> None:
        state = self.member(redemption.membership_id).state
        if state.balance < redemption.cost:
            self.unaffordable += 1
            return
        state.balance -= redemption.cost
        self.redeemed += redemption.cost
        self.redeemed_value += redemption.value
        self.made += 1

    def column(self, spend: Decimal) -> Column:
        rules, value, rate = self.rules, self.rules.point_value, self.rules.points_per_unit
        outstanding = sum(m.state.balance + sum(m.pending.values()) for m in self.members.values())
        counts: dict[int | None, int] = {}
        for member in self.members.values():
            counts[member.state.tier_id] = counts.get(member.state.tier_id, 0) + 1
        tiers = self.program.tiers or (engine.TierSpec(0, "All members", 1, 0, Decimal(1)),)
        by_tier = [(tier.name, counts.get(tier.id, 0)) for tier in self.program.tiers]
        if counts.get(None):
            by_tier.insert(0, ("No tier", counts[None]))
        if not self.program.tiers:
            by_tier = [("All members", len(self.members))]
        return Column(
            label=rules.label,
            points_per_unit=rules.points_per_unit,
            point_value=value,
            tiers=[
                (tier.name, tier.multiplier, return_rate(points_per_unit=rate, multiplier=tier.multiplier, value=value))
                for tier in tiers
            ],
            issued=self.issued,
            redeemed=self.redeemed,
            redeemed_value=self.redeemed_value,
            expired=self.expired,
            outstanding=outstanding,
            liability=(outstanding * value).quantize(CENT, rounding=ROUND_HALF_UP) if value is not None else None,
            members_by_tier=by_tier,
            issued_value_pct=percent(self.issued * value, spend) if value is not None else None,
            cost_pct_of_revenue=percent(self.redeemed_value, spend),
            redemptions_made=self.made,
            redemptions_unaffordable=self.unaffordable,
            months=sorted(self.months.items()),
        )


# --- the comparison as a table (the command prints it, the portal shows it) ---------------------------


def _money(value: Decimal | None, currency: str) -> str:
    return "-" if value is None else f"{value:,.2f} {currency}"


def _number(value: Decimal) -> str:
    """1.0000 as 1, 1.20 as 1.2."""
    return f"{value.normalize():f}"


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def comparison_rows(comparison: Comparison) -> list[tuple[str, str, str]]:
    """(figure, current rules, alternative): what the command prints and the portal's table shows."""
    currency = comparison.currency
    current, other = comparison.current, comparison.alternative
    rows = [
        ("Points per unit", _number(current.points_per_unit), _number(other.points_per_unit)),
        ("Value of a point", *(f"{c.point_value:.6f}".rstrip("0") if c.point_value else "-" for c in (current, other))),
        ("Points issued", f"{current.issued:,}", f"{other.issued:,}"),
        ("Points redeemed", f"{current.redeemed:,}", f"{other.redeemed:,}"),
        ("Redemptions made", f"{current.redemptions_made:,}", f"{other.redemptions_made:,}"),
        ("Redemptions unaffordable", f"{current.redemptions_unaffordable:,}", f"{other.redemptions_unaffordable:,}"),
        ("Points expired", f"{current.expired:,}", f"{other.expired:,}"),
        ("Outstanding at the end", f"{current.outstanding:,}", f"{other.outstanding:,}"),
        ("Liability", _money(current.liability, currency), _money(other.liability, currency)),
        ("Value issued, % of spend", _pct(current.issued_value_pct), _pct(other.issued_value_pct)),
        ("Cost, % of revenue (redeemed)", _pct(current.cost_pct_of_revenue), _pct(other.cost_pct_of_revenue)),
    ]
    for column, side in ((current, 0), (other, 1)):
        for name, multiplier, rate in column.tiers:
            label = f"Return rate, {name} (x{_number(multiplier)})"
            rows.append((label, _pct(rate), "") if side == 0 else (label, "", _pct(rate)))
    members = dict.fromkeys([name for name, _ in current.members_by_tier + other.members_by_tier])
    current_members, other_members = dict(current.members_by_tier), dict(other.members_by_tier)
    for name in members:
        rows.append(
            (
                f"Members in {name}",
                f"{current_members[name]:,}" if name in current_members else "",
                f"{other_members[name]:,}" if name in other_members else "",
            )
        )
    return rows
