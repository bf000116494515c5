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
- a purchase under a rule with a return window (`pending_days`) earns pending points: counted toward
  the tier at once, spendable when the lifecycle job releases them on `pending_until`;
- a custom event whose rule has a streak pays the bonus once when its run of consecutive brand days
  (or weeks) with an awarded event reaches the streak's length; a gap starts a new run;
- every earn names the month its points expire with (its lot): the month it occurred in, or, for an
  event processed so late that this month's points have expired already, the oldest month still live;
- a refund takes back floor(awarded x refunded / amount) of its purchase on the running total: from the
  pending points while its window is open (all of it), nothing once its points expired, else at most
  what the wallet holds (the rest is recorded as unrecovered); it lowers the qualifying points: a tier
  those points bought is taken back at once.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from loyalty.periods import month_floor, months_add, period_bounds, tier_window
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
    pending_days: int = 0
    streak_length: int | None = None
    streak_period: str = "day"
    streak_bonus: int | None = None
    network_points_per_unit: Decimal | None = None  # purchases of a network brand: flat, no tier multiplier
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
    points_never_expire: bool = False


ROLLING = "rolling"
CALENDAR_YEAR = "calendar_year"
END_OF_PERIOD = "end_of_period"


@dataclass(frozen=True)
class Program:
    """A brand's earning configuration, as it is for the whole batch."""

    zone: zoneinfo.ZoneInfo
    tier_window_months: int
    rules: dict[str, RuleSpec]
    tiers: tuple[TierSpec, ...]  # by rank, lowest first
    expire_months: int | None = None  # None: points never expire
    expire_from: dt.date | None = None  # points earned before this month count as earned in it (expiry start)
    tier_window: str = ROLLING
    tier_downgrade: str = "immediately"

    def tier(self, tier_id: int | None) -> TierSpec | None:
        return next((tier for tier in self.tiers if tier.id == tier_id), None)

    def window(self, now: dt.datetime) -> tuple[dt.date, dt.date]:
        """The first and last month whose earned points qualify for a tier at `now`."""
        return tier_window(
            when=now, zone=self.zone, calendar_year=self.tier_window == CALENDAR_YEAR, months=self.tier_window_months
        )

    def tier_keep_until(self, today: dt.date) -> dt.date | None:
        """Under the end-of-period policy, the last day a tier qualified for on `today` is kept: the end of
        the next qualification period (the following calendar year, or as many months on). None: a tier
        goes as soon as the points do."""
        if self.tier_downgrade != END_OF_PERIOD:
            return None
        if self.tier_window == CALENDAR_YEAR:
            return dt.date(today.year + 1, 12, 31)
        return months_add(today.replace(day=1), self.tier_window_months + 1) - dt.timedelta(days=1)

    def live_lot(self, now: dt.datetime) -> dt.date | None:
        """The oldest month whose points have not expired at `now` (None: points never expire)."""
        if self.expire_months is None:
            return None
        return months_add(month_floor(now, self.zone), -self.expire_months)

    def lot_expired(self, month: dt.date, now: dt.datetime, tier_id: int | None) -> bool:
        """Whether the points of lot `month` have expired at `now` (a tier may keep them)."""
        live = self.live_lot(now)
        if live is None or max(month, self.expire_from or month) >= live:
            return False
        tier = self.tier(tier_id)
        return not (tier and tier.points_never_expire)

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
    streaks: dict[str, StreakState] = field(default_factory=dict)  # the current run, by event type
    network_balance: int = 0  # the person's network wallet (network brands; locked by the caller)


@dataclass(slots=True)
class StreakState:
    last_period: dt.date  # the run's last brand day, or the Monday of its last week
    length: int
    bonus_paid: bool


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
    lot: dt.date | None = None  # the month its points expire with (None: not in a wallet, or unknown)
    pending_until: dt.date | None = None  # earned pending (a return window), released on this day
    released: bool = False  # its pending points were released to the wallet
    network_points: int = 0
    refunded_network_points: int = 0


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
    lot: dt.date | None = None  # earns to the wallet: the month the points expire with
    pending_until: dt.date | None = None  # earns: pending until this brand day (refunds: of their purchase)
    streak_bonus: int = 0  # part of `points`
    # Refunds: where the points come back from: "pending" (the window is open), "released" (the wallet,
    # through the release of the pending points), "wallet", or "" (nothing: expired or none owed).
    source: str = ""
    network_points: int = 0  # signed, like points: what the person's network wallet got
    network_balance_after: int | None = None


@dataclass(frozen=True, slots=True)
class TierMove:
    membership_id: int
    from_id: int | None
    to_id: int | None
    reason: str  # loyalty.models.TierChange.Reason
    qualifying: int


