"""The ledger's one signal.

Lower apps tell higher ones what happened through signals (ledger <- loyalty <- perks, livestream):
loyalty keeps its own rollups (lifetime points per membership...) by receiving `transactions_posted`,
in the same database transaction as the entries.
"""

from __future__ import annotations

from django.dispatch import Signal


class TransactionsPostedSignal(Signal):
    """Sent once per call of ledger.services.transactions_post (and so transaction_post and
    transaction_reverse) that created transactions; never for idempotent replays.

    Sent *synchronously, inside the posting's atomic block*, after the transactions and their entries
    are inserted and the ledger's own balance rows moved (ledger.rollups), while those balance rows are
    locked (SELECT ... FOR UPDATE, in account-id order).

    Arguments:
        sender: the Transaction model class.
        posted: list[ledger.services.PostResult], one per new transaction, in posting order: `.transaction`
            (saved; `.reverses` loaded for reversals) and `.entries` (saved, each with `.account` loaded
            and its `seq`, `prev_hash` and `hash` set).

    One call may carry one transaction or a thousand (a batch of events): a receiver should write
    set-based (one statement for all of them), not one statement per transaction. Receivers run in the
    poster's database transaction: what they write commits or rolls back with the entries, and an
    exception they raise refuses the whole posting (the caller sees that exception). So a receiver must
    be quick, must not call the network, and must defer side effects (emails, Celery tasks) with
    `transaction.on_commit`. It must not post to the ledger itself.
    """


transactions_posted = TransactionsPostedSignal()
