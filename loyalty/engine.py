"""The earning rules as pure functions: a brand's program, its members' state and a run of events in;
outcomes and state changes out. No database, no clock, no Django models.

The processor (loyalty.services.processing) loads the state of a batch under its locks, calls
`decide`, and writes what it returns. Because this is pure, the one-by-one path and the batched path
are the same code with a different batch size, and tests drive it with generated event streams.

Rules, in event order per member (the order the API accepted them):
- an event of an inactive membership, without a rule, with a disabled rule or outside the rule's
  window, of a purchase in another currency or below the minimum, or over a cap, is rejected with
  that reason and earns nothing;
- a purchase earns floor(amount x rate x tier multiplier) (loyalty.services.earning.purchase_points);
  a custom event earns the rule's fixed points, never multiplied;
- caps count awarded events of the same type in the brand's day, ISO week and month of `occurred_at`;
- earned points count toward the tier: qualifying points are those earned in the last
  `tier_window_months` months (the current one included); the event that crosses a threshold earns
  at the old rate, the next one at the new;
- a refund takes back floor(awarded x refunded / amount) of its purchase on the running total, at
  most what the wallet holds (the rest is recorded as unrecovered), and lowers the qualifying points:
  a tier those points bought is taken back at once.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from loyalty.periods import month_floor, period_bounds
from loyalty.services.arithmetic import purchase_points, refund_points_due

PURCHASE = "purchase"
REFUND = "refund"
AWARDED = "awarded"
REJECTED = "rejected"
PENDING = "pending"
ONE = Decimal("1")


@dataclass(frozen=True, slots=True)
class RuleSpec:
    event_type: str
    enabled: bool
    points_per_unit: Decimal | None
    currency: str
    minimum_amount: Decimal | None
    points: int | None
    cap_per_day: int | None
    cap_per_week: int | None
    cap_per_month: int | None
    active_from: dt.datetime | None
    active_until: dt.datetime | None
    caps: dict[str, int] = field(init=False)  # period -> cap, only the periods that have one

    def __post_init__(self) -> None:
        periods = (("day", self.cap_per_day), ("week", self.cap_per_week), ("month", self.cap_per_month))
        object.__setattr__(self, "caps", {period: cap for period, cap in periods if cap})


@dataclass(frozen=True, slots=True)
class TierSpec:
    id: int
    name: str
    rank: int
    threshold: int
    multiplier: Decimal


@dataclass(frozen=True)
class Program:
    """A brand's earning configuration, as it is for the whole batch."""

    zone: zoneinfo.ZoneInfo
    tier_window_months: int
    rules: dict[str, RuleSpec]
    tiers: tuple[TierSpec, ...]  # by rank, lowest first

    def tier(self, tier_id: int | None) -> TierSpec | None:
        return next((tier for tier in self.tiers if tier.id == tier_id), None)

    def counts_awards(self, event_type: str) -> bool:
        """Whether awards of this type are counted per member and day (loyalty.models.AwardCounter):
        every custom event, and purchases when their rule has a cap."""
        if event_type == REFUND:
            return False
        if event_type != PURCHASE:
            return True
        rule = self.rules.get(PURCHASE)
        return bool(rule and rule.caps)


@dataclass(slots=True)
class MemberState:
    """What the rules need of one membership; `decide` updates it as it goes."""

    membership_id: int
    active: bool
    tier_id: int | None
    balance: int  # the wallet, locked by the caller
    buckets: dict[dt.date, int] = field(default_factory=dict)  # qualifying points by month (first day)
    counts: dict[tuple[str, dt.date], int] = field(default_factory=dict)  # awarded events by (type, brand day)


@dataclass(slots=True)
class PurchaseState:
    """A purchase that a refund in the batch refers to; `decide` updates it as it goes."""

    event_id: int
    membership_id: int | None
    status: str
    amount: Decimal
    currency: str
    points: int
    refunded_amount: Decimal
    refunded_points: int
    occurred_at: dt.datetime


@dataclass(frozen=True, slots=True)
class EventIn:
    id: int
    type: str
    membership_id: int | None
    occurred_at: dt.datetime
    amount: Decimal | None = None
    currency: str = ""
    refund_of_id: int | None = None
    rejection: str | None = None  # decided before the rules (the member could not be resolved)