@dataclass
class Decision:
    outcomes: list[Outcome] = field(default_factory=list)
    # (membership id, month) -> qualifying points to add (negative for refunds)
    buckets: dict[tuple[int, dt.date], int] = field(default_factory=dict)
    # (membership id, event type, brand day) -> (awarded events, points) to add
    counts: dict[tuple[int, str, dt.date], tuple[int, int]] = field(default_factory=dict)
    tiers: dict[int, int | None] = field(default_factory=dict)  # membership id -> new tier id
    tier_moves: list[TierMove] = field(default_factory=list)  # every change, in order
    purchases: dict[int, PurchaseState] = field(default_factory=dict)  # purchases refunds changed
    # (membership id, release day) -> pending points to add (negative: refunded inside the window)
    pending: dict[tuple[int, dt.date], int] = field(default_factory=dict)
    streaks: dict[tuple[int, str], StreakState] = field(default_factory=dict)  # runs that changed


def cap_window_start(program: Program, event_type: str, when: dt.datetime) -> dt.date:
    """The first brand day whose awards the caps of this type look at for an event at `when`."""
    rule = program.rules.get(event_type)
    caps = rule.caps if rule else {}
    bounds = period_bounds(when=when, zone=program.zone)
    starts = [bounds[period][0] for period in caps] or [bounds["day"][0]]
    return min(starts)


def qualifying_points(member: MemberState, window: tuple[dt.date, dt.date]) -> int:
    """Points earned in the tier window (its first and last month, the current one), from the buckets."""
    first, current = window
    return sum(points for month, points in member.buckets.items() if first <= month <= current)


def caps_left(program: Program, member: MemberState, event_type: str, when: dt.datetime) -> dict[str, int]:
    """Period -> what the cap leaves, for the periods the type's rule caps: the cap minus the member's
    awarded events of the type in the brand day, ISO week or month of `when` (0 or less: the cap is
    reached)."""
    rule = program.rules.get(event_type)
    if rule is None or not rule.caps:
        return {}
    bounds = period_bounds(when=when, zone=program.zone)
    left = {}
    for period, cap in rule.caps.items():
        start, end = bounds[period]
        awarded = sum(
            count for (kind, day), count in member.counts.items() if kind == event_type and start <= day < end
        )
        left[period] = cap - awarded
    return left


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
    if any(left <= 0 for left in caps_left(program, member, event.type, event.occurred_at).values()):
        return "cap_reached"
    return None


def _add(mapping: dict, key, value) -> None:
    mapping[key] = mapping.get(key, 0) + value


def _award(
    program: Program,
    event: EventIn,
    member: MemberState,
    decision: Decision,
    window: tuple[dt.date, dt.date],
    today: dt.date,
    live: dt.date | None,
) -> Outcome:
    reason = _rejection(program, event, member)
    if reason:
        return Outcome(event.id, member.membership_id, REJECTED, reason)
    rule = program.rules[event.type]
    tier = program.tier(member.tier_id)
    network_points = 0
    if event.type == PURCHASE:
        multiplier = tier.multiplier if tier else ONE
        points = (
            purchase_points(amount=event.amount, points_per_unit=rule.points_per_unit, multiplier=multiplier)
            if rule.points_per_unit
            else 0
        )
        if rule.network_points_per_unit:
            # Network points are one flat rate across the network: no tier of one brand multiplies them.
            network_points = purchase_points(
                amount=event.amount, points_per_unit=rule.network_points_per_unit, multiplier=ONE
            )
            member.network_balance += network_points
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
    bonus = _streak(rule, member, decision, day) if rule.streak_length else 0
    points += bonus
    pending_until = lot = None
    if points > 0:
        month = day.replace(day=1)
        window_end = day + dt.timedelta(days=rule.pending_days)
        if rule.pending_days and window_end > today:
            pending_until = window_end
            _add(decision.pending, (member.membership_id, pending_until), points)
        else:  # no return window, or one that ended before the purchase reached us: spendable at once
            member.balance += points
            lot = max(month, live) if live is not None else month
        _add(member.buckets, month, points)
        _add(decision.buckets, (member.membership_id, month), points)
        # The event that crosses a threshold has earned at the old rate (above); the next one gets the new.
        qualifying = qualifying_points(member, window)
        best = _best_tier(program, qualifying)
        if best is not None and (tier is None or best.rank > tier.rank):
            _tier_move(member, decision, best, "earned", qualifying)
    return Outcome(
        event.id,
        member.membership_id,
        AWARDED,
        points=points,
        tier_name=tier.name if tier else "",
        multiplier=multiplier,
        balance_after=member.balance,
        lot=lot,
        pending_until=pending_until,
        streak_bonus=bonus,
        network_points=network_points,
        network_balance_after=member.network_balance if network_points else None,
    )


