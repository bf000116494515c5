"""Spending points: redeem a perk, cancel a redemption, consume a voucher at the till.

Every rule that protects points or stock is fenced in PostgreSQL, under the membership's row lock:
- the wallet cannot go below zero: the ledger refuses the posting (its balance-row lock and CHECK);
- stock cannot go below zero: it is taken under the perk row's lock, never more than the row holds,
  with a CHECK constraint behind it;
- per-member limits are counted while the membership row is locked, so two redemptions of one member
  cannot both take the last allowed slot.

Redemptions are made set-based (redemptions_make): a batch of requests is one database transaction of
a fixed number of statements, whatever its size. Lock the membership rows (found by id, or by email /
external id, in the same statement), read everything the rules need (claiming the API idempotency keys
in the same statement), lock the perks' rows, decide, lock the ledger's balance rows, post, insert the
redemptions (with the stock they took and the API answers, in the same statement).

The perk row and the brand's redemptions account are the same for every redemption of a brand: each
batch holds them for one commit, and the API batches the requests that arrive together in one process
(perks.batching) so that they share that commit instead of queueing one by one on those rows.
Concurrent requests of one member queue on the membership row; there is no Redis lock in front of it
(the row lock is the fence anyway).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from config import batching
from config.db import bulk_cursor
from config.errors import ApplicationError, error_body
from ledger import locks as ledger_locks
from ledger.errors import InsufficientBalanceError
from ledger.models import Account
from ledger.services import Leg, Posting, posting_key, transaction_reverse, transactions_post
from loyalty import locks as loyalty_locks
from loyalty.locks import LockedMembership, MemberRef
from loyalty.models import Brand, IdempotencyRecord, Member, Membership, NetworkWallet
from loyalty.services.accounts import brand_account
from loyalty.services.idempotency import IdempotencyConflictError, RequestInProgressError
from loyalty.services.members import membership_join
from loyalty.services.network import network_brand_account, network_spend_record, network_spend_undo
from perks import locks
from perks.models import Perk, Redemption, voucher_code_generate
from perks.selectors import (
    IdempotencyAnswer,
    PerkRow,
    RedeemQuery,
    RedeemRead,
    Taken,
    idempotency_answer_get,
    redeem_reads_get,
    redemption_refusal,
)

logger = logging.getLogger(__name__)

BIGINT_MAX = 2**63 - 1


class RedemptionRefusedError(ApplicationError):
    """422 with a reason: insufficient_points, out_of_stock, limit_reached, tier_required, not_available."""


class VoucherRefusedError(ApplicationError):
    """422 with a reason: voucher_unknown, voucher_used, voucher_cancelled."""


class RedeemNotFoundError(ApplicationError):
    """No such member or perk (in the brand): the API answers 404."""

    status_code = 404
    code = "not_found"


@dataclass(frozen=True)
class RedeemResult:
    redemption: Redemption
    created: bool
    balance: int


@dataclass(frozen=True)
class RedeemAnswer:
    """The API's answer to a redemption request, and whether it replays an earlier one."""

    status: int
    body: dict
    replayed: bool = False


@dataclass(frozen=True)
class RedeemRequest:
    member: MemberRef
    perk_id: int
    request_key: str  # unique per member: the same key finds the redemption it made
    brand_perks_only: bool = True  # the API: another brand's perk is no perk (404), not a refusal
    key: str | None = None  # the API's Idempotency-Key, whose record stores the answer
    fingerprint: str | None = None  # of the API request, to tell a retry from a conflict


Render = Callable[[Redemption, int], dict]
# Per request: the redemption (without `render`) or the API answer (with it), or the exception to raise:
# an ApplicationError that is not stored under the request's key (no such member or perk, a key in use or
# in conflict), or, when a request failed on its own, its error.
Outcome = RedeemResult | RedeemAnswer | Exception