@dataclass(slots=True)
class Outcome:
    event_id: int
    membership_id: int | None
    status: str
    reason: str = ""
    points: int = 0  # signed: what the wallet got (a refund's is negative)
    tier_name: str = ""
    multiplier: Decimal | None = None
    balance_after: int | None = None
    unrecovered: int = 0
    refund_of_id: int | None = None  # refunds: the purchase whose posting is reversed


@dataclass
class Decision:
    outcomes: list[Outcome] = field(default_factory=list)
    # (membership id, month) -> qualifying points to add (negative for refunds)
    buckets: dict[tuple[int, dt.date], int] = field(default_factory=dict)
    # (membership id, event type, brand day) -> (awarded events, points) to add
    counts: dict[tuple[int, str, dt.date], tuple[int, int]] = field(default_factory=dict)
    tiers: dict[int, int | None] = field(default_factory=dict)  # membership id -> new tier id
    purchases: dict[int, PurchaseState] = field(default_factory=dict)  # purchases refunds changed


def cap_window_start(program: Program, event_type: str, when: dt.datetime) -> dt.date:
    """The first brand day whose awards the caps of this type look at for an event at `when`."""
    rule = program.rules.get(event_type)
    caps = rule.caps if rule else {}
    bounds = period_bounds(when=when, zone=program.zone)
    starts = [bounds[period][0] for period in caps] or [bounds["day"][0]]
    return min(starts)


def month_floor_back(now: dt.datetime, zone: zoneinfo.ZoneInfo, months: int) -> dt.date:
    """The first month of a window of `months` months that ends with the month of `now` (in `zone`)."""
    first = month_floor(now, zone)
    for _ in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first


def qualifying_points(member: MemberState, window: tuple[dt.date, dt.date]) -> int:
    """Points earned in the tier window (its first and last month, the current one), from the buckets."""
    first, current = window
    return sum(points for month, points in member.buckets.items() if first <= month <= current)


def _rejection(program: Program, event: EventIn, member: MemberState) -> str | None:
    if not member.active:
        return "membership_inactive"
    rule = program.rules.get(event.type)
    if rule is None:
        return "no_rule"
    if not rule.enabled:
        return "rule_inactive"
    if (rule.active_from and event.occurred_at < rule.active_from) or (
        rule.active_until and event.occurred_at >= rule.active_until
    ):
        return "rule_inactive"
    if event.type == PURCHASE:
        if event.currency != rule.currency:
            return "currency_mismatch"
        if rule.minimum_amount is not None and event.amount < rule.minimum_amount:
            return "below_minimum"
    caps = rule.caps
    if caps:
        bounds = period_bounds(when=event.occurred_at, zone=program.zone)
        for period, cap in caps.items():
            start, end = bounds[period]
            awarded = sum(
                count
                for (event_type, day), count in member.counts.items()
                if event_type == event.type and start <= day < end
            )
            if awarded >= cap:
                return "cap_reached"
    return None


def _add(mapping: dict, key, value) -> None:
    mapping[key] = mapping.get(key, 0) + value


def _award(
    program: Program, event: EventIn, member: MemberState, decision: Decision, window: tuple[dt.date, dt.date]
) -> Outcome:
    reason = _rejection(program, event, member)
    if reason:
        return Outcome(event.id, member.membership_id, REJECTED, reason)
    rule = program.rules[event.type]
    tier = program.tier(member.tier_id)
    if event.type == PURCHASE:
        multiplier = tier.multiplier if tier else ONE
        points = purchase_points(amount=event.amount, points_per_unit=rule.points_per_unit, multiplier=multiplier)
    else:
        # Fixed-point events (check-ins, reviews, watch minutes) are bonuses: the tier multiplies the
        # purchase earn rate only.
        points = rule.points
        multiplier = ONE
    day = event.occurred_at.astimezone(program.zone).date()
    if program.counts_awards(event.type):
        member.counts[(event.type, day)] = member.counts.get((event.type, day), 0) + 1
        awarded, total = decision.counts.get((member.membership_id, event.type, day), (0, 0))
        decision.counts[(member.membership_id, event.type, day)] = (awarded + 1, total + points)
    if points > 0:
        member.balance += points
        month = day.replace(day=1)
        _add(member.buckets, month, points)
        _add(decision.buckets, (member.membership_id, month), points)
        # The event that crosses a threshold has earned at the old rate (above); the next one gets the new.
        qualifying = qualifying_points(member, window)
        best = _best_tier(program, qualifying)
        if best is not None and (tier is None or best.rank > tier.rank):
            member.tier_id = best.id
            decision.tiers[member.membership_id] = best.id
    return Outcome(
        event.id,
        member.membership_id,
        AWARDED,
        points=points,
        tier_name=tier.name if tier else "",
        multiplier=multiplier,
        balance_after=member.balance,
    )


