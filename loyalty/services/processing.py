"""Processing accepted events in batches (DESIGN: the ingest pipeline, steps 2 to 5).

One brand at a time, oldest event first (loyalty.locks.brand_processing_lock), a batch is:
  1. claim: the brand's oldest `limit` pending events (the partial index on pending events);
  2. resolve the members they name, creating members, memberships and wallets in bulk;
  3. in one database transaction: lock the memberships (id order), the events and the purchases that
     refunds point at, and the balance rows (account-id order, ledger.locks); load what the rules need
     (the program, tiers, qualifying buckets, award counters); decide every outcome in memory, in event
     order (loyalty.engine); write it set-based: all ledger transactions and entries (one statement),
     each balance row once, the events, purchases, buckets, counters and tiers (a statement each);
  4. after the commit: wake the requests waiting for these events, send `events_processed`.

Safe to run twice, and to be killed anywhere: an event is only processed while pending, under its row
lock, and its ledger posting is keyed by the event (`event:<id>`), so a retried or overlapping batch
never credits twice. The brand lock only keeps event order; the row locks and keys keep correctness.
A batch never holds a purchase together with a refund of it (it stops before the refund): the refund
reverses the purchase's ledger transaction, which must exist first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from config.db import bulk_cursor
from ledger.models import Account, Transaction
from ledger.services import AccountSpec, Leg, Posting, accounts_get_or_create, transactions_post
from loyalty import engine, locks, notify
from loyalty.models import (
    AwardCounter,
    Brand,
    DailyEvents,
    EarnRule,
    Event,
    Membership,
    PendingLot,
    QualifyingBucket,
    Streak,
    Tier,
    TierChange,
)
from loyalty.services.accounts import brand_account, brand_unit, pending_code, wallet_code
from loyalty.services.members import MEMBER_MISMATCH, MembershipRaceError, memberships_resolve
from loyalty.services.network import (
    network_brand_account,
    network_lots_add,
    network_lots_take,
    network_wallets_ensure,
    settlement_month,
)
from loyalty.signals import events_processed

logger = logging.getLogger(__name__)

# A brand's drain hands its worker back after this long, and queues itself to go on: one busy brand
# never keeps the workers from the others for long.
DRAIN_BUDGET_SECONDS = 20.0
# When events trickle in (a batch came out small but more are arriving), wait this long before the next
# claim: a batch has a fixed cost (a dozen statements), and 20 batches of 50 cost less than 1,000 of 1.
# It is also the most it adds to an event's time to its outcome.
LINGER_SECONDS = 0.1
# Errors that pass (a lock that is busy, a connection that dropped, a race to create a member): the task
# retries them. Any other error fails the batch because of one of its events, which is then looked for.
TRANSIENT_ERRORS = (locks.LockUnavailableError, OperationalError, MembershipRaceError)


@dataclass(frozen=True)
class _Claimed:
    id: int
    type: str
    membership_id: int | None
    email: str
    external_id: str
    refund_of_id: int | None


def brand_events_drain(
    *, brand_id: int, batch_size: int | None = None, budget_seconds: float | None = DRAIN_BUDGET_SECONDS
) -> int:
    """Process the brand's pending events, batch after batch, until none are left (or `budget_seconds`
    are spent: then it queues itself again; None: no budget). Returns how many events it processed.

    Does nothing when another worker is draining the brand: that one looks at the wake flag after every
    batch, and once more after it let go of the brand, so an event accepted meanwhile is not left behind.
    """
    batch_size = batch_size or settings.INGEST_BATCH_SIZE
    total = 0
    started = time.monotonic()
    while True:
        with locks.brand_processing_lock(brand_id) as held:
            if not held:
                return total
            while True:
                notify.wake_flag_take(brand_id)
                try:
                    processed, more = events_process_batch(brand_id=brand_id, limit=batch_size)
                except TRANSIENT_ERRORS:
                    raise
                except Exception:
                    logger.exception("a batch of brand %s failed: processing its events one at a time", brand_id)
                    processed, blocked = _events_process_singly(brand_id=brand_id, limit=batch_size)
                    total += processed
                    if blocked:  # the brand's oldest event fails: later ones wait behind it (order)
                        return total
                    continue
                total += processed
                if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                    from loyalty.tasks import events_process_task

                    events_process_task.delay(brand_id)
                    return total
                if not more:
                    if not notify.wake_flag_set(brand_id):
                        break
                    if processed < batch_size // 10:
                        time.sleep(LINGER_SECONDS)
        # Let go of the brand, then look once more: an accept that came after our last look and found
        # our lock taken (its task gave up) left the flag for us.
        if not notify.wake_flag_set(brand_id):
            return total


def _claim(brand_id: int, limit: int) -> tuple[list[_Claimed], bool]:
    """The brand's oldest pending events, at most `limit`, and whether more may be pending behind them."""
    rows = (
        Event.objects.filter(brand_id=brand_id, status=Event.Status.PENDING)
        .order_by("id")
        .values_list("id", "type", "membership_id", "member_email", "member_external_id", "refund_of_id")[:limit]
    )
    claimed = [_Claimed(*row) for row in rows]
    # Stop before the first refund of a purchase in the same batch: it reverses the purchase's posting.
    ids = set()
    for index, event in enumerate(claimed):
        if event.refund_of_id in ids:
            return claimed[:index], True
        ids.add(event.id)
    return claimed, len(claimed) == limit


