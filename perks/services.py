"""Spending points: redeem a perk, cancel a redemption, consume a voucher at the till.

Every rule that protects points or stock is fenced in PostgreSQL, under the membership's row lock:
- the wallet cannot go below zero: the ledger refuses the posting (its balance-row lock and CHECK);
- stock cannot go below zero: a conditional `UPDATE ... SET stock = stock - 1 WHERE stock >= 1`
  (django-oscar's allocate), with a CHECK constraint behind it;
- per-member limits are counted while the membership row is locked, so two redemptions of one member
  cannot both take the last allowed slot.
The Redis lock per membership only keeps concurrent requests of one member from piling up.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.errors import ApplicationError
from ledger.errors import InsufficientBalanceError
from ledger.models import Account
from ledger.selectors import account_balance_get
from ledger.services import transaction_post, transaction_reverse
from loyalty import locks as loyalty_locks
from loyalty.models import Membership
from loyalty.services.accounts import brand_account, membership_wallet
from loyalty.services.idempotency import IdempotencyConflictError
from perks import locks
from perks.models import Perk, Redemption
from perks.selectors import perk_refusal


class RedemptionRefusedError(ApplicationError):
    """422 with a reason: insufficient_points, out_of_stock, limit_reached, tier_required, not_available."""


class VoucherRefusedError(ApplicationError):
    """422 with a reason: voucher_unknown, voucher_used, voucher_cancelled."""


@dataclass(frozen=True)
class RedeemResult:
    redemption: Redemption
    created: bool
    balance: int


def perk_redeem(*, membership: Membership, perk: Perk, request_key: str) -> RedeemResult:
    """Spend points on a perk. The same `request_key` (per member) returns the first redemption."""
    with loyalty_locks.membership_lock(membership.pk), transaction.atomic():
        membership = loyalty_locks.membership_lock_row(membership.pk)
        existing = Redemption.objects.filter(membership=membership, request_key=request_key).first()
        if existing is not None:
            if existing.perk_id != perk.pk:
                raise IdempotencyConflictError(message="This request key was already used for another perk.")
            return RedeemResult(existing, False, account_balance_get(membership.wallet).balance)
        perk = Perk.objects.get(pk=perk.pk)  # fresh: price, window and limits as they are now
        wallet = membership_wallet(membership=membership)
        balance = account_balance_get(wallet).balance
        refusal = perk_refusal(membership=membership, perk=perk, balance=balance)
        if refusal is not None:
            raise RedemptionRefusedError(refusal.code, refusal.message, extra=refusal.extra)
        if perk.stock is not None:
            taken = Perk.objects.filter(pk=perk.pk, stock__gte=1).update(stock=F("stock") - 1)
            if not taken:
                raise RedemptionRefusedError("out_of_stock", f"{perk.name} is sold out.")
        try:
            posted = transaction_post(
                idempotency_key=f"redeem:{membership.pk}:{request_key}",
                kind="redeem",
                entries=[
                    (wallet, -perk.cost),
                    (brand_account(brand=membership.brand, kind=Account.Kind.REDEMPTIONS), perk.cost),
                ],
                memo=perk.name,
                metadata={"perk_id": perk.pk, "perk": perk.name},
            )
        except InsufficientBalanceError as error:  # the ledger's own fence, should the balance have moved
            missing = error.extra.get("missing")
            raise RedemptionRefusedError(
                "insufficient_points", f"{missing} more points needed.", extra={"missing": missing}
            ) from error
        redemption = Redemption.objects.create(
            brand_id=membership.brand_id,
            membership=membership,
            perk=perk,
            cost=perk.cost,
            request_key=request_key,
            ledger_transaction=posted.transaction,
        )
        return RedeemResult(redemption, True, account_balance_get(wallet).balance)


def redemption_cancel(*, redemption: Redemption, note: str = "") -> Redemption:
    """Cancel an issued redemption: the points come back (a ledger reversal) and so does the stock.

    Exactly once: the redemption row is locked, and a second cancel finds it cancelled already.
    A fulfilled redemption (the voucher was used) cannot be cancelled.
    """
    with loyalty_locks.membership_lock(redemption.membership_id), transaction.atomic():
        loyalty_locks.membership_lock_row(redemption.membership_id)
        redemption = locks.redemption_lock_row(redemption.pk)
        if redemption.status == Redemption.Status.CANCELLED:
            return redemption
        if redemption.status == Redemption.Status.FULFILLED:
            raise ApplicationError("already_fulfilled", "This redemption was already used; it cannot be cancelled.")
        # The perk row before the ledger's balance rows, as in perk_redeem: one order, no deadlock.
        if redemption.perk.stock is not None:
            Perk.objects.filter(pk=redemption.perk_id).update(stock=F("stock") + 1)
        refund = transaction_reverse(
            original=redemption.ledger_transaction,
            idempotency_key=f"redeem-cancel:{redemption.pk}",
            memo=f"cancelled: {redemption.perk.name}",
            metadata={"perk_id": redemption.perk_id, "redemption_id": redemption.pk},
        )
        redemption.status = Redemption.Status.CANCELLED
        redemption.cancelled_at = timezone.now()
        redemption.refund_transaction = refund.transaction
        redemption.note = note[:300]
        redemption.save(update_fields=["status", "cancelled_at", "refund_transaction", "note"])
        return redemption


def redemption_fulfill(*, redemption: Redemption, note: str = "") -> Redemption:
    """Mark an issued redemption fulfilled (shipped, handed over, voucher consumed)."""
    with transaction.atomic():
        redemption = locks.redemption_lock_row(redemption.pk)
        if redemption.status == Redemption.Status.CANCELLED:
            raise VoucherRefusedError("voucher_cancelled", "This redemption was cancelled.")
        if redemption.status == Redemption.Status.FULFILLED:
            raise VoucherRefusedError("voucher_used", f"Already used on {redemption.fulfilled_at:%Y-%m-%d %H:%M} UTC.")
        redemption.status = Redemption.Status.FULFILLED
        redemption.fulfilled_at = timezone.now()
        redemption.note = note[:300]
        redemption.save(update_fields=["status", "fulfilled_at", "note"])
        return redemption


def voucher_consume(*, brand_id: int, code: str, note: str = "") -> Redemption:
    """A till consumes a voucher code. Another brand's code is as unknown as a made-up one."""
    normalized = "".join(code.split()).upper().replace("-", "")
    redemption = Redemption.objects.filter(brand_id=brand_id, code=normalized).first()
    if redemption is None:
        raise VoucherRefusedError("voucher_unknown", "No voucher with this code.")
    return redemption_fulfill(redemption=redemption, note=note)


def perk_stock_set(*, perk: Perk, seen: int | None, wanted: int | None) -> Perk:
    """Staff changed the stock from `seen` (what their form showed) to `wanted`.

    Applied as a difference, so redemptions made while the form was open still count: 10 shown, 4
    sold meanwhile, 12 entered means 8 now. Switching between unlimited (None) and a number sets it.
    """
    if seen is None or wanted is None:
        Perk.objects.filter(pk=perk.pk).update(stock=wanted)
    elif wanted != seen:
        delta = wanted - seen
        if not Perk.objects.filter(pk=perk.pk, stock__gte=-delta).update(stock=F("stock") + delta):
            raise ApplicationError("stock_changed", "Fewer are left than you remove: reload and try again.")
    perk.refresh_from_db(fields=["stock"])
    return perk
