"""Events in, points out: ingest an event, process it under the member's locks, refund, adjust.

The API and the portal call these; the Celery task calls `event_process`. Processing is safe to run
twice for the same event: it only acts on a pending event, under the membership's row lock, and its
ledger posting is keyed by the event (`event:<id>`), so even a worker killed after posting and
before the event row was updated cannot credit twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from config.errors import ApplicationError
from ledger.errors import InsufficientBalanceError
from ledger.models import Account
from ledger.selectors import account_balance_get
from ledger.services import transaction_post, transaction_reverse
from loyalty import locks
from loyalty.models import (
    Adjustment,
    Brand,
    BrandApiKey,
    EarnRule,
    Event,
    Member,
    Membership,
    QualifyingBucket,
    Tier,
    User,
)
from loyalty.periods import cap_periods, month_start
from loyalty.selectors import qualifying_points
from loyalty.services.accounts import brand_account, membership_wallet
from loyalty.services.members import member_get_or_create_by_email
from loyalty.signals import event_processed
from loyalty.tasks import event_process_task


class UnknownOrderError(ApplicationError):
    code = "unknown_order"


class RefundExceedsPurchaseError(ApplicationError):
    code = "refund_exceeds_purchase"


class DuplicateOrderError(ApplicationError):
    status_code = 409
    code = "duplicate_order"


class InsufficientPointsError(ApplicationError):
    code = "insufficient_points"


# --- arithmetic: the rounding rules live here, next to the code that applies them ------------------


def purchase_points(*, amount: Decimal, points_per_unit: Decimal, multiplier: Decimal) -> int:
    """floor(amount x rate x tier multiplier).

    Rounded DOWN to a whole point (ROUND_FLOOR), in exact Decimal arithmetic, never float: a member is
    never credited a point they did not fully earn, and $5.50 at 1 Star/$1 x1.2 is floor(6.6) = 6.
    """
    return int((amount * points_per_unit * multiplier).to_integral_value(rounding=ROUND_FLOOR))


def refund_points_due(*, awarded: int, purchase_amount: Decimal, refunded_total: Decimal) -> int:
    """How many of a purchase's points all its refunds so far take back: floor(awarded x refunded / amount).

    Computed on the running total, not per refund, so partial refunds add up exactly and a refund of
    the whole amount takes back exactly what was awarded. Rounded DOWN: never more than awarded.
    """
    return int((awarded * refunded_total / purchase_amount).to_integral_value(rounding=ROUND_FLOOR))


# --- members ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRef:
    email: str | None = None
    external_id: str | None = None


def membership_resolve(*, brand: Brand, ref: MemberRef) -> Membership:
    """The brand's membership for this email or external id, member and membership created on first sight."""
    if ref.external_id:
        found = Membership.objects.filter(brand=brand, external_id=ref.external_id).select_related("member").first()
        if found is not None:
            return found
    member = member_get_or_create_by_email(email=ref.email) if ref.email else None
    try:
        with transaction.atomic():
            if member is None:
                member = Member.objects.create()
            membership, created = Membership.objects.get_or_create(
                member=member, brand=brand, defaults={"external_id": ref.external_id}
            )
    except IntegrityError:  # a concurrent request created the same membership first
        if ref.external_id:
            return Membership.objects.get(brand=brand, external_id=ref.external_id)
        return Membership.objects.get(member=member, brand=brand)
    if ref.external_id and not created:
        if membership.external_id is None:
            Membership.objects.filter(pk=membership.pk, external_id__isnull=True).update(external_id=ref.external_id)
            membership.external_id = ref.external_id
        elif membership.external_id != ref.external_id:
            raise ApplicationError(
                "member_mismatch",
                "This email already belongs to a member with another external id.",
                fields={"member": ["email and external_id name two different members"]},
            )
    return membership


# --- ingest ----------------------------------------------------------------------------------------


