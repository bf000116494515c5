"""Loyalty's signals, and its receiver of the ledger's posted signal.

`events_processed` is sent after the commit of a batch of processed events (awarded, rejected or
refunds applied), for the analytics and webhooks that come later. Arguments: sender=Event,
events=list of the processed Event rows (as the processor wrote them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.dispatch import Signal, receiver

from config.db import bulk_cursor
from ledger.models import Account, Transaction
from ledger.services import PostResult
from ledger.signals import transactions_posted

events_processed = Signal()

# Which lifetime rollup of a membership a wallet entry moves, by the kind of transaction, and in which
# direction: earned counts credits, redeemed and expired count debits. A reversal moves the rollup of
# the transaction it reverses, the other way (a refund lowers `earned`, a cancelled redemption lowers
# `redeemed`).
LIFETIME_FIELDS = {
    "earn": ("lifetime_earned", 1),
    "redeem": ("lifetime_redeemed", -1),
    "expiry": ("lifetime_expired", -1),
}
_FIELDS = ("lifetime_earned", "lifetime_redeemed", "lifetime_expired")


@receiver(transactions_posted, dispatch_uid="loyalty.membership_lifetime_roll_up")
def membership_lifetime_roll_up(sender: type[Transaction], *, posted: Sequence[PostResult], **kwargs: Any) -> None:
    """Keep Membership.lifetime_* in step with the wallets, inside the posting's database transaction:
    one UPDATE for every membership the call touched."""
    deltas: dict[int, list[int]] = {}
    for result in posted:
        txn = result.transaction
        kind = txn.reverses.kind if txn.reverses_id is not None else txn.kind
        if kind not in LIFETIME_FIELDS:
            continue
        field, sign = LIFETIME_FIELDS[kind]
        slot = _FIELDS.index(field)
        for entry in result.entries:
            if entry.account.kind == Account.Kind.WALLET:
                deltas.setdefault(entry.account_id, [0, 0, 0])[slot] += sign * entry.amount
    if not deltas:
        return
    from loyalty.models import Membership

    wallets = sorted(deltas)
    columns = [wallets] + [[deltas[wallet][slot] for wallet in wallets] for slot in range(3)]
    sql = f"""
        UPDATE {Membership._meta.db_table} AS m
           SET lifetime_earned = m.lifetime_earned + v.earned,
               lifetime_redeemed = m.lifetime_redeemed + v.redeemed,
               lifetime_expired = m.lifetime_expired + v.expired
          FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[]) AS v(wallet_id, earned, redeemed, expired)
         WHERE m.wallet_id = v.wallet_id
    """  # noqa: S608 - only the table name is formatted in
    with bulk_cursor() as cursor:
        cursor.execute(sql, columns, prepare=True)  # planned once per connection: it runs with every posting
