"""Every write to the ledger: accounts, postings, reversals.

A posting (one, or many at once with transactions_post), in order (see ledger.locks for why this order):
  1. validate each request and fingerprint its content (ledger.hashing.content_hash);
  2. lock the original transactions (reversals only), then the balance rows of every touched account
     in account-id order, each once;
  3. check what is left to reverse (reversals) and the balances (accounts that may not go negative),
     posting after posting, each counting those before it;
  4. claim the idempotency keys and insert the entries, chained to each account's head in posting
     order, in one INSERT ... ON CONFLICT (idempotency_key) DO NOTHING statement. A key that is taken
     is re-read: same content returns the original (created=False), different content is a conflict.
     A concurrent poster of the same key makes PostgreSQL wait for the first to commit or roll back;
  5. move every touched balance row once (ledger.rollups, one conditional UPDATE), then send
     `transactions_posted` for the rollups of higher apps.
Everything happens in one atomic block: a refused posting leaves no transaction, no entries and
no balance change behind, so the same key may be retried later.
"""

from __future__ import annotations

import hashlib
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

from config.db import bulk_cursor
from ledger import audit, locks
from ledger.errors import (
    AccountConflictError,
    IdempotencyConflictError,
    InsufficientBalanceError,
    InvalidPostingError,
    ReversalExceedsRemainingError,
)
from ledger.hashing import GENESIS_HASH, canonical_time, content_hash, entry_digest
from ledger.locks import BalanceHead
from ledger.models import Account, Balance, Entry, ReconciliationFix, Transaction
from ledger.rollups import balances_roll_up
from ledger.selectors import (
    REVERSAL_KIND,
    transaction_get,
    transaction_reversible_amounts,
    transactions_reversible_amounts,
)
from ledger.signals import transactions_posted

BIGINT_MAX = 2**63 - 1
# Where transaction_reverse records how the reversal was asked for, to recognise a retry of it.
REVERSAL_REQUEST_KEY = "ledger_reversal"


@dataclass(frozen=True)
class Leg:
    """One entry of a posting request: a signed amount on an account (positive credits it).

    The account is an Account, or the BalanceHead that ledger.locks.balances_lock returned for it (a
    batch posts to a thousand accounts without loading a model for each)."""

    account: Account | BalanceHead
    amount: int


@dataclass(frozen=True)
class Posting:
    """One transaction to post: what transaction_post takes, as a value (transactions_post takes many)."""

    idempotency_key: str
    kind: str
    entries: Sequence[Leg | tuple[Account, int]]
    memo: str = ""
    metadata: dict[str, Any] | None = None
    reverses: Transaction | None = None


@dataclass(slots=True)
class PostedEntry:
    """A new entry as it was inserted (the Entry row, without a model instance per row)."""

    id: int | None
    transaction_id: int | None
    account: Account | BalanceHead
    amount: int
    seq: int
    prev_hash: str
    hash: str
    created_at: datetime
    balance_after: int = 0  # the account's balance once this entry is posted (not a column: for receivers)

    @property
    def pk(self) -> int | None:
        return self.id

    @property
    def account_id(self) -> int:
        return self.account.pk


@dataclass(frozen=True)
class PostResult:
    transaction: Transaction
    created: bool  # False: the idempotency key was already posted with this content; nothing was written
    entries: tuple[PostedEntry, ...] = ()  # the new entries (created postings only), in posting order


# --- accounts ---------------------------------------------------------------------------------------


def _check_account(code: str, kind: str, unit: str) -> None:
    if not code or len(code) > 200:
        raise InvalidPostingError("An account code is 1 to 200 characters.")
    if kind not in Account.Kind.values:
        raise InvalidPostingError(f"Unknown account kind {kind!r}; one of {', '.join(Account.Kind.values)}.")
    if not unit or len(unit) > 64:
        raise InvalidPostingError("An account unit is 1 to 64 characters.")