def perk_redeem(*, membership: Membership, perk: Perk, request_key: str) -> RedeemResult:
    """Spend points on a perk. The same `request_key` (per member) returns the first redemption.

    Raises RedemptionRefusedError (or another ApplicationError) when the redemption cannot be made.
    """
    request = RedeemRequest(MemberRef(membership_id=membership.pk), perk.pk, request_key, brand_perks_only=False)
    [outcome] = redemptions_make(brand=membership.brand, requests=[request])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def perk_redeem_request(
    *,
    brand: Brand,
    member: MemberRef,
    perk_id: int,
    key: str | None,
    fingerprint: str | None,
    render: Render,
) -> RedeemAnswer:
    """A redemption asked for over the API, with Stripe's idempotency semantics when `key` is given:
    the answer (the redemption's, or the refusal's) is stored under the key in the redemption's own
    transaction, a retry with the same request replays it, with another request it is a 409
    `idempotency_conflict`, and a duplicate that arrives while the first is at work waits for it.

    Made together with whatever other redemptions of the brand this process has at hand (perks.batching).
    Raises RedeemNotFoundError for an unknown member or perk, and the idempotency errors; none of them
    is stored under the key.
    """
    if perk_id > BIGINT_MAX:  # no perk has such an id: it would not even fit the statement's parameters
        raise RedeemNotFoundError(message="No such perk.")
    request = RedeemRequest(
        member, perk_id, key or f"api:{uuid.uuid4().hex}", brand_perks_only=True, key=key, fingerprint=fingerprint
    )
    outcome = batching.submit(
        group=(brand.pk, render),
        item=request,
        key=key,
        run=lambda requests: redemptions_make(brand=brand, requests=requests, render=render),
    )
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def redemptions_make(*, brand: Brand, requests: Sequence[RedeemRequest], render: Render | None = None) -> list[Outcome]:
    """Make a batch of redemptions of one brand, each decided as if they came one after the other in
    this order, in one database transaction: a fixed number of statements whatever the batch's size.

    Returns an Outcome per request. With `render` (the API), a request's answer is rendered with it and,
    if it sent an idempotency key, stored under the key in the same transaction. One request per key.

    Should the batch turn out not to be decidable as one (the stock or a balance moved between the read
    and the locks, which the locked rows then reveal) or fail in the database, its requests are made
    again one by one, so that one request never decides another's outcome.
    """
    keys = [request.key for request in requests if request.key is not None]
    if len(set(keys)) != len(keys):
        raise ValueError("One request per idempotency key in a batch.")
    if len(requests) == 1:
        return _Batch(brand, requests, render).make()
    try:
        return _Batch(brand, requests, render).make()
    except (_Redo, DatabaseError) as reason:
        logger.info("redemption batch of %s made again one by one: %r", len(requests), reason)
    return [_make_one(brand, request, render) for request in requests]


def _make_one(brand: Brand, request: RedeemRequest, render: Render | None) -> Outcome:
    try:
        return _Batch(brand, [request], render).make()[0]
    except Exception as error:  # this request's own failure: the others of the batch go on
        return error


class _Redo(Exception):
    """The batch cannot be decided as one: make its requests one by one."""


# The new redemptions, the stock they took (of perk rows locked by _lock_stock), and the answers in
# the idempotency records the requests claimed, at once.
_WRITE_SQL = f"""
    WITH made AS (
        INSERT INTO {Redemption._meta.db_table}
               (id, brand_id, membership_id, perk_id, cost, status, code, request_key, ledger_transaction_id,
                refund_transaction_id, created_at, fulfilled_at, cancelled_at, note)
        SELECT v.id, %b::bigint, v.membership_id, v.perk_id, v.cost, %b::text, v.code, v.request_key, v.txn,
               NULL, %b::timestamptz, NULL, NULL, ''
          FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::bigint[])
               AS v(id, membership_id, perk_id, cost, code, request_key, txn)
    ), stock AS (
        UPDATE {Perk._meta.db_table} p
           SET stock = p.stock - t.n
          FROM unnest(%b::bigint[], %b::bigint[]) AS t(id, n)
         WHERE p.id = t.id AND p.stock IS NOT NULL
    )
    UPDATE {IdempotencyRecord._meta.db_table} AS rec
       SET state = %b::text, response_status = a.status, response_body = a.body::jsonb
      FROM unnest(%b::bigint[], %b::int[], %b::text[]) AS a(id, status, body)
     WHERE rec.id = a.id
"""  # noqa: S608 - only table names are formatted in