def events_process_batch(*, brand_id: int, limit: int) -> tuple[int, bool]:
    """Process up to `limit` of the brand's oldest pending events in one database transaction.
    Returns how many it took (0: none were pending) and whether more may be pending (the batch was full,
    or stopped before a refund of a purchase in it)."""
    claimed, more = _claim(brand_id, limit)
    if not claimed:
        return 0, False
    brand = Brand.objects.get(pk=brand_id)
    refs = [(event.email, event.external_id) for event in claimed if event.membership_id is None]
    resolved = memberships_resolve(brand=brand, refs=refs) if refs else {}
    membership_of = {event.id: event.membership_id or resolved[(event.email, event.external_id)] for event in claimed}
    with transaction.atomic():
        processed = _process_locked(brand, claimed, membership_of)
    if processed:
        notify.events_done([event if isinstance(event, int) else event.pk for event in processed])
        if events_processed.has_listeners(Event) and not isinstance(processed[0], int):
            events_processed.send(sender=Event, events=processed)
    return len(claimed), more


def _process_locked(
    brand: Brand, claimed: list[_Claimed], membership_of: dict[int, int | str]
) -> list[Event] | list[int]:
    """Process the claimed events under their locks. Returns them as Event rows when `events_processed`
    has receivers (who get them after the commit), else only their ids."""
    membership_ids = sorted({value for value in membership_of.values() if isinstance(value, int)})
    memberships = locks.memberships_lock_rows(membership_ids)
    wallets = wallets_ensure(brand, memberships)

    rows = locks.events_read([event.id for event in claimed])
    events = [rows[event.id] for event in claimed if event.id in rows and rows[event.id].status == "pending"]
    if not events:
        return []
    purchase_ids = {event.refund_of_id for event in events if event.refund_of_id is not None}
    purchases = locks.events_lock_rows(purchase_ids) if purchase_ids else {}

    program, issuance = program_load(brand), _issuance_get(brand)
    pending_wallets = _pending_wallets_ensure(brand, program, memberships, events, purchases, membership_of)
    network = _network_accounts(brand, program, memberships, events, purchases, membership_of)
    heads = locks.balances_lock(
        [*wallets.values(), *pending_wallets.values(), *network.wallets.values(), issuance.pk, *network.issuance]
    )
    now = timezone.now()
    balances = {membership_id: heads[account_id].balance for membership_id, account_id in wallets.items()}
    members = member_states_load(program=program, memberships=memberships, balances=balances, events=events, now=now)
    for membership_id, account_id in network.wallets.items():
        members[membership_id].network_balance = heads[account_id].balance
    purchase_states, originals, releases = purchases_load(program=program, purchases=purchases)

    decision = engine.decide(
        program=program,
        events=[
            engine.EventIn(
                id=event.id,
                type=event.type,
                membership_id=membership_of[event.id] if isinstance(membership_of[event.id], int) else None,
                occurred_at=event.occurred_at,
                amount=event.amount,
                currency=event.currency,
                refund_of_id=event.refund_of_id,
                rejection=membership_of[event.id] if membership_of[event.id] == MEMBER_MISMATCH else None,
            )
            for event in events
        ],
        members=members,
        purchases=purchase_states,
        now=now,
    )
    by_id = {event.id: event for event in events}
    accounts = _Accounts(
        wallets,
        pending_wallets,
        heads,
        heads[issuance.pk],
        network.wallets,
        heads[network.issuance[0]] if network.issuance else None,
    )
    postings = _postings(decision, by_id, purchases, accounts, originals, releases)
    posted = transactions_post(postings=postings, locked=heads) if postings else []
    transaction_of = {result.transaction.idempotency_key: result.transaction.pk for result in posted}

    _events_write(decision.outcomes, transaction_of, now, now.astimezone(brand.zone).date())
    if network.network_id is not None:
        _network_lots_write(brand, network, decision.outcomes, now)
    _purchases_write(decision.purchases.values())
    _buckets_write(decision.buckets)
    _counters_write(decision.counts)
    pending_lots_add(brand_id=brand.pk, changes=decision.pending)
    _streaks_write(decision.streaks)
    tier_moves_write(program=program, brand_id=brand.pk, moves=decision.tier_moves, now=now)
    if not events_processed.has_listeners(Event):
        return [outcome.event_id for outcome in decision.outcomes]
    return list(Event.objects.filter(pk__any=by_id).order_by("pk"))


# --- loading ---------------------------------------------------------------------------------------


# A brand's issuance account never changes (accounts keep their code and unit, and are never deleted):
# a process finds it once, not in every batch. The program itself (rules, tiers) is read by every batch,
# so that an edit in the partner portal applies to the next batch.
_issuance_accounts: dict[int, Account] = {}


def _issuance_get(brand: Brand) -> Account:
    account = _issuance_accounts.get(brand.pk)
    if account is None:
        account = brand_account(brand=brand, kind=Account.Kind.ISSUANCE)
        # Remembered once committed: the batch that created the account may yet roll back, and a
        # remembered account that does not exist would fail every later batch of this process.
        transaction.on_commit(lambda: _issuance_accounts.setdefault(brand.pk, account))
    return account