def account_get_or_create(
    *, code: str, kind: str, unit: str, allow_negative: bool = False, metadata: dict[str, Any] | None = None
) -> Account:
    """The account with this code, created with its (zero) balance row on first use; safe under races.

    An existing account must match `kind`, `unit` and `allow_negative`: a mismatch means two callers
    disagree about what the account is, which is refused (AccountConflictError) rather than ignored.
    Finding an existing one is one read, without a savepoint: it runs in every batch and every spend.
    """
    _check_account(code, kind, unit)
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


@dataclass(frozen=True)
class AccountSpec:
    code: str
    kind: str
    unit: str
    allow_negative: bool = False


_ACCOUNTS_SQL = f"""
    WITH new AS (
        INSERT INTO {Account._meta.db_table} (code, kind, unit, allow_negative, metadata, created_at)
        SELECT v.code, v.kind, v.unit, v.allow_negative, '{{}}'::jsonb, %s
          FROM unnest(%s::text[], %s::text[], %s::text[], %s::boolean[]) AS v(code, kind, unit, allow_negative)
        ON CONFLICT (code) DO NOTHING
        RETURNING id, code, kind, unit, allow_negative
    ), rollup AS (
        INSERT INTO {Balance._meta.db_table}
               (account_id, balance, total_credited, total_debited, entry_count, head_seq, head_hash,
                allow_negative, updated_at)
        SELECT id, 0, 0, 0, 0, 0, %s, allow_negative, %s FROM new
    )
    SELECT id, code, kind, unit, allow_negative FROM new
    UNION ALL
    SELECT id, code, kind, unit, allow_negative FROM {Account._meta.db_table} WHERE code = ANY(%s)
"""  # noqa: S608 - only table names are formatted in


def accounts_get_or_create(*, specs: Sequence[AccountSpec]) -> dict[str, int]:
    """account_get_or_create for many accounts in one statement: code -> account id.

    Each new account gets its (zero) balance row in the same statement. An existing account must match
    its spec (AccountConflictError otherwise). Safe under races: a concurrent creator of the same code
    makes the INSERT skip it, and the statement reads the winner's row.
    """
    if not specs:
        return {}
    for spec in specs:
        _check_account(spec.code, spec.kind, spec.unit)
    now = timezone.now()
    codes = [spec.code for spec in specs]
    with connection.cursor() as cursor:
        cursor.execute(
            _ACCOUNTS_SQL,
            [
                now,
                codes,
                [spec.kind for spec in specs],
                [spec.unit for spec in specs],
                [bool(spec.allow_negative) for spec in specs],
                GENESIS_HASH,
                now,
                codes,
            ],
        )
        rows = {code: (account_id, kind, unit, allow) for account_id, code, kind, unit, allow in cursor.fetchall()}
    missing = [code for code in codes if code not in rows]
    if missing:
        # Created by a concurrent statement that committed after ours began: visible to a new statement.
        for account in Account.objects.filter(code__in=missing):
            rows[account.code] = (account.pk, account.kind, account.unit, account.allow_negative)
    ids = {}
    for spec in specs:
        account_id, kind, unit, allow = rows[spec.code]
        if (kind, unit, allow) != (spec.kind, spec.unit, bool(spec.allow_negative)):
            raise AccountConflictError(
                f"Account {spec.code!r} exists as kind={kind}, unit={unit}, allow_negative={allow}."
            )
        ids[spec.code] = account_id
    return ids


# --- posting --------------------------------------------------------------------------------------


def _legs(entries: Sequence[Leg | tuple[Account, int]]) -> list[Leg]:
    legs = []
    for item in entries:
        try:
            leg = item if isinstance(item, Leg) else Leg(*item)
        except TypeError:
            raise InvalidPostingError("Each entry is an (account, amount) pair.") from None
        if not isinstance(leg.account, Account | BalanceHead) or leg.account.pk is None:
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


IDEMPOTENCY_KEY_MAX = 255  # Transaction.idempotency_key's column