@dataclass(slots=True)
class _Item:
    """One request of a batch, on its way."""

    request: RedeemRequest
    member: LockedMembership | None = None
    wallet_id: int | None = None  # what it is paid from: the membership's wallet, or the person's network wallet
    network_id: int | None = None  # a network perk's network
    read: RedeemRead | None = None
    redemption: Redemption | None = None
    balance: int = 0  # the wallet's balance after it
    outcome: Outcome | None = None
    stored: tuple[int, dict] | None = None  # the (status, body) to store under the request's key


class _Batch:
    """redemptions_make for one transaction: decide in memory, then write set-based."""

    def __init__(self, brand: Brand, requests: Sequence[RedeemRequest], render: Render | None) -> None:
        self.brand = brand
        self.render = render
        self.items = [_Item(request) for request in requests]
        self.now = timezone.now()
        # perk id -> network id, for the batch's network perks (none unless the brand is in a network)
        self.network_perks: dict[int, int] = {}
        if brand.network_id is not None:
            self.network_perks = dict(
                Perk.objects.filter(
                    pk__in=[request.perk_id for request in requests], brand=brand, is_network_perk=True
                ).values_list("pk", "brand__network_id")
            )
        self.network_unit = brand.network.unit if self.network_perks else ""

    def make(self) -> list[Outcome]:
        if self.network_perks:
            _network_members_join(
                self.brand, [i.request for i in self.items if i.request.perk_id in self.network_perks]
            )
        with transaction.atomic():
            self._lock_members()
            live = [item for item in self.items if item.outcome is None]
            if live:
                self._read(live)
            accepted = self._decide(live) if live else []
            if accepted:
                self._post(accepted)
            self._write(accepted)
        return [item.outcome for item in self.items]

    # --- reading and deciding ---------------------------------------------------------------------

    def _lock_members(self) -> None:
        members = loyalty_locks.memberships_lock_rows_by_ref(
            brand_id=self.brand.pk, refs=[item.request.member for item in self.items]
        )
        for item, member in zip(self.items, members, strict=True):
            item.member = member
            if member is None:
                item.outcome = RedeemNotFoundError(message="No such member.")
            else:
                item.wallet_id = member.wallet_id
        network_items = [item for item in self.items if item.member and item.request.perk_id in self.network_perks]
        if network_items:
            wallets = dict(
                NetworkWallet.objects.filter(
                    network_id=self.brand.network_id, member_id__in={item.member.member_id for item in network_items}
                ).values_list("member_id", "account_id")
            )
            for item in network_items:
                item.network_id = self.brand.network_id
                item.wallet_id = wallets.get(item.member.member_id)  # None: no network points ever
        self.now = timezone.now()  # once the locks are held: the limits are counted for this moment

    def _read(self, live: list[_Item]) -> None:
        reads = redeem_reads_get(
            brand=self.brand,
            queries=[
                RedeemQuery(
                    membership_id=item.member.id,
                    tier_id=item.member.tier_id,
                    wallet_id=item.wallet_id,
                    perk_id=item.request.perk_id,
                    brand_perks_only=item.request.brand_perks_only,
                    request_key=item.request.request_key,
                    key=item.request.key,
                    fingerprint=item.request.fingerprint,
                )
                for item in live
            ],
            redemptions_account_code=f"brand:{self.brand.pk}:{Account.Kind.REDEMPTIONS}",  # brand_account's code
            now=self.now,
        )
        self.redemptions_account_id = reads.redemptions_account_id
        for item, read in zip(live, reads.requests, strict=True):
            item.read = read
        self._lock_stock(
            [
                item.read.perk
                for item in live
                if item.read.perk is not None
                and (item.request.key is None or item.read.claim_id is not None)
                and item.read.existing_id is None
            ]
        )

    def _decide(self, live: list[_Item]) -> list[_Item]:
        """The rules, request after request, each seeing what the ones before it took: balances (as read;
        the ledger's locks confirm them in _post), limits, and the stock (as locked)."""
        self.balances: dict[int | None, int] = {}
        taken: dict[tuple[int, int], Taken] = {}
        accepted, existing = [], []
        for item in live:
            read = item.read
            request, member, perk = item.request, item.member, read.perk
            if perk is None:
                item.outcome = RedeemNotFoundError(message="No such perk.")
                continue
            if request.key is not None and read.claim_id is None:
                item.outcome = _replay(self.brand, request, read.answer)
                continue
            balance = self.balances.setdefault(item.wallet_id, read.balance)
            if read.existing_id is not None:  # made by this request key before (its record expired, or the web)
                if read.existing_perk_id != request.perk_id:
                    conflict = IdempotencyConflictError(message="This request key was already used for another perk.")
                    self._refuse(item, conflict)
                else:
                    item.balance = balance
                    existing.append(item)
                continue
            slot = (member.id, perk.id)
            counts = taken.setdefault(slot, read.taken)
            refusal = redemption_refusal(
                perk=perk,
                minimum_tier=read.minimum_tier,
                member_status=member.status,
                member_tier_rank=read.member_tier_rank,
                brand_id=self.brand.pk,
                points_name=self.network_unit if item.network_id else self.brand.points_name,
                taken=lambda counts=counts: counts,
                balance=lambda balance=balance: balance,
                now=self.now,
            )
            if refusal is not None:
                self._refuse(item, RedemptionRefusedError(refusal.code, refusal.message, extra=refusal.extra))
                continue
            self.balances[item.wallet_id] = balance - perk.cost
            taken[slot] = Taken(counts.total + 1, counts.day + 1, counts.week + 1, counts.month + 1)
            if perk.stock is not None:
                perk.stock -= 1
            accepted.append(item)
        if existing:
            found = Redemption.objects.select_related("perk").in_bulk([item.read.existing_id for item in existing])
            for item in existing:
                self._done(item, found[item.read.existing_id], item.balance, created=False)
        return accepted

    def _refuse(self, item: _Item, error: ApplicationError) -> None:
        """A refusal is an answer like any other: stored under the key, replayed to a retry."""
        if self.render is None:
            item.outcome = error
            return
        body = error_body(error.code, error.message, error.fields, **error.extra)
        item.outcome = RedeemAnswer(error.status_code, body)
        item.stored = (error.status_code, body)

    def _done(self, item: _Item, redemption: Redemption, balance: int, *, created: bool) -> None:
        if self.render is None:
            item.outcome = RedeemResult(redemption, created, balance)
            return
        body = self.render(redemption, balance)
        item.outcome = RedeemAnswer(201, body)
        item.stored = (201, body)

    # --- writing ----------------------------------------------------------------------------------

    def _lock_stock(self, perks: list[PerkRow]) -> None:
        """Lock the rows of the batch's perks that have a stock (in id order: the perk rows come after
        the membership rows and before the ledger's), and decide on the stock they hold now. The
        stock taken is written with the redemptions, at the end (_write)."""
        limited = sorted({perk.id for perk in perks if perk.stock is not None})
        if not limited:
            return
        stock = locks.perks_lock_stock(limited)
        for perk in perks:
            if perk.id in stock:
                perk.stock = stock[perk.id]  # None if it was made unlimited meanwhile

    def _post(self, accepted: list[_Item]) -> None:
        """Lock the balance rows (the wallets and the brand's redemptions account, in id order), check
        each wallet under its lock, then post every redemption in one call of the ledger."""
        if not accepted:
            return
        account_id = network_account_id = None
        if any(item.network_id is None for item in accepted):
            account_id = self.redemptions_account_id
            if account_id is None:  # the brand's first redemption ever
                account_id = brand_account(brand=self.brand, kind=Account.Kind.REDEMPTIONS).pk
        if any(item.network_id is not None for item in accepted):
            network_account_id = network_brand_account(
                network_id=self.brand.network_id, brand=self.brand, kind=Account.Kind.REDEMPTIONS
            ).pk
        wallets = {item.wallet_id for item in accepted}
        accounts = [account for account in (account_id, network_account_id) if account is not None]
        heads = ledger_locks.balances_lock(account_ids=[*wallets, *accounts])
        held = {wallet: heads[wallet].balance if wallet in heads else 0 for wallet in wallets}
        for item in list(accepted):
            cost = item.read.perk.cost
            if held[item.wallet_id] < cost:  # the plain read was out of date: the locked row decides
                self._refuse_insufficient(item, accepted, cost - held[item.wallet_id])
                continue
            held[item.wallet_id] -= cost
            item.balance = held[item.wallet_id]
        if not accepted:
            return
        # An account made without its balance row has none to lock yet: the ledger then locks (and
        # creates) the rows itself, ours again included, which PostgreSQL grants at once.
        to = {account: heads.get(account) or Account.objects.get(pk=account) for account in accounts}
        postings = [
            Posting(
                idempotency_key=posting_key(f"redeem:{item.member.id}", item.request.request_key),
                kind="redeem",
                entries=[
                    Leg(heads[item.wallet_id], -item.read.perk.cost),
                    Leg(to[network_account_id if item.network_id else account_id], item.read.perk.cost),
                ],
                memo=item.read.perk.name,
                metadata=_redeem_metadata(item.read.perk),
            )
            for item in accepted
        ]
        try:
            posted = transactions_post(postings=postings, locked=heads)
        except InsufficientBalanceError as error:  # the ledger's own fence, should a balance have moved
            if len(self.items) > 1:
                raise _Redo("a balance moved under the lock") from error
            self._refuse_insufficient(accepted[0], accepted, error.extra.get("missing"))
            return
        for item, result in zip(accepted, posted, strict=True):
            item.redemption = _redemption_new(self.brand, item, result.transaction, self.now)
            if item.network_id is not None and result.created:
                network_spend_record(
                    network_id=item.network_id,
                    member_id=item.member.member_id,
                    honoring_id=self.brand.pk,
                    points=item.read.perk.cost,
                    transaction_id=result.transaction.pk,
                    now=self.now,
                )
            self._done(item, item.redemption, item.balance, created=True)

    def _refuse_insufficient(self, item: _Item, accepted: list[_Item], missing: int | None) -> None:
        if len(self.items) > 1:  # what the requests after it were decided on is wrong too
            raise _Redo("a balance moved between the read and the lock")
        accepted.remove(item)
        self._refuse(item, _insufficient(missing))

    def _write(self, accepted: list[_Item]) -> None:
        answers = [item for item in self.items if item.stored is not None and item.read.claim_id is not None]
        if not accepted and not answers:
            return
        made = [item.redemption for item in accepted]
        taken = Counter(item.read.perk.id for item in accepted if item.read.perk.stock is not None)
        with bulk_cursor() as cursor:
            cursor.execute(
                _WRITE_SQL,
                [
                    self.brand.pk,
                    Redemption.Status.ISSUED.value,
                    self.now,
                    [redemption.pk for redemption in made],
                    [redemption.membership_id for redemption in made],
                    [redemption.perk_id for redemption in made],
                    [redemption.cost for redemption in made],
                    [redemption.code for redemption in made],
                    [redemption.request_key for redemption in made],
                    [redemption.ledger_transaction_id for redemption in made],
                    list(taken),
                    list(taken.values()),
                    IdempotencyRecord.State.DONE.value,
                    [item.read.claim_id for item in answers],
                    [item.stored[0] for item in answers],
                    [json.dumps(item.stored[1], cls=DjangoJSONEncoder) for item in answers],
                ],
                prepare=True,
            )


