"""The outbox's receiver of the ledger's postings: one message per posting that moves a member's points,
written in the posting's own database transaction (one INSERT for the whole call), for the brands that
have a sink (a webhook endpoint, an analytics project). A brand with none writes nothing: a sink hears
what happens from its registration on (integrations.services.outbox_fan_out), so nothing is missed by
not keeping messages no sink would ever be given, and the event processor does not pay for them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.dispatch import receiver

from integrations.outbox import Message, messages_write
from integrations.selectors import brands_with_sinks
from ledger.models import Account, Transaction
from ledger.services import PostResult
from ledger.signals import transactions_posted
from loyalty.services.accounts import code_parts

# The message type of a transaction by its kind; a reversal by the kind of what it reverses. Releases of
# pending points tell nothing new (the earn was told); an import is an adjustment with that reason.
KIND_TYPES = {
    "earn": "points.earned",
    "redeem": "points.redeemed",
    "adjustment": "points.adjusted",
    "import": "points.adjusted",
    "expiry": "points.expired",
}
REVERSAL_TYPES = {"earn": "points.refunded", "redeem": "redemption.cancelled"}
# What of a transaction's metadata a receiver may use (the rest is the ledger's bookkeeping).
METADATA_KEYS = (
    "event_id", "event_type", "order_id", "perk_id", "perk", "redemption_id", "pending_until", "streak_bonus",
    "expired_on", "reason", "note",
)  # fmt: skip
_MEMBER_KINDS = (Account.Kind.WALLET, Account.Kind.PENDING)


@receiver(transactions_posted, dispatch_uid="integrations.outbox_postings")
def outbox_postings(sender: type[Transaction], *, posted: Sequence[PostResult], **kwargs: Any) -> None:
    messages = [message for result in posted if (message := posting_message(result)) is not None]
    if messages:
        told = brands_with_sinks(message.brand_id for message in messages)
        messages_write([message for message in messages if message.brand_id in told])


def posting_message(result: PostResult) -> Message | None:
    """The message telling a posting (None for one that tells no member anything: a release)."""
    txn = result.transaction
    reversed_kind = txn.reverses.kind if txn.reverses_id is not None else None
    message_type = REVERSAL_TYPES.get(reversed_kind) if reversed_kind else KIND_TYPES.get(txn.kind)
    if message_type is None:
        return None
    member_entry = next((entry for entry in result.entries if entry.account.kind in _MEMBER_KINDS), None)
    if member_entry is None:
        return None
    parts = code_parts(member_entry.account.code)
    if parts is None:
        return None
    scope, scope_id, account_kind, owner = parts
    data: dict[str, Any] = {
        "points": member_entry.amount,
        "balance_after": member_entry.balance_after,
        "transaction_id": txn.pk,
        **{key: txn.metadata[key] for key in METADATA_KEYS if key in (txn.metadata or {})},
    }
    if txn.kind == "import":
        data["reason"] = "import"
    if account_kind == Account.Kind.PENDING:
        data["pending"] = True
    if scope == "brand":
        brand_id, membership_id = scope_id, owner
        data["member"] = {"id": membership_id}
    else:  # a network's points: the person's network wallet, told to the brand the other leg is of
        other = [code_parts(entry.account.code) for entry in result.entries if entry is not member_entry]
        brand_id = next((parts[3] for parts in other if parts is not None and parts[0] == "network"), None)
        if brand_id is None:
            return None
        membership_id = None
        data["member"] = {"id": None, "network_member_id": owner}
        data["network_id"] = scope_id
        data["unit"] = "network"
    return Message(brand_id, message_type, membership_id, data, txn.created_at)