def _refund(
    program: Program,
    event: EventIn,
    member: MemberState,
    purchase: PurchaseState,
    decision: Decision,
    window: tuple[dt.date, dt.date],
):
    if purchase.membership_id != member.membership_id:
        return Outcome(event.id, member.membership_id, REJECTED, "unknown_order")
    left = purchase.amount - purchase.refunded_amount
    if event.amount > left:
        return Outcome(event.id, member.membership_id, REJECTED, "refund_exceeds_purchase")
    refunded_total = purchase.refunded_amount + event.amount
    owed = taken = 0
    if purchase.status == AWARDED and purchase.points > 0:
        due = refund_points_due(awarded=purchase.points, purchase_amount=purchase.amount, refunded_total=refunded_total)
        owed = due - purchase.refunded_points
        # Points already spent cannot be taken back: take what the wallet holds, record the rest.
        taken = min(owed, member.balance)
    if owed > 0:
        month = month_floor(purchase.occurred_at, program.zone)
        qualifying_before = qualifying_points(member, window)
        _add(member.buckets, month, -owed)
        _add(decision.buckets, (member.membership_id, month), -owed)
        _tier_after_refund(program, member, decision, qualifying_before, qualifying_points(member, window))
    member.balance -= taken
    purchase.refunded_amount = refunded_total
    purchase.refunded_points += owed
    decision.purchases[purchase.event_id] = purchase
    return Outcome(
        event.id,
        member.membership_id,
        AWARDED,
        points=-taken,
        balance_after=member.balance,
        unrecovered=owed - taken,
        refund_of_id=purchase.event_id if taken > 0 else None,
    )


def _best_tier(program: Program, qualifying: int) -> TierSpec | None:
    return next((tier for tier in reversed(program.tiers) if tier.threshold <= qualifying), None)


def _tier_after_refund(
    program: Program, member: MemberState, decision: Decision, qualifying_before: int, qualifying_after: int
) -> None:
    """A refund takes back the tier its points bought: a member whose tier its qualifying points reached
    before the refund, and no longer reach, moves down to what they reach now. A tier held on points
    that left the window is not the refund's doing (tier requalification decides those)."""
    tier = program.tier(member.tier_id)
    before, after = _best_tier(program, qualifying_before), _best_tier(program, qualifying_after)
    if tier is None or before is None or tier.rank > before.rank:
        return
    if after is None or after.rank < tier.rank:
        member.tier_id = after.id if after is not None else None
        decision.tiers[member.membership_id] = member.tier_id


def decide(
    *,
    program: Program,
    events: list[EventIn],
    members: dict[int, MemberState],
    purchases: dict[int, PurchaseState],
    now: dt.datetime,
) -> Decision:
    """Outcomes of `events` (in the order given), and what they change. Mutates `members` and `purchases`.

    A refund's purchase must be in `purchases` and already processed: the processor never puts a
    purchase and its refund in one batch.
    """
    decision = Decision()
    window = (month_floor_back(now, program.zone, program.tier_window_months), month_floor(now, program.zone))
    for event in events:
        if event.rejection is not None or event.membership_id is None:
            decision.outcomes.append(Outcome(event.id, event.membership_id, REJECTED, event.rejection or "no_member"))
            continue
        member = members[event.membership_id]
        if event.type == REFUND:
            purchase = purchases.get(event.refund_of_id)
            if purchase is None or purchase.status == PENDING:
                raise ValueError(f"refund {event.id}: its purchase must be processed before it")
            decision.outcomes.append(_refund(program, event, member, purchase, decision, window))
        else:
            decision.outcomes.append(_award(program, event, member, decision, window))
    return decision