def program_load(brand: Brand) -> engine.Program:
    """The brand's program with its earn rules, as they are now."""
    rules = {
        rule.event_type: engine.RuleSpec(
            event_type=rule.event_type,
            enabled=rule.enabled,
            points_per_unit=rule.points_per_unit,
            currency=rule.currency,
            minimum_amount=rule.minimum_amount,
            points=rule.points,
            cap_per_day=rule.cap_per_day,
            cap_per_week=rule.cap_per_week,
            cap_per_month=rule.cap_per_month,
            active_from=rule.active_from,
            active_until=rule.active_until,
            pending_days=rule.pending_days,
            streak_length=rule.streak_length,
            streak_period=rule.streak_period,
            streak_bonus=rule.streak_bonus,
            # A brand that left its network earns no network points, whatever its rule still says.
            network_points_per_unit=rule.network_points_per_unit if brand.network_id else None,
        )
        for rule in EarnRule.objects.filter(brand=brand)
    }
    return program_of(brand, rules)


def program_of(brand: Brand, rules: dict[str, engine.RuleSpec] | None = None) -> engine.Program:
    """The brand's program as the engine sees it (without its rules unless given: the lifecycle job
    needs only the tiers and the calendar)."""
    tiers = tuple(
        engine.TierSpec(tier.pk, tier.name, tier.rank, tier.threshold, tier.multiplier, tier.points_never_expire)
        for tier in Tier.objects.filter(brand=brand).order_by("rank")
    )
    return engine.Program(
        zone=brand.zone,
        tier_window_months=brand.tier_window_months,
        rules=rules or {},
        tiers=tiers,
        expire_months=brand.points_expire_months,
        expire_from=brand.points_expire_from,
        tier_window=brand.tier_window,
        tier_downgrade=brand.tier_downgrade,
    )


def wallets_ensure(brand: Brand, memberships: dict[int, locks.LockedMembership]) -> dict[int, int]:
    """membership id -> wallet account id, creating the wallets that do not exist yet (in bulk). The
    memberships are locked (their rows are updated). Also the member import's."""
    missing = [membership for membership in memberships.values() if membership.wallet_id is None]
    if missing:
        codes = accounts_get_or_create(
            specs=[
                AccountSpec(code=wallet_code(brand.pk, membership.id), kind=Account.Kind.WALLET, unit=brand_unit(brand))
                for membership in missing
            ]
        )
        for membership in missing:
            membership.wallet_id = codes[wallet_code(brand.pk, membership.id)]
        _execute(
            f"""
            UPDATE {Membership._meta.db_table} AS m SET wallet_id = v.wallet_id
              FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, wallet_id)
             WHERE m.id = v.id AND m.wallet_id IS NULL
            """,  # noqa: S608 - only the table name is formatted in
            [[membership.id for membership in missing], [membership.wallet_id for membership in missing]],
        )
    return {membership.id: membership.wallet_id for membership in memberships.values()}


def _pending_wallets_ensure(brand, program, memberships, events, purchases, membership_of) -> dict[int, int]:
    """membership id -> pending account id, for the memberships that may earn pending points in this batch
    (purchases under a return window) or get refunds of pending points; created in bulk when missing."""
    rule = program.rules.get(engine.PURCHASE)
    wanted = set()
    for event in events:
        membership_id = membership_of[event.id]
        if not isinstance(membership_id, int):
            continue
        earns_pending = event.type == engine.PURCHASE and rule is not None and rule.pending_days
        refunds_pending = event.refund_of_id in purchases and purchases[event.refund_of_id].pending_until is not None
        if earns_pending or refunds_pending:
            wanted.add(membership_id)
    found = {m: memberships[m].pending_wallet_id for m in wanted if memberships[m].pending_wallet_id is not None}
    missing = sorted(wanted - found.keys())
    if missing:
        codes = accounts_get_or_create(
            specs=[
                AccountSpec(code=pending_code(brand.pk, m), kind=Account.Kind.PENDING, unit=brand_unit(brand))
                for m in missing
            ]
        )
        for m in missing:
            found[m] = memberships[m].pending_wallet_id = codes[pending_code(brand.pk, m)]
        _execute(
            f"""
            UPDATE {Membership._meta.db_table} AS m SET pending_wallet_id = v.account_id
              FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, account_id)
             WHERE m.id = v.id AND m.pending_wallet_id IS NULL
            """,  # noqa: S608 - only the table name is formatted in
            [missing, [found[m] for m in missing]],
        )
    return found


@dataclass(frozen=True)
class _Network:
    wallets: dict[int, int]  # membership id -> the person's network wallet account id
    issuance: tuple[int, ...]  # the brand's network issuance account id, if it earns network points
    members: dict[int, int] = dataclasses.field(default_factory=dict)  # membership id -> member id
    network_id: int | None = None


