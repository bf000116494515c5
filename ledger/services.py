"""Every write to the ledger: accounts, postings, reversals.

A posting, in order (see ledger.locks for why this order):
  1. validate the request and fingerprint its content (ledger.hashing.content_hash);
  2. lock the original transaction (reversals only), then the balance rows of every touched account
     in account-id order;
  3. check what is left to reverse (reversals) and the balances (accounts that may not go negative);
  4. claim the idempotency key and insert the entries, chained to each account's head, in one
     INSERT ... ON CONFLICT (idempotency_key) DO NOTHING statement. If the key is taken, re-read it:
     same content returns the original (created=False), different content is a conflict. A concurrent
     poster of the same key makes PostgreSQL wait for the first to commit or roll back;
  5. send `transaction_posted`, whose ledger receiver moves the balance rows (a conditional UPDATE).
Everything happens in one atomic block: a refused posting leaves no transaction, no entries and
no balance change behind, so the same key may be retried later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ledger import audit, locks
from ledger.errors import (
    AccountConflictError,
    IdempotencyConflictError,
    InsufficientBalanceError,
    InvalidPostingError,
    ReversalExceedsRemainingError,
)
from ledger.hashing import content_hash, entry_hash
from ledger.models import Account, Balance, Entry, ReconciliationFix, Transaction
from ledger.selectors import REVERSAL_KIND, transaction_get, transaction_reversible_amounts
from ledger.signals import transaction_posted

BIGINT_MAX = 2**63 - 1
# Where transaction_reverse records how the reversal was asked for, to recognise a retry of it.
REVERSAL_REQUEST_KEY = "ledger_reversal"


@dataclass(frozen=True)
class Leg:
    """One entry of a posting request: a signed amount on an account (positive credits it)."""

    account: Account
    amount: int


@dataclass(frozen=True)
class PostResult:
    transaction: Transaction
    created: bool  # False: the idempotency key was already posted with this content; nothing was written


# --- accounts ---------------------------------------------------------------------------------------


@transaction.atomic
def account_get_or_create(
    *, code: str, kind: str, unit: str, allow_negative: bool = False, metadata: dict[str, Any] | None = None
) -> Account:
    """The account with this code, created with its (zero) balance row on first use; safe under races.

    An existing account must match `kind`, `unit` and `allow_negative`: a mismatch means two callers
    disagree about what the account is, which is refused (AccountConflictError) rather than ignored.
    """
    if not code or len(code) > 200:
        raise InvalidPostingError("An account code is 1 to 200 characters.")
    if kind not in Account.Kind.values:
        raise InvalidPostingError(f"Unknown account kind {kind!r}; one of {', '.join(Account.Kind.values)}.")
    if not unit or len(unit) > 64:
        raise InvalidPostingError("An account unit is 1 to 64 characters.")
    account = Account.objects.filter(code=code).first()
    if account is None:
        try:
            with transaction.atomic():
                account = Account.objects.create(
                    code=code, kind=kind, unit=unit, allow_negative=allow_negative, metadata=metadata or {}
                )
                Balance.objects.create(account=account, allow_negative=allow_negative)
                return account
        except IntegrityError:
            # Another request created it between our read and our insert; PostgreSQL made our insert
            # wait for its commit, so the row is visible now.
            account = Account.objects.get(code=code)
    if (account.kind, account.unit, account.allow_negative) != (kind, unit, bool(allow_negative)):
        raise AccountConflictError(
            f"Account {code!r} exists as kind={account.kind}, unit={account.unit}, "
            f"allow_negative={account.allow_negative}."
        )
    return account


# --- posting --------------------------------------------------------------------------------------


def _legs(entries: Sequence[Leg | tuple[Account, int]]) -> list[Leg]:
    legs = []
    for item in entries:
        try:
            leg = item if isinstance(item, Leg) else Leg(*item)
        except TypeError:
            raise InvalidPostingError("Each entry is an (account, amount) pair.") from None
        if not isinstance(leg.account, Account) or leg.account.pk is None:
            raise InvalidPostingError("Every entry needs a saved ledger Account.")
        # bool is an int in Python; True points is a bug, not one point.
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool):
            raise InvalidPostingError(f"Amounts are whole numbers, not {type(leg.amount).__name__}.")
        if leg.amount == 0:
            raise InvalidPostingError("An entry amount is never zero.")
        if abs(leg.amount) > BIGINT_MAX:
            raise InvalidPostingError("An entry amount is out of range.")
        legs.append(leg)
    if len(legs) < 2:
        raise InvalidPostingError("A transaction has at least two entries.")
    if sum(leg.amount for leg in legs) != 0:
        raise InvalidPostingError("The entries of a transaction sum to zero.")
    return legs


def _check_request(idempotency_key: str, kind: str, metadata: dict[str, Any] | None) -> None:
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
        raise InvalidPostingError("An idempotency key is a string of 1 to 255 characters.")
    if not isinstance(kind, str) or not 1 <= len(kind) <= 40:
        raise InvalidPostingError("A transaction kind is a string of 1 to 40 characters.")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidPostingError("Transaction metadata is a JSON object.")


def _replay(idempotency_key: str, fingerprint: str) -> Transaction | None:
    """The transaction already posted with this key, if any; refuses one with different content."""
    existing = transaction_get(idempotency_key=idempotency_key)
    if existing is None:
        return None
    if existing.content_hash != fingerprint:
        raise IdempotencyConflictError(idempotency_key=idempotency_key, existing_id=existing.pk)
    return existing


def _balances_lock(legs: list[Leg]) -> dict[int, Balance]:
    account_ids = {leg.account.pk for leg in legs}
    balances = locks.balances_lock(account_ids=account_ids)
    missing = account_ids - balances.keys()
    if missing:
        # Accounts made without account_get_or_create have no rollup row yet: create it (zero, as nothing
        # was ever posted to them) and lock again. The order of this second pass cannot deadlock: the
        # rows already locked stay locked, and a row we just inserted is invisible to everyone else.
        for account in Account.objects.filter(pk__in=missing):
            Balance.objects.get_or_create(account=account, defaults={"allow_negative": account.allow_negative})
        balances = locks.balances_lock(account_ids=account_ids)
        if account_ids - balances.keys():
            raise InvalidPostingError("An entry names an account that does not exist.")
    return balances


def _check_units(legs: list[Leg], balances: dict[int, Balance]) -> None:
    units = {balances[leg.account.pk].account.unit for leg in legs}
    if len(units) > 1:
        raise InvalidPostingError(f"All entries of a transaction are in one unit, not {sorted(units)}.")


def _check_within_remaining(original: Transaction, legs: list[Leg]) -> None:
    remaining = transaction_reversible_amounts(original=original)
    requested: dict[int, int] = {}
    for leg in legs:
        requested[leg.account.pk] = requested.get(leg.account.pk, 0) + leg.amount
    codes = {leg.account.pk: leg.account.code for leg in legs}
    for account_id, amount in sorted(requested.items()):
        if account_id not in remaining:
            raise InvalidPostingError(f"A reversal only touches the original's accounts, not {codes[account_id]}.")
        left = remaining[account_id]
        # A reversal moves each account back toward where it was: opposite sign, at most what is left.
        if amount != 0 and (left == 0 or (amount > 0) == (left > 0) or abs(amount) > abs(left)):
            raise ReversalExceedsRemainingError(
                f"Reversing {-amount:+d} on {codes[account_id]} exceeds what is left to reverse ({left:+d})."
            )


def _check_funds(legs: list[Leg], balances: dict[int, Balance]) -> None:
    deltas: dict[int, int] = {}
    for leg in legs:
        deltas[leg.account.pk] = deltas.get(leg.account.pk, 0) + leg.amount
    for account_id, delta in sorted(deltas.items()):
        row = balances[account_id]
        if not row.allow_negative and row.balance + delta < 0:
            missing = -(row.balance + delta)
            # The message reaches API clients: it says how much is missing, not which internal account.
            raise InsufficientBalanceError(
                f"The balance is too low: {missing} more needed.", missing=missing, account_code=row.account.code
            )


def _entries_build(
    *, idempotency_key: str, created_at: datetime, legs: list[Leg], balances: dict[int, Balance]
) -> list[Entry]:
    """Unsaved entries chained onto each account's head: seq = head_seq + 1, prev_hash = head_hash."""
    heads = {account_id: (row.head_seq, row.head_hash) for account_id, row in balances.items()}
    entries = []
    for leg in legs:
        account = balances[leg.account.pk].account
        seq, prev_hash = heads[account.pk]
        seq += 1
        digest = entry_hash(
            idempotency_key=idempotency_key,
            account_code=account.code,
            amount=leg.amount,
            seq=seq,
            created_at=created_at,
            prev_hash=prev_hash,
        )
        heads[account.pk] = (seq, digest)
        entries.append(
            Entry(account=account, amount=leg.amount, seq=seq, prev_hash=prev_hash, hash=digest, created_at=created_at)
        )
    return entries


