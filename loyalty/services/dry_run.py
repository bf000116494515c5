"""An event's dry run (POST /api/v1/events/simulate): what processing it would do now, writing nothing.

The processor's own reads and rules, without its locks and its writes: the member as processing would
resolve them (loyalty.services.members.membership_find; one it would create is simulated as new, with
the entry tier it would get and nothing earned), the program and member state as a batch loads them
(loyalty.services.processing), then loyalty.engine.decide. Before that, the checks accepting the event
makes: a refund against its purchase (the same 422s), and its key or order id (an event sent before is
not processed again: the 409s, or `already_received` where accepting it would replay the event).

It all runs in one database transaction that PostgreSQL keeps read-only and that is rolled back: a
write would fail the request rather than land. Events accepted but not processed yet are not counted,
as they are in no state the processor reads until it has processed them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from config.db import read_only_atomic
from config.errors import ApplicationError
from loyalty import engine, locks
from loyalty.models import Brand, Event, Membership
from loyalty.selectors import base_tier_id, membership_balance, network_balance
from loyalty.serializers import CleanEvent
from loyalty.services.ingest import event_stored, refund_target
from loyalty.services.members import MEMBER_MISMATCH, membership_find
from loyalty.services.processing import member_states_load, program_load, purchases_load

# The engine's id for the membership processing would create (no row has id 0).
NEW_MEMBERSHIP = 0


class AlreadyReceivedError(ApplicationError):
    status_code = 409
    code = "already_received"


class PurchasePendingError(ApplicationError):
    status_code = 409
    code = "purchase_pending"


@dataclass(frozen=True)
class Simulation:
    status: str  # engine.AWARDED or engine.REJECTED
    reason: str
    points: int  # signed: a refund's is what it takes back
    network_points: int
    multiplier: Decimal | None  # the rate it earns at (awarded earns only)
    tier_before: str | None
    tier_after: str | None
    balance_after: int
    pending_until: dt.date | None  # a purchase's pending points become spendable on this brand day
    member_exists: bool  # the brand has the membership the event goes to
    caps_left: dict[str, int]  # period -> awards the cap leaves, after this event; the capped periods only


def event_simulate(*, brand: Brand, item: CleanEvent, now: dt.datetime | None = None) -> Simulation:
    """What processing `item` (validated as POST /api/v1/events validates it) would do at `now`. Raises the
    ApplicationError accepting it would be refused with (a refund's 422, a key's 409), AlreadyReceivedError
    where accepting it would replay an event sent before, or PurchasePendingError for a refund of a purchase
    not processed yet (the processor would process that first)."""
    with read_only_atomic():
        return _simulate(brand, item, now or timezone.now())


def _simulate(brand: Brand, item: CleanEvent, now: dt.datetime) -> Simulation:
    refund_of_id, currency = (
        refund_target(brand=brand, item=item) if item.type == Event.REFUND else (None, item.currency)
    )
    stored = event_stored(brand=brand, item=item)
    if stored is not None:
        raise AlreadyReceivedError(
            message=f"Event {stored.pk} was this request, sent before: sending it again processes nothing.",
            extra={"event_id": stored.pk},
        )
    program = program_load(brand)
    found = membership_find(brand=brand, email=item.email, external_id=item.external_id)
    membership_id = NEW_MEMBERSHIP if found is None else found if found != MEMBER_MISMATCH else None
    event = engine.EventIn(
        id=0,
        type=item.type,
        membership_id=membership_id,
        occurred_at=item.occurred_at or now,
        amount=item.amount,
        currency=currency,
        refund_of_id=refund_of_id,
        rejection=MEMBER_MISMATCH if found == MEMBER_MISMATCH else None,
    )
    members = _member_states(brand, program, membership_id, event, now)
    member = members.get(membership_id)
    tier_before = program.tier(member.tier_id) if member else None
    decision = engine.decide(
        program=program, events=[event], members=members, purchases=_purchase_states(program, refund_of_id), now=now
    )
    [outcome] = decision.outcomes
    tier_after = program.tier(member.tier_id) if member else None
    caps = engine.caps_left(program, member, event.type, event.occurred_at) if member else {}
    return Simulation(
        status=outcome.status,
        reason=outcome.reason,
        points=outcome.points,
        network_points=outcome.network_points,
        multiplier=outcome.multiplier,
        tier_before=tier_before.name if tier_before else None,
        tier_after=tier_after.name if tier_after else None,
        balance_after=member.balance if member else 0,
        pending_until=outcome.pending_until if event.type == engine.PURCHASE else None,
        member_exists=isinstance(found, int),
        caps_left={period: max(0, left) for period, left in caps.items()},
    )


def _member_states(
    brand: Brand, program: engine.Program, membership_id: int | None, event: engine.EventIn, now: dt.datetime
) -> dict[int, engine.MemberState]:
    """The state of the membership the event goes to, read as a batch reads it (without its locks); a new
    one's is the entry tier and nothing earned. Empty when it goes to none (a member mismatch)."""
    if membership_id is None:
        return {}
    if membership_id == NEW_MEMBERSHIP:
        tier_id = base_tier_id(brand_id=brand.pk)
        return {NEW_MEMBERSHIP: engine.MemberState(NEW_MEMBERSHIP, active=True, tier_id=tier_id, balance=0)}
    membership = Membership.objects.select_related("wallet").get(pk=membership_id)
    members = member_states_load(
        program=program,
        memberships={membership_id: membership},
        balances={membership_id: membership_balance(membership)},
        events=[event],
        now=now,
    )
    if brand.network_id is not None:
        members[membership_id].network_balance = network_balance(
            member_id=membership.member_id, network_id=brand.network_id
        )
    return members


def _purchase_states(program: engine.Program, purchase_id: int | None) -> dict[int, engine.PurchaseState]:
    if purchase_id is None:
        return {}
    rows = locks.events_read([purchase_id])
    if rows[purchase_id].status == Event.Status.PENDING:
        raise PurchasePendingError(
            message="The purchase this refunds is not processed yet: its refund can be simulated once it is."
        )
    return purchases_load(program=program, purchases=rows)[0]