def posting_key(prefix: str, client_key: str) -> str:
    """A ledger idempotency key for a client's own key: `<prefix>:<client key>`, or, when that would not
    fit the column, `<prefix>:sha256:<hex digest of the client key>` (the same key always maps alike, so
    a retry still finds its posting)."""
    key = f"{prefix}:{client_key}"
    if len(key) <= IDEMPOTENCY_KEY_MAX:
        return key
    return f"{prefix}:sha256:{hashlib.sha256(client_key.encode()).hexdigest()}"


def _check_request(idempotency_key: str, kind: str, metadata: dict[str, Any] | None) -> None:
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise InvalidPostingError(f"An idempotency key is a string of 1 to {IDEMPOTENCY_KEY_MAX} characters.")
    if not isinstance(kind, str) or not 1 <= len(kind) <= 40:
        raise InvalidPostingError("A transaction kind is a string of 1 to 40 characters.")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidPostingError("Transaction metadata is a JSON object.")


@dataclass(frozen=True)
class _Prepared:
    """A validated posting request with its legs and content fingerprint."""

    posting: Posting
    legs: list[Leg]
    fingerprint: str

    @property
    def key(self) -> str:
        return self.posting.idempotency_key


def _prepare(posting: Posting) -> _Prepared:
    _check_request(posting.idempotency_key, posting.kind, posting.metadata)
    legs = _legs(posting.entries)
    fingerprint = content_hash(
        kind=posting.kind,
        entries=[(leg.account.code, leg.amount) for leg in legs],
        reverses_id=posting.reverses.pk if posting.reverses is not None else None,
    )
    return _Prepared(posting=posting, legs=legs, fingerprint=fingerprint)


def _balances_lock(account_ids: set[int]) -> dict[int, BalanceHead]:
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


def _check_units(legs: list[Leg], balances: dict[int, BalanceHead]) -> None:
    units = {balances[leg.account.pk].unit for leg in legs}
    if len(units) > 1:
        raise InvalidPostingError(f"All entries of a transaction are in one unit, not {sorted(units)}.")


def _net_by_account(legs: list[Leg]) -> dict[int, int]:
    nets: dict[int, int] = {}
    for leg in legs:
        nets[leg.account.pk] = nets.get(leg.account.pk, 0) + leg.amount
    return nets


def _check_within_remaining(remaining: dict[int, int], legs: list[Leg]) -> None:
    """Refuse a reversal that asks for more than `remaining` (what is left of its original, per account);
    on success, `remaining` is reduced by it, so that the next reversal of the same original in the same
    batch sees what this one left."""
    codes = {leg.account.pk: leg.account.code for leg in legs}
    requested = _net_by_account(legs)
    for account_id, amount in sorted(requested.items()):
        if account_id not in remaining:
            raise InvalidPostingError(f"A reversal only touches the original's accounts, not {codes[account_id]}.")
        left = remaining[account_id]
        # A reversal moves each account back toward where it was: opposite sign, at most what is left.
        if amount != 0 and (left == 0 or (amount > 0) == (left > 0) or abs(amount) > abs(left)):
            raise ReversalExceedsRemainingError(
                f"Reversing {-amount:+d} on {codes[account_id]} exceeds what is left to reverse ({left:+d})."
            )
    for account_id, amount in requested.items():
        remaining[account_id] += amount


def _check_funds(legs: list[Leg], running: dict[int, int], balances: dict[int, BalanceHead]) -> None:
    """Refuse a posting that would take an account that may not go negative below zero, counting the
    postings before it in the same call (`running`: account id -> balance so far, updated on success)."""
    deltas = _net_by_account(legs)
    for account_id, delta in sorted(deltas.items()):
        head = balances[account_id]
        if not head.allow_negative and running[account_id] + delta < 0:
            missing = -(running[account_id] + delta)
            # The message reaches API clients: it says how much is missing, not which internal account.
            raise InsufficientBalanceError(
                f"The balance is too low: {missing} more needed.", missing=missing, account_code=head.code
            )
    for account_id, delta in deltas.items():
        running[account_id] += delta