@transaction.atomic
def event_ingest(
    *,
    brand: Brand,
    type: str,
    member: MemberRef,
    order_id: str = "",
    amount: Decimal | None = None,
    currency: str = "",
    occurred_at: dt.datetime | None = None,
    location_id: str = "",
    metadata: dict[str, Any] | None = None,
) -> Event:
    """Store an event as pending and have a worker process it once this transaction commits.

    A refund is checked here against its purchase (unknown order: 422) so the till hears at once.
    """
    membership = membership_resolve(brand=brand, ref=member)
    refund_of = None
    if type == Event.REFUND:
        refund_of = Event.objects.filter(brand=brand, type=EarnRule.PURCHASE, order_id=order_id).first()
        if refund_of is None or refund_of.membership_id != membership.pk:
            raise UnknownOrderError(message=f"No purchase with order id {order_id!r} for this member.")
        left = refund_of.amount - refund_of.refunded_amount
        if amount > left:
            raise RefundExceedsPurchaseError(
                message=f"Only {left} {refund_of.currency} of this order is left to refund.",
                extra={"refundable": str(left)},
            )
        if currency and currency != refund_of.currency:
            raise ApplicationError(
                "currency_mismatch",
                f"The order was paid in {refund_of.currency}.",
                fields={"currency": [f"Must be {refund_of.currency}, the order's currency."]},
            )
        currency = refund_of.currency
    try:
        with transaction.atomic():
            event = Event.objects.create(
                brand=brand,
                membership=membership,
                type=type,
                order_id=order_id or "",
                amount=amount,
                currency=currency or "",
                occurred_at=occurred_at or timezone.now(),
                location_id=location_id or "",
                metadata=metadata or {},
                refund_of=refund_of,
            )
    except IntegrityError as error:
        # The database's own fence against crediting one order twice (event_purchase_order_unique).
        raise DuplicateOrderError(
            message=f"A purchase with order id {order_id!r} was already received (under another idempotency key).",
        ) from error
    # robust: a broker that is down must not lose the accepted event; events_pending_requeue_task
    # sends it again.
    transaction.on_commit(lambda: event_process_task.delay(event.pk), robust=True)
    return event


def event_record(
    *,
    membership: Membership,
    type: str,
    dedupe_key: str,
    occurred_at: dt.datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> Event:
    """Record a custom event from inside Tally (a watch minute) and process it now, exactly once per key.

    For callers that already run in a worker: no Celery hop. The same `dedupe_key` returns the event
    recorded first (processed if it was still pending), so a retried task or a second device never
    records, or credits, the same thing twice; the database's unique (brand, dedupe_key) is the fence.
    Raises nothing for a business refusal: the event comes back rejected with its reason (cap_reached...).
    """
    try:
        with transaction.atomic():
            event, _ = Event.objects.get_or_create(
                brand_id=membership.brand_id,
                dedupe_key=dedupe_key,
                defaults={
                    "membership": membership,
                    "type": type,
                    "occurred_at": occurred_at or timezone.now(),
                    "metadata": metadata or {},
                },
            )
    except IntegrityError:  # recorded concurrently by another worker
        event = Event.objects.get(brand_id=membership.brand_id, dedupe_key=dedupe_key)
    return event_process(event_id=event.pk)


# --- processing ------------------------------------------------------------------------------------


def event_process(*, event_id: int) -> Event | None:
    """Process a pending event: award, reject or refund. A no-op for an event already processed.

    Locks: the membership's Redis lock, then (loyalty.locks order) the membership row, the event row,
    a refunded purchase's row, then the ledger's balance rows.
    """
    event = Event.objects.only("status", "membership_id").filter(pk=event_id).first()
    if event is None:
        return None  # a message outlived its event (a restored backup, a wiped test database)
    if event.status != Event.Status.PENDING:
        return Event.objects.get(pk=event_id)
    with locks.membership_lock(event.membership_id), transaction.atomic():
        membership = locks.membership_lock_row(event.membership_id)
        event = locks.event_lock_row(event_id)
        if event.status == Event.Status.PENDING:
            _process_locked(event, membership)
            transaction.on_commit(lambda: event_processed.send(sender=Event, event=event))
    return event


def _process_locked(event: Event, membership: Membership) -> None:
    if event.type == Event.REFUND:
        _refund(event, membership)
    else:
        _award(event, membership)


def _reject(event: Event, reason: str) -> None:
    event.status = Event.Status.REJECTED
    event.reason = reason
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "reason", "processed_at"])