def _network_accounts(brand, program, memberships, events, purchases, membership_of) -> _Network:
    """The network accounts of a batch of a network brand: the person's network wallet for every
    membership with a purchase (or a refund of one that earned network points), created where missing,
    and the brand's network issuance account."""
    rule = program.rules.get(engine.PURCHASE)
    if brand.network_id is None:
        return _Network({}, ())
    wanted = set()
    for event in events:
        membership_id = membership_of[event.id]
        if not isinstance(membership_id, int):
            continue
        earns = event.type == engine.PURCHASE and rule is not None and rule.network_points_per_unit
        refunds = event.refund_of_id in purchases and purchases[event.refund_of_id].network_points > 0
        if earns or refunds:
            wanted.add(membership_id)
    if not wanted:
        return _Network({}, ())
    members = {membership_id: memberships[membership_id].member_id for membership_id in wanted}  # locked rows
    by_member = network_wallets_ensure(network=brand.network_id, member_ids=members.values())
    issuance = network_brand_account(network_id=brand.network_id, brand=brand, kind=Account.Kind.ISSUANCE)
    return _Network({m: by_member[member] for m, member in members.items()}, (issuance.pk,), members, brand.network_id)


def _originals(purchases: dict[int, locks.EventRow]) -> dict[int | str, Transaction]:
    """The earn transactions of the purchases that refunds undo: by id, and their network earns by key."""
    ids = {purchase.ledger_transaction_id for purchase in purchases.values() if purchase.ledger_transaction_id}
    found: dict[int | str, Transaction] = Transaction.objects.in_bulk(ids) if ids else {}
    network_keys = [f"event:{p.id}:network" for p in purchases.values() if p.network_points > 0]
    if network_keys:
        found.update(Transaction.objects.in_bulk(network_keys, field_name="idempotency_key"))
    return found


def _releases(purchases: dict[int, locks.EventRow]) -> dict[tuple[int, dt.date], Transaction]:
    """The release transactions of the pending lots of these purchases that were released, by
    (membership id, release day)."""
    keys = {(p.membership_id, p.pending_until) for p in purchases.values() if p.pending_until is not None}
    if not keys:
        return {}
    lots = PendingLot.objects.filter(
        membership_id__in={key[0] for key in keys},
        release_on__in={key[1] for key in keys},
        released_transaction__isnull=False,
    ).values_list("membership_id", "release_on", "released_transaction_id")
    found = {(m, day): txn for m, day, txn in lots if (m, day) in keys}
    transactions = Transaction.objects.in_bulk(set(found.values()))
    return {key: transactions[txn] for key, txn in found.items()}


def member_states_load(
    *,
    program: engine.Program,
    memberships: Mapping[int, locks.LockedMembership | Membership],
    balances: Mapping[int, int],
    events: Iterable[engine.EventIn | locks.EventRow],
    now: dt.datetime,
) -> dict[int, engine.MemberState]:
    """What the rules need of these memberships for these events: their wallet `balances` (as the caller
    read them) and, read here, the qualifying buckets of the tier window, the award counters of the capped
    types from the first day a cap of the events looks at, and the runs of the streak types. Locks nothing:
    the processor holds the rows' locks already, a dry run (loyalty.services.dry_run) takes none."""
    members = {
        membership.id: engine.MemberState(
            membership_id=membership.id,
            active=membership.status == Membership.Status.ACTIVE,
            tier_id=membership.tier_id,
            balance=balances[membership.id],
        )
        for membership in memberships.values()
    }
    if program.tiers:
        first = program.window(now)[0]
        for membership_id, month, points in QualifyingBucket.objects.filter(
            membership_id__any=members, month__gte=first
        ).values_list("membership_id", "month", "points"):
            members[membership_id].buckets[month] = points
    # Award counters, for the capped types only, from the first day any cap of the batch looks at.
    since: dict[str, dt.date] = {}
    for event in events:
        rule = program.rules.get(event.type)
        if rule is not None and rule.caps and program.counts_awards(event.type):
            start = engine.cap_window_start(program, event.type, event.occurred_at)
            since[event.type] = min(since.get(event.type, start), start)
    if since:
        rows = AwardCounter.objects.filter(
            membership_id__any=members, event_type__in=since, day__gte=min(since.values())
        ).values_list("membership_id", "event_type", "day", "awarded")
        for membership_id, event_type, day, awarded in rows:
            members[membership_id].counts[(event_type, day)] = awarded
    streak_types = {event.type for event in events if getattr(program.rules.get(event.type), "streak_length", None)}
    if streak_types:
        rows = Streak.objects.filter(membership_id__any=members, event_type__in=streak_types).values_list(
            "membership_id", "event_type", "last_period", "length", "bonus_paid"
        )
        for membership_id, event_type, last_period, length, paid in rows:
            members[membership_id].streaks[event_type] = engine.StreakState(last_period, length, paid)
    return members


def purchases_load(
    *, program: engine.Program, purchases: Mapping[int, locks.EventRow]
) -> tuple[dict[int, engine.PurchaseState], dict[int | str, Transaction], dict[tuple[int, dt.date], Transaction]]:
    """The engine's state of the purchases that refunds undo (processed ones), and the transactions it was
    read from, which the refunds' postings reverse: their earns (by id, network earns by key) and the
    releases of their pending lots (by membership id and release day)."""
    originals, releases = _originals(purchases), _releases(purchases)
    states = {pk: _purchase_state(program, purchase, originals, releases) for pk, purchase in purchases.items()}
    return states, originals, releases