def _insert(*, txn: Transaction, entries: list[Entry]) -> bool:
    """Claim the idempotency key and insert the entries, in one statement. False if the key was taken.

    INSERT ... ON CONFLICT (idempotency_key) DO NOTHING, not a savepoint and a caught IntegrityError: no
    aborted subtransaction, no error in the server log for what is a normal retry. If another database
    transaction holds the same key uncommitted, PostgreSQL makes this statement wait for it to end, so
    "taken" always means "taken and committed". The entries hang off the RETURNING of the transaction
    row, so when the key is taken nothing at all is inserted. One round trip for both tables.
    """
    values = ", ".join(["(%s::bigint, %s::bigint, %s::bigint, %s, %s)"] * len(entries))
    sql = f"""
        WITH txn AS (
            INSERT INTO {Transaction._meta.db_table}
                   (idempotency_key, kind, memo, metadata, reverses_id, content_hash, created_at)
            VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id
        )
        INSERT INTO {Entry._meta.db_table} (transaction_id, account_id, amount, seq, prev_hash, hash, created_at)
        SELECT txn.id, v.account_id, v.amount, v.seq, v.prev_hash, v.hash, %s
          FROM txn CROSS JOIN (VALUES {values}) AS v(account_id, amount, seq, prev_hash, hash)
        RETURNING id, transaction_id, account_id, seq
    """  # noqa: S608 - only table names and placeholders are formatted in
    params: list[object] = [
        txn.idempotency_key,
        txn.kind,
        txn.memo,
        json.dumps(txn.metadata, cls=DjangoJSONEncoder),
        txn.reverses_id,
        txn.content_hash,
        txn.created_at,
        txn.created_at,
    ]
    for entry in entries:
        params += [entry.account_id, entry.amount, entry.seq, entry.prev_hash, entry.hash]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchall()
    if not inserted:
        return False
    ids = {(account_id, seq): (entry_id, transaction_id) for entry_id, transaction_id, account_id, seq in inserted}
    for entry in entries:
        entry.id, txn.id = ids[(entry.account_id, entry.seq)]
        entry.transaction = txn
        entry._state.adding = False
        entry._state.db = connection.alias
    txn._state.adding = False
    txn._state.db = connection.alias
    return True