def _rejection_reason(event: Event, rule: EarnRule | None, membership: Membership) -> str | None:
    if membership.status != Membership.Status.ACTIVE:
        return "membership_inactive"
    if rule is None:
        return "no_rule"
    if not rule.enabled:
        return "rule_inactive"
    if (rule.active_from and event.occurred_at < rule.active_from) or (
        rule.active_until and event.occurred_at >= rule.active_until
    ):
        return "rule_inactive"
    if rule.is_purchase:
        if event.currency != rule.currency:
            return "currency_mismatch"
        if rule.minimum_amount is not None and event.amount < rule.minimum_amount:
            return "below_minimum"
    if _cap_reached(event, rule, membership):
        return "cap_reached"
    return None


def _cap_reached(event: Event, rule: EarnRule, membership: Membership) -> bool:
    # Counted under the membership's row lock: two events of one member cannot both take the last slot.
    caps = {"day": rule.cap_per_day, "week": rule.cap_per_week, "month": rule.cap_per_month}
    if not any(caps.values()):
        return False
    periods = cap_periods(when=event.occurred_at, zone=membership.brand.zone)
    awarded = Event.objects.filter(membership=membership, type=event.type, status=Event.Status.AWARDED)
    for period, cap in caps.items():
        if cap:
            start, end = periods[period]
            if awarded.filter(occurred_at__gte=start, occurred_at__lt=end).count() >= cap:
                return True
    return False


def _award(event: Event, membership: Membership) -> None:
    rule = EarnRule.objects.filter(brand_id=event.brand_id, event_type=event.type).first()
    reason = _rejection_reason(event, rule, membership)
    if reason:
        _reject(event, reason)
        return
    tier = membership.tier
    multiplier = tier.multiplier if tier else Decimal("1")
    if rule.is_purchase:
        points = purchase_points(amount=event.amount, points_per_unit=rule.points_per_unit, multiplier=multiplier)
    else:
        # Fixed-point events (check-ins, reviews, watch minutes) are bonuses: the tier multiplies the
        # purchase earn rate only.
        points = rule.points
        multiplier = Decimal("1")
    wallet = membership_wallet(membership=membership)
    fields = ["status", "points", "tier_name", "multiplier", "balance_after", "processed_at"]
    if points > 0:
        result = transaction_post(
            idempotency_key=f"event:{event.pk}",
            kind="earn",
            entries=[
                (brand_account(brand=membership.brand, kind=Account.Kind.ISSUANCE), -points),
                (wallet, points),
            ],
            memo=f"{event.type} {event.order_id}".strip(),
            metadata={"event_id": event.pk, "event_type": event.type, "order_id": event.order_id},
        )
        event.ledger_transaction = result.transaction
        fields.append("ledger_transaction")
        _qualifying_add(membership, event.occurred_at, points)
        # The event that crosses a threshold has earned at the old rate (above); the next one gets the new.
        _tier_upgrade(membership)
    event.status = Event.Status.AWARDED
    event.points = points
    event.tier_name = tier.name if tier else ""
    event.multiplier = multiplier
    event.balance_after = account_balance_get(wallet).balance
    event.processed_at = timezone.now()
    event.save(update_fields=fields)


def _qualifying_add(membership: Membership, when: dt.datetime, points: int) -> None:
    month = month_start(when, membership.brand)
    bucket, created = QualifyingBucket.objects.get_or_create(
        membership=membership, month=month, defaults={"points": points}
    )
    if not created:
        QualifyingBucket.objects.filter(pk=bucket.pk).update(points=F("points") + points)


def _tier_upgrade(membership: Membership) -> None:
    qualifying = qualifying_points(membership)
    best = Tier.objects.filter(brand_id=membership.brand_id, threshold__lte=qualifying).order_by("-rank").first()
    if best is not None and (membership.tier is None or best.rank > membership.tier.rank):
        membership.tier = best
        membership.save(update_fields=["tier"])


