"""Loyalty's signals, and its receivers of the ledger's posted signal.

`event_processed` fires after the commit of an event's processing (awarded, rejected or refunded),
for the analytics and webhooks that come later. Arguments: sender=Event, event=the Event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import F
from django.dispatch import Signal, receiver

from ledger.models import Account, Entry, Transaction
from ledger.signals import transaction_posted

event_processed = Signal()

# Which lifetime rollup of a membership a wallet entry moves, by the kind of transaction, and in which
# direction: earned counts credits, redeemed and expired count debits. A reversal moves the rollup of
# the transaction it reverses, the other way (a refund lowers `earned`, a cancelled redemption lowers
# `redeemed`).
LIFETIME_FIELDS = {
    "earn": ("lifetime_earned", 1),
    "redeem": ("lifetime_redeemed", -1),
    "expiry": ("lifetime_expired", -1),
}


@receiver(transaction_posted, dispatch_uid="loyalty.membership_lifetime_roll_up")
def membership_lifetime_roll_up(
    sender: type[Transaction], *, transaction: Transaction, entries: Sequence[Entry], **kwargs: Any
) -> None:
    """Keep Membership.lifetime_* in step with the wallet, inside the posting's database transaction."""
    kind = transaction.kind
    if transaction.reverses_id is not None:
        kind = Transaction.objects.values_list("kind", flat=True).get(pk=transaction.reverses_id)
    if kind not in LIFETIME_FIELDS:
        return
    field, sign = LIFETIME_FIELDS[kind]
    from loyalty.models import Membership

    for entry in entries:
        if entry.account.kind == Account.Kind.WALLET:
            Membership.objects.filter(wallet_id=entry.account_id).update(**{field: F(field) + sign * entry.amount})