@transaction.atomic
def transaction_post(
    *,
    idempotency_key: str,
    kind: str,
    entries: Sequence[Leg | tuple[Account, int]],
    memo: str = "",
    metadata: dict[str, Any] | None = None,
    reverses: Transaction | None = None,
) -> PostResult:
    """Post a balanced transaction, exactly once per idempotency key.

    `entries` are (account, signed amount) pairs or Legs: two or more, none zero, summing to zero, all
    accounts in one unit. The same key with the same content (kind, entries, reverses; not memo or
    metadata) returns the original with created=False and writes nothing; with different content it
    raises IdempotencyConflictError. An account that may not go negative and would raises
    InsufficientBalanceError, writing nothing. A kind of "reversal" with `reverses` set may not
    reverse more than what is left of the original (ReversalExceedsRemainingError).

    Locks: the balance rows of all touched accounts (and the original, for a reversal), held until
    the outermost atomic block ends. See ledger.locks before locking anything yourself first.
    """
    _check_request(idempotency_key, kind, metadata)
    legs = _legs(entries)
    fingerprint = content_hash(
        kind=kind,
        entries=[(leg.account.code, leg.amount) for leg in legs],
        reverses_id=reverses.pk if reverses is not None else None,
    )

    if reverses is not None:
        reverses = locks.transaction_lock_for_reversal(transaction_id=reverses.pk)
    balances = _balances_lock(legs)
    _check_units(legs, balances)

    try:
        if reverses is not None and kind == REVERSAL_KIND:
            _check_within_remaining(reverses, legs)
        _check_funds(legs, balances)
    except (InsufficientBalanceError, ReversalExceedsRemainingError):
        # A retry of a posting that went through must get it back, not a refusal because the money it
        # moved has since moved on (or, for a reversal, because it used up what was left itself).
        existing = _replay(idempotency_key, fingerprint)
        if existing is not None:
            return PostResult(transaction=existing, created=False)
        raise

    created_at = timezone.now()
    txn = Transaction(
        idempotency_key=idempotency_key,
        kind=kind,
        memo=memo,
        metadata=metadata or {},
        reverses=reverses,
        content_hash=fingerprint,
        created_at=created_at,
    )
    rows = _entries_build(idempotency_key=idempotency_key, created_at=created_at, legs=legs, balances=balances)
    if not _insert(txn=txn, entries=rows):
        # The key is taken (by a committed transaction: we waited for it if it was in flight).
        existing = _replay(idempotency_key, fingerprint)
        if existing is None:  # pragma: no cover - a conflicting committed row is visible to the re-read
            raise RuntimeError(f"ledger: key {idempotency_key!r} is taken but its transaction is not visible")
        return PostResult(transaction=existing, created=False)

    # The ledger's own receiver (ledger.signals.balances_roll_up) moves the balance rows; higher apps'
    # receivers keep their rollups, all inside this atomic block.
    transaction_posted.send(sender=Transaction, transaction=txn, entries=rows)
    return PostResult(transaction=txn, created=True)