def _entries_build(
    *, prepared: list[_Prepared], created_at: datetime, balances: dict[int, BalanceHead]
) -> list[list[PostedEntry]]:
    """The entries of each posting, chained onto each account's head in posting order:
    seq = head_seq + 1, prev_hash = head_hash, then the next entry of the account chains onto this one."""
    heads = {account_id: (head.head_seq, head.head_hash) for account_id, head in balances.items()}
    running = {account_id: head.balance for account_id, head in balances.items()}
    moment = canonical_time(created_at)
    built = []
    for item in prepared:
        entries = []
        for leg in item.legs:
            account_id = leg.account.pk
            seq, prev_hash = heads[account_id]
            seq += 1
            digest = entry_digest(
                idempotency_key=item.key,
                account_code=leg.account.code,
                amount=leg.amount,
                seq=seq,
                moment=moment,
                prev_hash=prev_hash,
            )
            heads[account_id] = (seq, digest)
            running[account_id] += leg.amount
            entries.append(
                PostedEntry(
                    None, None, leg.account, leg.amount, seq, prev_hash, digest, created_at, running[account_id]
                )
            )
        built.append(entries)
    return built


# %b: binary parameters. Every row travels as a column array (unnest), so the statement text is the same
# for 1 or 1,000 postings, and the arrays go over the wire in binary, apart from the SQL.
_INSERT_SQL = f"""
    WITH txn AS (
        INSERT INTO {Transaction._meta.db_table}
               (idempotency_key, kind, memo, metadata, reverses_id, content_hash, created_at)
        SELECT v.key, v.kind, v.memo, v.metadata::jsonb, v.reverses_id, v.content_hash, %b
          FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[])
               AS v(key, kind, memo, metadata, reverses_id, content_hash)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id, idempotency_key
    )
    INSERT INTO {Entry._meta.db_table} (transaction_id, account_id, amount, seq, prev_hash, hash, created_at)
    SELECT txn.id, e.account_id, e.amount, e.seq, e.prev_hash, e.hash, %b
      FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[])
           AS e(key, account_id, amount, seq, prev_hash, hash)
      JOIN txn ON txn.idempotency_key = e.key
    RETURNING id, transaction_id, account_id, seq
"""  # noqa: S608 - only table names are formatted in


def _insert(*, transactions: list[Transaction], entries: list[list[PostedEntry]]) -> set[str]:
    """Claim the idempotency keys and insert the transactions and their entries, in one statement.

    Returns the keys that were inserted; a key that was taken already is skipped with all of its
    entries. INSERT ... ON CONFLICT (idempotency_key) DO NOTHING, not a savepoint and a caught
    IntegrityError: no aborted subtransaction, no error in the server log for what is a normal retry.
    If another database transaction holds one of the keys uncommitted, PostgreSQL makes this statement
    wait for it to end, so "taken" always means "taken and committed".
    """
    created_at = transactions[0].created_at
    txn_columns: tuple[list, ...] = ([], [], [], [], [], [])
    entry_columns: tuple[list, ...] = ([], [], [], [], [], [])
    for txn, rows in zip(transactions, entries, strict=True):
        key = txn.idempotency_key
        for column, value in zip(
            txn_columns,
            (
                key,
                txn.kind,
                txn.memo,
                json.dumps(txn.metadata, cls=DjangoJSONEncoder),
                txn.reverses_id,
                txn.content_hash,
            ),
            strict=True,
        ):
            column.append(value)
        for entry in rows:
            for column, value in zip(
                entry_columns,
                (key, entry.account.pk, entry.amount, entry.seq, entry.prev_hash, entry.hash),
                strict=True,
            ):
                column.append(value)
    with bulk_cursor() as cursor:
        cursor.execute(_INSERT_SQL, [created_at, *txn_columns, created_at, *entry_columns])
        inserted = cursor.fetchall()
    ids = {(account_id, seq): (entry_id, transaction_id) for entry_id, transaction_id, account_id, seq in inserted}
    keys = set()
    for txn, rows in zip(transactions, entries, strict=True):
        first = ids.get((rows[0].account.pk, rows[0].seq))
        if first is None:
            continue
        keys.add(txn.idempotency_key)
        txn.id = first[1]
        txn._state.adding = False
        txn._state.db = connection.alias
        for entry in rows:
            entry.id, entry.transaction_id = ids[(entry.account.pk, entry.seq)]
    return keys