def _purchase_state(
    program: engine.Program,
    purchase: locks.EventRow,
    originals: dict[int, Transaction],
    releases: dict[tuple[int, dt.date], Transaction],
) -> engine.PurchaseState:
    released = None
    if purchase.pending_until is not None:
        released = releases.get((purchase.membership_id, purchase.pending_until))
        lot = lot_of(released, program.zone) if released is not None else None
    else:
        original = originals.get(purchase.ledger_transaction_id)
        lot = lot_of(original, program.zone) if original is not None else None
    return engine.PurchaseState(
        event_id=purchase.id,
        membership_id=purchase.membership_id,
        status=purchase.status,
        amount=purchase.amount,
        currency=purchase.currency,
        points=purchase.points,
        refunded_amount=purchase.refunded_amount,
        refunded_points=purchase.refunded_points,
        occurred_at=purchase.occurred_at,
        lot=lot,
        pending_until=purchase.pending_until,
        released=released is not None,
        network_points=purchase.network_points,
        refunded_network_points=purchase.refunded_network_points,
    )


def lot_of(txn: Transaction, zone) -> dt.date:
    """The month the wallet credit of `txn` expires with: its recorded lot, else the month it was posted."""
    lot = txn.metadata.get("lot")
    return dt.date.fromisoformat(lot) if lot else txn.created_at.astimezone(zone).date().replace(day=1)


# --- writing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accounts:
    """The locked balance rows a batch posts to."""

    wallets: dict[int, int]  # membership id -> wallet account id
    pending: dict[int, int]  # membership id -> pending account id
    heads: dict[int, locks.BalanceHead]
    issuance: locks.BalanceHead
    network_wallets: dict[int, int]  # membership id -> network wallet account id
    network_issuance: locks.BalanceHead | None

    def wallet(self, membership_id: int) -> locks.BalanceHead:
        return self.heads[self.wallets[membership_id]]

    def pending_of(self, membership_id: int) -> locks.BalanceHead:
        return self.heads[self.pending[membership_id]]


def _network_postings(outcome, event, purchases, accounts: _Accounts, originals) -> list[Posting]:
    """A network brand's purchase: its network points, issued by the brand to the person's network wallet
    (key `event:<id>:network`); a refund: the reversal of that part of the purchase's."""
    if outcome.network_points == 0:
        return []
    wallet = accounts.heads[accounts.network_wallets[outcome.membership_id]]
    if outcome.network_points > 0:
        return [
            Posting(
                idempotency_key=f"event:{event.id}:network",
                kind="earn",
                entries=[Leg(accounts.network_issuance, -outcome.network_points), Leg(wallet, outcome.network_points)],
                memo=f"{event.type} {event.order_id}".strip(),
                metadata={"event_id": event.id, "event_type": event.type, "order_id": event.order_id},
            )
        ]
    purchase = purchases[event.refund_of_id]
    taken = -outcome.network_points
    return [
        Posting(
            idempotency_key=f"event:{event.id}:network",
            kind="reversal",
            entries=[Leg(wallet, -taken), Leg(accounts.network_issuance, taken)],
            memo=f"refund {purchase.order_id}",
            metadata={
                "event_id": event.id,
                "event_type": Event.REFUND,
                "order_id": purchase.order_id,
                "ledger_reversal": {"mode": "amounts"},
            },
            reverses=originals[f"event:{purchase.id}:network"],
        )
    ]


def _postings(decision, by_id, purchases, accounts: _Accounts, originals, releases) -> list[Posting]:
    postings = []
    for outcome in decision.outcomes:
        if outcome.status != engine.AWARDED:
            continue
        postings += _network_postings(outcome, by_id[outcome.event_id], purchases, accounts, originals)
        if outcome.points == 0:
            continue
        event = by_id[outcome.event_id]
        if outcome.points > 0:
            metadata = {"event_id": event.id, "event_type": event.type, "order_id": event.order_id}
            if outcome.pending_until is not None:
                to = accounts.pending_of(outcome.membership_id)
                metadata["pending_until"] = outcome.pending_until.isoformat()
            else:
                to = accounts.wallet(outcome.membership_id)
                metadata["lot"] = outcome.lot.isoformat()
            if outcome.streak_bonus:
                metadata["streak_bonus"] = outcome.streak_bonus
            postings.append(
                Posting(
                    idempotency_key=f"event:{event.id}",
                    kind="earn",
                    entries=[Leg(accounts.issuance, -outcome.points), Leg(to, outcome.points)],
                    memo=f"{event.type} {event.order_id}".strip(),
                    metadata=metadata,
                )
            )
            continue
        purchase = purchases[outcome.refund_of_id]
        taken = -outcome.points
        metadata = {
            "event_id": event.id,
            "event_type": Event.REFUND,
            "order_id": purchase.order_id,
            "ledger_reversal": {"mode": "amounts"},
        }
        if outcome.source == "wallet":
            source = accounts.wallet(outcome.membership_id)
        else:
            source = accounts.pending_of(outcome.membership_id)
        if outcome.source == "released":
            # The points left the pending account for the wallet: undo that part of the release first, then
            # the earn, so that the refund reverses the purchase's own transaction as every refund does.
            postings.append(
                Posting(
                    idempotency_key=f"event:{event.id}:release",
                    kind="reversal",
                    entries=[Leg(accounts.wallet(outcome.membership_id), -taken), Leg(source, taken)],
                    memo=f"refund {purchase.order_id}",
                    metadata=metadata,
                    reverses=releases[(purchase.membership_id, purchase.pending_until)],
                )
            )
        postings.append(
            Posting(
                idempotency_key=f"event:{event.id}",
                kind="reversal",
                entries=[Leg(source, -taken), Leg(accounts.issuance, taken)],
                memo=f"refund {purchase.order_id}",
                metadata=metadata,
                reverses=originals[purchase.ledger_transaction_id],
            )
        )
    return postings