# --- reversals ------------------------------------------------------------------------------------


def _fraction(value: Fraction | Decimal | int | str) -> Fraction:
    try:
        fraction = Fraction(value)
    except (ValueError, TypeError, ZeroDivisionError):
        raise InvalidPostingError(f"A reversal fraction is a number between 0 and 1, not {value!r}.") from None
    if not 0 < fraction <= 1:
        raise InvalidPostingError(f"A reversal fraction is more than 0 and at most 1, not {value}.")
    return fraction


def _scale(nets: dict[int, int], fraction: Fraction) -> dict[int, int]:
    """`fraction` of each account's net amount, still summing to zero.

    Rounding rule: every credited account (positive net, a wallet for an earn) gives back its share
    rounded down, so a member never loses more than the fraction; the debited side then takes exactly
    that total, split in proportion by the largest-remainder method (ties to the lower account id).
    """
    scaled = {account_id: int(net * fraction) for account_id, net in nets.items() if net > 0}  # int(): floor for >= 0
    total = sum(scaled.values())
    debits = {account_id: -net for account_id, net in nets.items() if net < 0}
    debit_total = sum(debits.values())
    shares = {account_id: Fraction(amount * total, debit_total) for account_id, amount in debits.items()}
    floors = {account_id: int(share) for account_id, share in shares.items()}
    left = total - sum(floors.values())
    by_remainder = sorted(shares, key=lambda account_id: (-(shares[account_id] - floors[account_id]), account_id))
    for account_id in by_remainder[:left]:
        floors[account_id] += 1
    scaled.update({account_id: -amount for account_id, amount in floors.items()})
    return {account_id: amount for account_id, amount in scaled.items() if amount}