# Positional arguments follow the model's field order: Model.__init__ takes its fast path, several times
# quicker than keywords, which counts for a batch of a thousand.
_TRANSACTION_FIELDS = ["id", "idempotency_key", "kind", "memo", "metadata", "reverses_id", "content_hash", "created_at"]
if [field.attname for field in Transaction._meta.concrete_fields] != _TRANSACTION_FIELDS:  # pragma: no cover
    raise RuntimeError("ledger.Transaction's fields changed: update _transaction_new")


def _transaction_new(item: _Prepared, originals: dict[int, Transaction], created_at: datetime) -> Transaction:
    posting = item.posting
    reverses = originals[posting.reverses.pk] if posting.reverses is not None else None
    txn = Transaction(
        None,
        item.key,
        posting.kind,
        posting.memo,
        posting.metadata or {},
        reverses.pk if reverses is not None else None,
        item.fingerprint,
        created_at,
    )
    if reverses is not None:
        txn.reverses = reverses  # loaded, so that receivers read the original's kind without a query
    return txn


@transaction.atomic
def transactions_post(*, postings: Sequence[Posting], locked: dict[int, BalanceHead] | None = None) -> list[PostResult]:
    """Post many balanced transactions in one database transaction, set-based; all or nothing.

    What transaction_post does for one, done for many with a fixed number of statements: one lock of
    every touched balance row (each account once, in id order), one INSERT of all transactions and
    entries, one UPDATE of all balance rows, whatever the number of postings. Entries are chained per
    account in the order of `postings`, and the checks count the postings before each one (two spends
    of one wallet in one call cannot both take its last points).

    Each posting keeps its own idempotency key: a key posted before with the same content comes back
    with created=False and writes nothing; with different content the whole call raises
    IdempotencyConflictError. Any refusal (InsufficientBalanceError, ReversalExceedsRemainingError,
    InvalidPostingError) refuses the whole call, writing nothing: a caller that wants some postings to
    go through decides which before calling. Keys are unique within one call.

    Locks: the originals of any reversals (in id order), then the balance rows of all touched accounts
    (in account-id order), held until the outermost atomic block ends (ledger.locks). A caller that
    locked the balance rows itself, in this transaction, passes what ledger.locks.balances_lock returned
    as `locked` (it must cover every account of the postings) and no lock is taken again; should those
    rows not really be locked, the balance UPDATE still refuses a head that moved (ledger.rollups).
    """
    prepared = [_prepare(posting) for posting in postings]
    if not prepared:
        return []
    keys = [item.key for item in prepared]
    if len(set(keys)) != len(keys):
        raise InvalidPostingError("Each posting of one call has its own idempotency key.")

    reversal_of = sorted({item.posting.reverses.pk for item in prepared if item.posting.reverses is not None})
    originals = locks.transactions_lock_for_reversal(transaction_ids=reversal_of) if reversal_of else {}
    touched = {leg.account.pk for item in prepared for leg in item.legs}
    balances = locked if locked is not None and touched <= locked.keys() else _balances_lock(touched)
    for item in prepared:
        _check_units(item.legs, balances)

    # First as if every key were new, which is what a caller posts nearly always: no look-up of the keys.
    # A refusal or a key found taken sends us round again, knowing which keys were posted before.
    try:
        results = _post(prepared, {}, balances, originals, locked=balances is locked)
    except (_KeysTaken, InsufficientBalanceError, ReversalExceedsRemainingError) as error:
        replays = _replays(prepared)
        if not replays:
            if isinstance(error, _KeysTaken):  # pragma: no cover - a taken key is visible to the look-up
                raise RuntimeError("ledger: a key was taken but no transaction with it is visible") from error
            raise
        # A retry of a posting that went through gets it back, not a refusal because the points it moved
        # have since moved on (or, for a reversal, because it used up what was left itself).
        results = _post(prepared, replays, balances, originals, locked=balances is locked)
    posted = [result for result in results if result.created]
    if posted:
        transactions_posted.send(sender=Transaction, posted=posted)
    return results