def _network_lots_write(brand: Brand, network: _Network, outcomes: list[engine.Outcome], now: dt.datetime) -> None:
    """Keep the network lots with the network wallets: earns add to the brand's lot of this month, refunds
    take back (loyalty.services.network)."""
    month = settlement_month(now)
    earned = [
        (network.members[o.membership_id], brand.pk, month, o.network_points) for o in outcomes if o.network_points > 0
    ]
    network_lots_add(network_id=network.network_id, rows=earned)
    for outcome in outcomes:
        if outcome.network_points < 0:
            network_lots_take(
                network_id=network.network_id,
                member_id=network.members[outcome.membership_id],
                points=-outcome.network_points,
                issuer_id=brand.pk,
            )


def _execute(sql: str, params: list) -> int:
    with bulk_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# The events' outcomes, and the day's counts of them (the economics dashboard's events by type and
# outcome, and the spend its report divides by), in one statement.
_EVENTS_SQL = f"""
    WITH e AS (
        UPDATE {Event._meta.db_table} AS e
           SET membership_id = v.membership_id, status = v.status, reason = v.reason, points = v.points,
               tier_name = v.tier_name, multiplier = v.multiplier, balance_after = v.balance_after,
               unrecovered_points = v.unrecovered, ledger_transaction_id = v.transaction_id, processed_at = %b,
               pending_until = CASE WHEN e.type = 'purchase' THEN v.pending_until END,
               network_points = v.network_points
          FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::numeric[],
                      %b::bigint[], %b::bigint[], %b::bigint[], %b::date[], %b::bigint[])
               AS v(id, membership_id, status, reason, points, tier_name, multiplier, balance_after, unrecovered,
                    transaction_id, pending_until, network_points)
         WHERE e.id = v.id AND e.status = 'pending'
        RETURNING e.brand_id, e.type, e.status, e.reason, e.tier_name, e.amount, e.points
    ),
    daily AS (
        INSERT INTO {DailyEvents._meta.db_table} AS d (brand_id, day, type, status, reason, tier_name, events, amount,
                                                       points)
        SELECT brand_id, %b::date, type, status, reason, tier_name, count(*), COALESCE(sum(amount), 0), sum(points)
          FROM e GROUP BY brand_id, type, status, reason, tier_name ORDER BY brand_id, type, status, reason, tier_name
        ON CONFLICT (brand_id, day, type, status, reason, tier_name) DO UPDATE
           SET events = d.events + EXCLUDED.events, amount = d.amount + EXCLUDED.amount,
               points = d.points + EXCLUDED.points
    )
    SELECT count(*) FROM e
"""  # noqa: S608 - only table names are formatted in


def _events_write(
    outcomes: list[engine.Outcome], transaction_of: dict[str, int], now: dt.datetime, day: dt.date
) -> None:
    columns: tuple[list, ...] = ([], [], [], [], [], [], [], [], [], [], [], [])
    for outcome in outcomes:
        for column, value in zip(
            columns,
            (
                outcome.event_id,
                outcome.membership_id,
                outcome.status,
                outcome.reason,
                outcome.points,
                outcome.tier_name,
                outcome.multiplier,
                outcome.balance_after,
                outcome.unrecovered,
                transaction_of.get(f"event:{outcome.event_id}"),
                outcome.pending_until,
                outcome.network_points,
            ),
            strict=True,
        ):
            column.append(value)
    with bulk_cursor() as cursor:
        cursor.execute(_EVENTS_SQL, [now, *columns, day], prepare=True)
        (updated,) = cursor.fetchone()
    if updated != len(outcomes):  # pragma: no cover - the row locks make this impossible; refuse rather than guess
        raise RuntimeError(f"events changed while locked for processing ({updated} of {len(outcomes)} updated)")


def _purchases_write(purchases) -> None:
    purchases = list(purchases)
    if not purchases:
        return
    sql = f"""
        UPDATE {Event._meta.db_table} AS e
           SET refunded_amount = v.refunded_amount, refunded_points = v.refunded_points,
               refunded_network_points = v.refunded_network_points
          FROM unnest(%b::bigint[], %b::numeric[], %b::bigint[], %b::bigint[])
               AS v(id, refunded_amount, refunded_points, refunded_network_points)
         WHERE e.id = v.id
    """  # noqa: S608 - only the table name is formatted in
    _execute(
        sql,
        [
            [p.event_id for p in purchases],
            [p.refunded_amount for p in purchases],
            [p.refunded_points for p in purchases],
            [p.refunded_network_points for p in purchases],
        ],
    )


