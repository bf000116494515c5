"""Adjusting points by hand. Events are accepted by loyalty.services.ingest and processed in batches by
loyalty.services.processing (the rules: loyalty.engine; the rounding: loyalty.services.arithmetic)."""

from __future__ import annotations

from django.db import transaction

from config.errors import ApplicationError
from ledger.errors import InsufficientBalanceError
from ledger.models import Account
from ledger.selectors import account_balance_get
from ledger.services import posting_key, transaction_post
from loyalty import locks
from loyalty.models import Adjustment, BrandApiKey, Membership, User
from loyalty.services.accounts import brand_account, membership_wallet


class InsufficientPointsError(ApplicationError):
    code = "insufficient_points"


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
                idempotency_key=posting_key(f"adjustment:{membership.brand_id}", idempotency_key),
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