def _streak(rule: RuleSpec, member: MemberState, decision: Decision, day: dt.date) -> int:
    """Count an awarded event into its type's run of consecutive periods; the bonus when the run reaches
    the streak's length, once per run. An event of a period the run has counted (or of an earlier one,
    sent late) changes nothing."""
    step = dt.timedelta(days=1 if rule.streak_period == "day" else 7)
    period = day if rule.streak_period == "day" else day - dt.timedelta(days=day.weekday())
    run = member.streaks.get(rule.event_type)
    if run is not None and period <= run.last_period:
        return 0
    if run is None or period > run.last_period + step:
        run = StreakState(last_period=period, length=1, bonus_paid=False)
    else:
        run = StreakState(last_period=period, length=run.length + 1, bonus_paid=run.bonus_paid)
    member.streaks[rule.event_type] = run
    decision.streaks[(member.membership_id, rule.event_type)] = run
    if run.length >= rule.streak_length and not run.bonus_paid:
        run.bonus_paid = True
        return rule.streak_bonus or 0
    return 0


def _tier_move(member: MemberState, decision: Decision, tier: TierSpec | None, reason: str, qualifying: int) -> None:
    to_id = tier.id if tier is not None else None
    decision.tier_moves.append(TierMove(member.membership_id, member.tier_id, to_id, reason, qualifying))
    member.tier_id = to_id
    decision.tiers[member.membership_id] = to_id


def _refund(
    program: Program,
    event: EventIn,
    member: MemberState,
    purchase: PurchaseState,
    decision: Decision,
    window: tuple[dt.date, dt.date],
    now: dt.datetime,
):
    if purchase.membership_id != member.membership_id:
        return Outcome(event.id, member.membership_id, REJECTED, "unknown_order")
    tier = program.tier(member.tier_id)  # the tier when processed (the refund may take it back)
    left = purchase.amount - purchase.refunded_amount
    if event.amount > left:
        return Outcome(event.id, member.membership_id, REJECTED, "refund_exceeds_purchase")
    refunded_total = purchase.refunded_amount + event.amount
    owed = taken = unrecovered = 0
    source = ""
    if purchase.status == AWARDED and purchase.points > 0:
        due = refund_points_due(awarded=purchase.points, purchase_amount=purchase.amount, refunded_total=refunded_total)
        owed = due - purchase.refunded_points
    if owed > 0:
        if purchase.pending_until is not None and not purchase.released:
            # Inside the return window: the points were never spendable, all of them come back.
            taken, source = owed, "pending"
            _add(decision.pending, (member.membership_id, purchase.pending_until), -owed)
        elif purchase.lot is not None and program.lot_expired(purchase.lot, now, member.tier_id):
            pass  # its points expired already: there is nothing more to take back
        else:
            # Points already spent cannot be taken back: take what the wallet holds, record the rest.
            taken = min(owed, member.balance)
            unrecovered = owed - taken
            member.balance -= taken
            source = "released" if purchase.pending_until is not None else "wallet"
        month = month_floor(purchase.occurred_at, program.zone)
        qualifying_before = qualifying_points(member, window)
        _add(member.buckets, month, -owed)
        _add(decision.buckets, (member.membership_id, month), -owed)
        _tier_after_refund(program, member, decision, qualifying_before, qualifying_points(member, window))
    network_taken = 0
    if purchase.status == AWARDED and purchase.network_points > 0:
        network_due = refund_points_due(
            awarded=purchase.network_points, purchase_amount=purchase.amount, refunded_total=refunded_total
        )
        network_owed = network_due - purchase.refunded_network_points
        # Network points spent at any brand of the network cannot be taken back either.
        network_taken = min(network_owed, member.network_balance)
        member.network_balance -= network_taken
        purchase.refunded_network_points += network_owed
    purchase.refunded_amount = refunded_total
    purchase.refunded_points += owed
    decision.purchases[purchase.event_id] = purchase
    return Outcome(
        event.id,
        member.membership_id,
        AWARDED,
        points=-taken,
        tier_name=tier.name if tier else "",
        balance_after=member.balance,
        unrecovered=unrecovered,
        refund_of_id=purchase.event_id if taken > 0 else None,
        pending_until=purchase.pending_until,
        source=source if taken > 0 else "",
        network_points=-network_taken,
        network_balance_after=member.network_balance if network_taken else None,
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
        _tier_move(member, decision, after, "refund", qualifying_after)


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
    # The same for every event of the call: the tier window, the brand day, the oldest live lot.
    window, today, live = program.window(now), now.astimezone(program.zone).date(), program.live_lot(now)
    for event in events:
        if event.rejection is not None or event.membership_id is None:
            decision.outcomes.append(Outcome(event.id, event.membership_id, REJECTED, event.rejection or "no_member"))
            continue
        member = members[event.membership_id]
        if event.type == REFUND:
            purchase = purchases.get(event.refund_of_id)
            if purchase is None or purchase.status == PENDING:
                raise ValueError(f"refund {event.id}: its purchase must be processed before it")
            decision.outcomes.append(_refund(program, event, member, purchase, decision, window, now))
        else:
            decision.outcomes.append(_award(program, event, member, decision, window, today, live))
    return decision