def _buckets_write(buckets: dict[tuple[int, dt.date], int]) -> None:
    changes = [(key, points) for key, points in sorted(buckets.items()) if points]
    if not changes:
        return
    sql = f"""
        INSERT INTO {QualifyingBucket._meta.db_table} AS b (membership_id, month, points)
        SELECT * FROM unnest(%b::bigint[], %b::date[], %b::bigint[])
        ON CONFLICT (membership_id, month) DO UPDATE SET points = b.points + EXCLUDED.points
    """  # noqa: S608 - only the table name is formatted in
    _execute(sql, [[key[0] for key, _ in changes], [key[1] for key, _ in changes], [points for _, points in changes]])


def _counters_write(counts: dict[tuple[int, str, dt.date], tuple[int, int]]) -> None:
    if not counts:
        return
    keys = sorted(counts)
    sql = f"""
        INSERT INTO {AwardCounter._meta.db_table} AS c (membership_id, event_type, day, awarded, points)
        SELECT * FROM unnest(%b::bigint[], %b::text[], %b::date[], %b::integer[], %b::bigint[])
        ON CONFLICT (membership_id, event_type, day)
        DO UPDATE SET awarded = c.awarded + EXCLUDED.awarded, points = c.points + EXCLUDED.points
    """  # noqa: S608 - only the table name is formatted in
    _execute(
        sql,
        [
            [key[0] for key in keys],
            [key[1] for key in keys],
            [key[2] for key in keys],
            [counts[key][0] for key in keys],
            [counts[key][1] for key in keys],
        ],
    )


def _streaks_write(streaks: dict[tuple[int, str], engine.StreakState]) -> None:
    if not streaks:
        return
    keys = sorted(streaks)
    sql = f"""
        INSERT INTO {Streak._meta.db_table} AS s (membership_id, event_type, last_period, length, bonus_paid)
        SELECT * FROM unnest(%b::bigint[], %b::text[], %b::date[], %b::integer[], %b::boolean[])
        ON CONFLICT (membership_id, event_type) DO UPDATE
           SET last_period = EXCLUDED.last_period, length = EXCLUDED.length, bonus_paid = EXCLUDED.bonus_paid
    """  # noqa: S608 - only the table name is formatted in
    runs = [streaks[key] for key in keys]
    _execute(
        sql,
        [
            [key[0] for key in keys],
            [key[1] for key in keys],
            [run.last_period for run in runs],
            [run.length for run in runs],
            [run.bonus_paid for run in runs],
        ],
    )


def pending_lots_add(*, brand_id: int, changes: dict[tuple[int, dt.date], int]) -> None:
    """Add to the pending lots of (membership id, release day), or take from them (a negative change: a
    refund inside the window, whose lot exists; an upsert would check its negative row against the
    lot's CHECK before finding the lot)."""
    added = sorted(key for key, points in changes.items() if points > 0)
    taken = sorted(key for key, points in changes.items() if points < 0)
    if added:
        sql = f"""
            INSERT INTO {PendingLot._meta.db_table} AS p (membership_id, brand_id, release_on, points)
            SELECT v.membership_id, %b, v.release_on, v.points
              FROM unnest(%b::bigint[], %b::date[], %b::bigint[]) AS v(membership_id, release_on, points)
            ON CONFLICT (membership_id, release_on) DO UPDATE SET points = p.points + EXCLUDED.points
             WHERE p.released_transaction_id IS NULL
        """  # noqa: S608 - only the table name is formatted in
        changed = _execute(
            sql, [brand_id, [key[0] for key in added], [key[1] for key in added], [changes[k] for k in added]]
        )
        if changed != len(added):  # pragma: no cover - the engine only makes pending points for days ahead
            raise RuntimeError("pending points were added to a day whose points were released already")
    if taken:
        sql = f"""
            UPDATE {PendingLot._meta.db_table} AS p SET points = p.points + v.points
              FROM unnest(%b::bigint[], %b::date[], %b::bigint[]) AS v(membership_id, release_on, points)
             WHERE p.membership_id = v.membership_id AND p.release_on = v.release_on
        """  # noqa: S608 - only the table name is formatted in
        updated = _execute(sql, [[key[0] for key in taken], [key[1] for key in taken], [changes[k] for k in taken]])
        if updated != len(taken):  # pragma: no cover - a refund only takes from a lot its purchase made
            raise RuntimeError("a refund took pending points from a lot that does not exist")