def _redeem_metadata(perk: PerkRow) -> dict:
    metadata = {"perk_id": perk.id, "perk": perk.name}
    if perk.cash_value and not perk.is_network_perk:
        metadata["value"] = str(perk.cash_value)  # loyalty.signals.memberships_roll_up adds it up
    return metadata


def _network_members_join(brand: Brand, requests: list[RedeemRequest]) -> None:
    """A network perk may be redeemed by anyone who holds the network's points: named by email, such a
    person joins the honoring brand's club on their first redemption there."""
    emails = {request.member.email.lower() for request in requests if request.member.email}
    if not emails:
        return
    holders = Member.objects.filter(email__in=emails, network_wallets__network_id=brand.network_id).exclude(
        memberships__brand=brand
    )
    for member in holders:
        membership_join(member=member, brand=brand)


def _insufficient(missing) -> RedemptionRefusedError:
    return RedemptionRefusedError("insufficient_points", f"{missing} more points needed.", extra={"missing": missing})


_PERK_FIELDS = list(PerkRow.__slots__)


def _redemption_new(brand: Brand, item: _Item, posted, now) -> Redemption:
    """The Redemption as it is about to be inserted (with the id the read reserved), its perk loaded with
    the fields that were read (the others load on access)."""
    perk = item.read.perk
    redemption = Redemption(
        id=item.read.next_id,
        brand_id=brand.pk,
        membership_id=item.member.id,
        perk_id=perk.id,
        cost=perk.cost,
        status=Redemption.Status.ISSUED,
        code=voucher_code_generate(),
        request_key=item.request.request_key,
        ledger_transaction=posted,
        created_at=now,
    )
    redemption._state.adding = False
    redemption._state.db = connection.alias
    redemption.perk = Perk.from_db(connection.alias, _PERK_FIELDS, [getattr(perk, name) for name in _PERK_FIELDS])
    return redemption