@transaction.atomic
def transaction_reverse(
    *,
    original: Transaction,
    idempotency_key: str,
    fraction: Fraction | Decimal | int | str | None = None,
    amounts: Mapping[Account | str, int] | None = None,
    memo: str = "",
    metadata: dict[str, Any] | None = None,
) -> PostResult:
    """Post a reversal of `original`: its entries negated, pointing at it (kind "reversal").

    By default reverses whatever is left of the original (all of it, unless partial reversals came
    before). `fraction` (0 < f <= 1) reverses that part of the original's amounts (see _scale for the
    rounding); `amounts` maps accounts (or their codes) to the part of the original's signed amount to
    undo, e.g. {wallet: 30, issuance: -30} for 30 of an earn of 100. Never more than is left, per
    account (ReversalExceedsRemainingError). Idempotent like transaction_post: a retry with the same
    key and the same request returns the first reversal even though less is left now.

    Locks: the original transaction row, then the balance rows (ledger.locks order).
    """
    if fraction is not None and amounts is not None:
        raise InvalidPostingError("Give a fraction or amounts, not both.")
    _check_request(idempotency_key, REVERSAL_KIND, metadata)
    original = locks.transaction_lock_for_reversal(transaction_id=original.pk)
    accounts = {entry.account_id: entry.account for entry in original.entries.select_related("account")}

    if amounts is not None:
        by_code = {account.code: account for account in accounts.values()}
        legs = []
        for key, amount in amounts.items():
            account = by_code.get(key.code if isinstance(key, Account) else key)
            if account is None:
                raise InvalidPostingError(f"{key} has no entry in the transaction being reversed.")
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise InvalidPostingError("Reversal amounts are whole numbers.")
            if amount:
                legs.append(Leg(account, -amount))
        # The content of an amounts reversal does not depend on what is left: transaction_post's own
        # fingerprint tells a retry from a conflict.
        request: dict[str, Any] = {"mode": "amounts"}
    else:
        request = {"mode": "whole"} if fraction is None else {"mode": "fraction", "fraction": str(_fraction(fraction))}
        # Whole and fraction reversals are computed from what is left, which the first attempt changed:
        # recognise a retry by its key and recorded request instead of by its content.
        existing = transaction_get(idempotency_key=idempotency_key)
        if existing is not None:
            same = (
                existing.kind == REVERSAL_KIND
                and existing.reverses_id == original.pk
                and existing.metadata.get(REVERSAL_REQUEST_KEY) == request
            )
            if not same:
                raise IdempotencyConflictError(idempotency_key=idempotency_key, existing_id=existing.pk)
            return PostResult(transaction=existing, created=False)
        if fraction is None:
            nets = transaction_reversible_amounts(original=original)
        else:
            nets = {}
            for entry in original.entries.all():
                nets[entry.account_id] = nets.get(entry.account_id, 0) + entry.amount
            nets = _scale(nets, _fraction(fraction))
        legs = [Leg(accounts[account_id], -net) for account_id, net in sorted(nets.items()) if net]
        if fraction is None and not legs:
            raise ReversalExceedsRemainingError("Nothing is left to reverse of this transaction.")
        if len(legs) < 2:
            raise InvalidPostingError("This fraction of the transaction rounds down to nothing.")

    return transaction_post(
        idempotency_key=idempotency_key,
        kind=REVERSAL_KIND,
        entries=legs,
        memo=memo,
        metadata={**(metadata or {}), REVERSAL_REQUEST_KEY: request},
        reverses=original,
    )


# --- reconciliation -------------------------------------------------------------------------------


@transaction.atomic
def balance_rebuild(*, account: Account, performed_by: str, reason: str = "") -> ReconciliationFix | None:
    """Rebuild an account's balance row from its entries and record that it was done.

    Returns the ReconciliationFix, or None when the row already matched (a difference seen earlier may
    have been a row since fixed by someone else). Entries are the truth and are never touched; only
    the rollup row moves.

    Locks the account's balance row first, so no posting changes the entries between the recount and
    the update. Fails with IntegrityError if the entries of an account that may not go negative sum
    below zero: that is no rollup error, and verify_ledger is the next step.
    """
    locks.balances_lock(account_ids=[account.pk])
    rollup = audit.rollup_recompute_one(account_id=account.pk)
    if not rollup.differences:
        return None
    now = timezone.now()
    if rollup.stored is None:
        Balance.objects.create(account=account, updated_at=now, **rollup.computed)
    else:
        Balance.objects.filter(account_id=account.pk).update(updated_at=now, **rollup.computed)
    return ReconciliationFix.objects.create(
        account=account,
        before=rollup.stored,
        after=rollup.computed,
        performed_by=performed_by[:200],
        reason=reason,
        created_at=now,
    )