class _KeysTaken(Exception):
    """Some keys of the INSERT were taken already: nothing of it was kept (its savepoint rolled back)."""


def _replays(prepared: list[_Prepared]) -> dict[str, Transaction]:
    """The transactions already posted under these keys, by key; a key posted with other content is a
    conflict (IdempotencyConflictError)."""
    keys = [item.key for item in prepared]
    existing = {
        txn.idempotency_key: txn
        for txn in Transaction.objects.raw(
            f"SELECT * FROM {Transaction._meta.db_table} WHERE idempotency_key = ANY(%s)",  # noqa: S608
            [keys],
        )
    }
    for item in prepared:
        found = existing.get(item.key)
        if found is not None and found.content_hash != item.fingerprint:
            raise IdempotencyConflictError(idempotency_key=item.key, existing_id=found.pk)
    return existing


def _post(
    prepared: list[_Prepared],
    replays: dict[str, Transaction],
    balances: dict[int, BalanceHead],
    originals: dict[int, Transaction],
    *,
    locked: bool,
) -> list[PostResult]:
    """Check, chain and insert the postings whose keys are not in `replays`; the others come back as
    replays. Raises _KeysTaken (having written nothing) if a key turns out to be taken."""
    todo = [item for item in prepared if item.key not in replays]
    remaining = transactions_reversible_amounts(
        original_ids=[
            item.posting.reverses.pk
            for item in todo
            if item.posting.reverses is not None and item.posting.kind == REVERSAL_KIND
        ]
    )
    running = {head.account_id: head.balance for head in balances.values()}
    for item in todo:
        if item.posting.reverses is not None and item.posting.kind == REVERSAL_KIND:
            _check_within_remaining(remaining[item.posting.reverses.pk], item.legs)
        _check_funds(item.legs, running, balances)

    created_at = timezone.now()
    transactions = [_transaction_new(item, originals, created_at) for item in todo]
    entries = _entries_build(prepared=todo, created_at=created_at, balances=balances)
    if transactions:
        if len(transactions) == 1:
            # Its entries hang off its own transaction row: a taken key inserts nothing at all.
            if not _insert(transactions=transactions, entries=entries):
                raise _KeysTaken
        else:
            with transaction.atomic():  # a savepoint: a taken key undoes the rows inserted with it
                if len(_insert(transactions=transactions, entries=entries)) != len(transactions):
                    raise _KeysTaken
        balances_roll_up(entries=[entry for rows in entries for entry in rows])
        if locked:
            # The caller's rows describe the accounts as they were locked: move their heads on, so that a
            # second call in the same transaction chains onto this one.
            for rows in entries:
                for entry in rows:
                    head = balances[entry.account.pk]
                    head.balance += entry.amount
                    head.head_seq, head.head_hash = entry.seq, entry.hash
    made = {txn.idempotency_key: (txn, tuple(rows)) for txn, rows in zip(transactions, entries, strict=True)}
    return [
        PostResult(transaction=replays[item.key], created=False)
        if item.key in replays
        else PostResult(transaction=made[item.key][0], created=True, entries=made[item.key][1])
        for item in prepared
    ]


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
    posting = Posting(
        idempotency_key=idempotency_key, kind=kind, entries=entries, memo=memo, metadata=metadata, reverses=reverses
    )
    return transactions_post(postings=[posting])[0]


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