def _replay(brand: Brand, request: RedeemRequest, answer: IdempotencyAnswer | None) -> Outcome:
    """Another request holds this key: its answer, a conflict, or (still being worked on) in progress."""
    if answer is None:  # it committed while our statement ran: visible to a new one
        answer = idempotency_answer_get(brand_id=brand.pk, key=request.key)
    if answer is not None and answer.request_hash != request.fingerprint:
        return IdempotencyConflictError(
            message="This idempotency key was already used with a different request.",
            extra={"idempotency_key": request.key},
        )
    if answer is None or answer.state != IdempotencyRecord.State.DONE:
        return RequestInProgressError(message="A request with this idempotency key is still being processed.")
    return RedeemAnswer(answer.status, answer.body, replayed=True)


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
        if redemption.perk.is_network_perk and refund.created:
            network_spend_undo(
                original_transaction_id=redemption.ledger_transaction_id,
                reversal_transaction_id=refund.transaction.pk,
                now=timezone.now(),
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


def perk_stock_check(*, perk: Perk, seen: int | None, wanted: int | None) -> None:
    """Refuse a stock change from `seen` to `wanted` that fewer items than it removes could pay for, and
    lock the perk row until the end of the caller's transaction, so that perk_stock_set, later in that
    transaction, applies it without failing: the portal validates, then saves every field, or none.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("perk_stock_check must run inside the transaction that will apply the change.")
    current = locks.perks_lock_stock([perk.pk])[perk.pk]
    if seen is None or wanted is None or wanted >= seen:
        return
    if current is None or current < seen - wanted:
        raise ApplicationError("stock_changed", "Fewer are left than you remove: reload and try again.")


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