def tier_moves_write(
    *,
    program: engine.Program,
    brand_id: int,
    moves: list[engine.TierMove],
    now: dt.datetime,
    today: dt.date | None = None,
) -> None:
    """Set each moved membership's tier (its last move wins), with since and the policy's keep-until day
    (counted from `today`, the brand day of `now` by default), and record every move
    (loyalty.models.TierChange): two statements, however many moves."""
    if not moves:
        return
    last = {move.membership_id: move for move in moves}
    ids = sorted(last)
    keep_until = program.tier_keep_until(today or now.astimezone(program.zone).date())
    # A tier that needs no points (the entry tier) is never lost: it keeps no date.
    kept = {tier.id for tier in program.tiers if tier.threshold > 0}
    sql = f"""
        UPDATE {Membership._meta.db_table} AS m
           SET tier_id = v.tier_id, tier_since = %b::timestamptz, tier_valid_until = v.valid_until
          FROM unnest(%b::bigint[], %b::bigint[], %b::date[]) AS v(id, tier_id, valid_until)
         WHERE m.id = v.id
    """  # noqa: S608 - only the table name is formatted in
    tiers = [last[m].to_id for m in ids]
    _execute(sql, [now, ids, tiers, [keep_until if tier in kept else None for tier in tiers]])
    names = {tier.id: tier.name for tier in program.tiers}
    TierChange.objects.bulk_create(
        [
            TierChange(
                membership_id=move.membership_id,
                brand_id=brand_id,
                from_tier_id=move.from_id,
                to_tier_id=move.to_id,
                from_name=names.get(move.from_id, ""),
                to_name=names.get(move.to_id, ""),
                reason=move.reason,
                qualifying_points=move.qualifying,
                created_at=now,
            )
            for move in moves
        ]
    )


# --- events that fail ---------------------------------------------------------------------------------


def _events_process_singly(*, brand_id: int, limit: int) -> tuple[int, bool]:
    """After a batch failed with an error: process up to `limit` of the brand's oldest events one at a
    time, to find the one that fails it, and count the attempt against it (set aside after
    EVENT_MAX_ATTEMPTS). Returns how many were processed, and whether a failing event still blocks the
    brand (it is pending: the next drain, woken by the sweep or an accept, tries it again first)."""
    processed = 0
    while processed < limit:
        try:
            taken, _ = events_process_batch(brand_id=brand_id, limit=1)
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            oldest = Event.objects.filter(brand_id=brand_id, status=Event.Status.PENDING).order_by("id").first()
            if oldest is None:
                return processed, False
            return processed, event_failure_record(event=oldest, error=error).status == Event.Status.PENDING
        if not taken:
            break
        processed += taken
    return processed, False


def event_failure_record(*, event: Event, error: BaseException) -> Event:
    """Count a failed attempt to process `event`; the EVENT_MAX_ATTEMPTS-th sets it aside (status failed,
    reason processing_failed), so that its brand's later events are processed, and wakes its waiters.
    Once the cause is fixed, staff send it back (events_retry)."""
    limit = settings.EVENT_MAX_ATTEMPTS
    now = timezone.now()
    last_error = f"{type(error).__name__}: {error}"[:2000]
    Event.objects.filter(pk=event.pk, status=Event.Status.PENDING).update(
        attempts=F("attempts") + 1,
        last_error=last_error,
        status=Case(When(attempts__gte=limit - 1, then=Value(Event.Status.FAILED)), default=F("status")),
        reason=Case(When(attempts__gte=limit - 1, then=Value("processing_failed")), default=F("reason")),
        processed_at=Case(When(attempts__gte=limit - 1, then=Value(now)), default=F("processed_at")),
    )
    event.refresh_from_db()
    if event.status == Event.Status.FAILED:
        daily_events_add(event=event, day=now.astimezone(event.brand.zone).date())
        logger.error("event %s set aside after %s failed attempts: %s", event.pk, event.attempts, last_error)
        notify.events_done([event.pk])
    else:
        logger.warning("event %s failed (attempt %s of %s): %s", event.pk, event.attempts, limit, last_error)
    return event


def daily_events_add(*, event: Event, day: dt.date) -> None:
    """Count one event's outcome in its brand's day (an event set aside; the batches count theirs in
    _EVENTS_SQL)."""
    sql = f"""
        INSERT INTO {DailyEvents._meta.db_table} AS d (brand_id, day, type, status, reason, tier_name, events, amount,
                                                       points)
        VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s)
        ON CONFLICT (brand_id, day, type, status, reason, tier_name) DO UPDATE
           SET events = d.events + 1, amount = d.amount + EXCLUDED.amount, points = d.points + EXCLUDED.points
    """  # noqa: S608 - only the table name is formatted in
    amount = event.amount or 0
    params = [event.brand_id, day, event.type, event.status, event.reason, event.tier_name, amount, event.points]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def events_retry(*, event_ids: list[int]) -> int:
    """Send events that were set aside back to pending (their attempts start again), and wake their
    brands' processors. Returns how many went back."""
    events = Event.objects.filter(pk__in=event_ids, status=Event.Status.FAILED)
    brand_ids = sorted(set(events.values_list("brand_id", flat=True)))
    count = events.update(status=Event.Status.PENDING, reason="", attempts=0, processed_at=None)
    for brand_id in brand_ids:
        transaction.on_commit(lambda brand_id=brand_id: notify.brand_wake(brand_id))
    return count


# --- the sweep ----------------------------------------------------------------------------------------


def events_pending_sweep(*, older_than_seconds: float = 5.0) -> list[int]:
    """Queue a drain for every brand with events pending for a while (nobody woke a worker for them:
    Redis or the broker was away, or a worker died). Returns the brand ids."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    brand_ids = sorted(
        Event.objects.filter(status=Event.Status.PENDING, created_at__lt=cutoff)
        .order_by()
        .values_list("brand_id", flat=True)
        .distinct()
    )
    from loyalty.tasks import events_process_task

    for brand_id in brand_ids:
        events_process_task.delay(brand_id)
    return brand_ids