def _refund(event: Event, membership: Membership) -> None:
    purchase = locks.event_lock_row(event.refund_of_id)
    if purchase.status == Event.Status.PENDING:
        _award(purchase, membership)  # the refund's task ran first: settle the purchase before undoing it
    left = purchase.amount - purchase.refunded_amount
    if event.amount > left:
        _reject(event, "refund_exceeds_purchase")
        return
    refunded_total = purchase.refunded_amount + event.amount
    owed = 0
    taken = 0
    wallet = membership_wallet(membership=membership)
    if purchase.status == Event.Status.AWARDED and purchase.points > 0:
        due = refund_points_due(awarded=purchase.points, purchase_amount=purchase.amount, refunded_total=refunded_total)
        owed = due - purchase.refunded_points
        # Points already spent cannot be taken back: take what the wallet holds, record the rest.
        # Reading the balance unlocked is safe: every debit of a wallet (redemptions, adjustments,
        # refunds, expiry) holds this membership's row lock, which we hold.
        taken = min(owed, account_balance_get(wallet).balance)
    if taken > 0:
        result = transaction_reverse(
            original=purchase.ledger_transaction,
            idempotency_key=f"event:{event.pk}",
            amounts={
                wallet: taken,
                brand_account(brand=membership.brand, kind=Account.Kind.ISSUANCE): -taken,
            },
            memo=f"refund {purchase.order_id}",
            metadata={"event_id": event.pk, "event_type": Event.REFUND, "order_id": purchase.order_id},
        )
        event.ledger_transaction = result.transaction
    if owed > 0:
        _qualifying_add(membership, purchase.occurred_at, -owed)
    purchase.refunded_amount = refunded_total
    purchase.refunded_points += owed
    purchase.save(update_fields=["refunded_amount", "refunded_points"])
    event.status = Event.Status.AWARDED
    event.points = -taken
    event.unrecovered_points = owed - taken
    event.balance_after = account_balance_get(wallet).balance
    event.processed_at = timezone.now()
    event.save(
        update_fields=[
            "status",
            "points",
            "unrecovered_points",
            "balance_after",
            "processed_at",
            "ledger_transaction",
        ]
    )


# --- adjustments -----------------------------------------------------------------------------------


def adjustment_create(
    *,
    membership: Membership,
    points: int,
    reason: str,
    idempotency_key: str,
    user: User | None = None,
    api_key: BrandApiKey | None = None,
) -> Adjustment:
    """Add or remove points by hand, with a reason and who did it. Never takes a wallet below zero."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("invalid_input", "A reason is required.", fields={"reason": ["This field is required."]})
    if points == 0:
        raise ApplicationError("invalid_input", "Points must not be zero.", fields={"points": ["Must not be zero."]})
    with locks.membership_lock(membership.pk), transaction.atomic():
        membership = locks.membership_lock_row(membership.pk)
        wallet = membership_wallet(membership=membership)
        try:
            result = transaction_post(
                idempotency_key=f"adjustment:{membership.brand_id}:{idempotency_key}",
                kind="adjustment",
                entries=[
                    (brand_account(brand=membership.brand, kind=Account.Kind.ADJUSTMENTS), -points),
                    (wallet, points),
                ],
                memo=reason,
                metadata={
                    "reason": reason,
                    "by": str(user or (api_key and f"API key {api_key.name}") or "system"),
                },
            )
        except InsufficientBalanceError as error:
            raise InsufficientPointsError(
                message=f"The member has {account_balance_get(wallet).balance} points; cannot remove {-points}.",
                extra={"missing": error.extra.get("missing")},
            ) from error
        if not result.created:
            return Adjustment.objects.get(ledger_transaction=result.transaction)
        return Adjustment.objects.create(
            brand_id=membership.brand_id,
            membership=membership,
            points=points,
            reason=reason,
            created_by_user=user,
            created_by_api_key=api_key,
            ledger_transaction=result.transaction,
        )


def events_pending_requeue(*, older_than_seconds: int = 120, limit: int = 1000) -> int:
    """Send again the events still pending after a while (a broker outage, a task that gave up)."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    ids = list(
        Event.objects.filter(status=Event.Status.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in ids:
        event_process_task.delay(event_id)
    return len(ids)
