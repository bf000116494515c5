"""The books: accounts, transactions, entries, the balance rollup, and the record of reconciliation fixes.

The rules that never bend (double entry, append-only, no overdraft, one rollup row per account) are
enforced by PostgreSQL, not only by this module: see the constraints below and the triggers in
migrations/0002_invariants.py. Write through ledger.services; read through ledger.selectors.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from ledger.hashing import GENESIS_HASH


class Account(models.Model):
    class Kind(models.TextChoices):
        ISSUANCE = "issuance", "Issuance"
        WALLET = "wallet", "Wallet"
        PENDING = "pending", "Pending (not yet spendable)"
        REDEMPTIONS = "redemptions", "Redemptions"
        EXPIRED = "expired", "Expired"
        ADJUSTMENTS = "adjustments", "Adjustments"
        OTHER = "other", "Other"

    # The code is part of every entry hash of the account, and the unit decides which accounts may
    # trade with which: a database trigger refuses to change either once the account exists.
    code = models.CharField(max_length=200, unique=True, help_text='For example "brand:3:wallet:17".')
    kind = models.CharField(max_length=20, choices=Kind.choices)
    unit = models.CharField(max_length=64, help_text='What the amounts count, for example "points:coffee".')
    allow_negative = models.BooleanField(
        default=False,
        help_text="Issuance accounts may go negative (minus their balance is what was issued); wallets never.",
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Transaction(models.Model):
    """One posting: two or more entries that sum to zero. Never updated, never deleted."""

    idempotency_key = models.CharField(max_length=255)
    kind = models.CharField(max_length=40, help_text='For example "earn", "redeem", "reversal", "expiry".')
    memo = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        help_text="The transaction this one reverses or corrects.",
    )
    # sha256 of kind, sorted (account code, amount) pairs and reverses id: tells a retry of the same
    # request (returns the original) from a different request reusing the key (a conflict).
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # No index on created_at: ids grow with time, so "newest first" is ORDER BY id DESC, for free.
        constraints = [
            # A constraint rather than unique=True: the same guarantee (and the target of the posting's
            # ON CONFLICT), without the extra LIKE index Django adds to unique CharFields on PostgreSQL,
            # which every posting would pay for and no query uses.
            models.UniqueConstraint(fields=["idempotency_key"], name="ledger_transaction_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class Entry(models.Model):
    """One signed amount on one account: positive credits the account, negative debits it."""

    # No FOREIGN KEY constraints on these two: they cost a check per row at commit, four per posting, and
    # the ledger's statement-level trigger checks every new entry's transaction and account at once
    # (migrations/0005_entry_references_checked_per_statement.py). Neither can vanish: transactions are
    # append-only and accounts are never deleted (both refused by the database).
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="entries", db_constraint=False)
    # No separate index: the unique (account, seq) index below serves every lookup by account.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False, db_constraint=False
    )
    amount = models.BigIntegerField()
    # Position in the account's chain, 1, 2, 3... without gaps. Statements page on it, so a page
    # boundary stays put while new entries arrive, and the hash chain is walked in this order.
    seq = models.BigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_amount_not_zero"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="ledger_entry_seq_positive"),
            models.UniqueConstraint(fields=["account", "seq"], name="ledger_entry_account_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.amount:+d} on {self.account_id} (#{self.seq})"


class Balance(models.Model):
    """The rollup of one account's entries, changed in the same database transaction as they are.

    Reading a balance reads this row; nothing ever sums entries on the hot path.
    `manage.py reconcile` checks every field against the entries.
    """

    account = models.OneToOneField(Account, primary_key=True, on_delete=models.PROTECT, related_name="balance")
    balance = models.BigIntegerField(default=0)
    total_credited = models.BigIntegerField(default=0, help_text="Sum of the positive amounts.")
    total_debited = models.BigIntegerField(default=0, help_text="Sum of the negative amounts, as a positive number.")
    entry_count = models.BigIntegerField(default=0)
    head_seq = models.BigIntegerField(default=0, help_text="seq of the account's last entry (0: none yet).")
    head_hash = models.CharField(max_length=64, default=GENESIS_HASH, help_text="hash of the last entry.")
    # A copy of Account.allow_negative (kept in step by a trigger on ledger_account), so that the check
    # below can be a plain CheckConstraint on this row: the database's last line against an overdraft.
    allow_negative = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(allow_negative=True) | Q(balance__gte=0), name="ledger_balance_not_overdrawn"
            ),
            models.CheckConstraint(
                condition=Q(balance=F("total_credited") - F("total_debited")),
                name="ledger_balance_is_credits_minus_debits",
            ),
            models.CheckConstraint(
                condition=Q(total_credited__gte=0, total_debited__gte=0, entry_count__gte=0, head_seq__gte=0),
                name="ledger_balance_counters_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.balance}"


class ReconciliationFix(models.Model):
    """A record that `manage.py reconcile --fix` rebuilt a balance row from the entries. Append-only."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="reconciliation_fixes")
    before = models.JSONField(help_text="The balance row as it was (null: there was no row).", null=True)
    after = models.JSONField(help_text="The balance row as recomputed from the entries.")
    performed_by = models.CharField(max_length=200, help_text="Who ran the fix (OS user and host).")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"fix of {self.account_id} at {self.created_at:%Y-%m-%d %H:%M}"
