"""Every lock loyalty takes, in one place.

Order, always: the brand's processing lock (event processing only; the lifecycle and the member import
have their own), the membership's Redis lock (one member's requests), then the membership rows
(SELECT ... FOR UPDATE, in id order), then event rows (in id order), then whatever the ledger locks (its
balance rows, in account-id order). The Redis and advisory locks keep workers from piling up and events
in order; the row locks are what make caps, tiers, refunds and balances correct, because a Redis lock
can expire while its holder still works.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, connection
from django_redis import get_redis_connection
from redis.exceptions import LockError

from config.db import bulk_cursor
from config.errors import ApplicationError
from ledger import locks as ledger_locks
from ledger.locks import BalanceHead
from loyalty.models import Event, Member, Membership

logger = logging.getLogger(__name__)

# The first key of loyalty's PostgreSQL advisory locks (the second is the brand id): "ta11y".
ADVISORY_NAMESPACE = 0x7A11


class LockUnavailableError(ApplicationError):
    status_code = 409
    code = "in_progress"
    transient = True


@contextlib.contextmanager
def membership_lock(membership_id: int) -> Iterator[None]:
    """Redis lock per membership: serializes the work of many workers on one member."""
    client = get_redis_connection("default")
    lock = client.lock(
        f"tally:lock:membership:{membership_id}",
        timeout=settings.MEMBERSHIP_LOCK_TIMEOUT_SECONDS,
        blocking_timeout=settings.MEMBERSHIP_LOCK_WAIT_SECONDS,
    )
    if not lock.acquire():
        raise LockUnavailableError(message="Another request for this member is still being processed.")
    try:
        yield
    finally:
        with contextlib.suppress(LockError):  # expired while we worked: the row lock still fenced us
            lock.release()


def membership_lock_row(membership_id: int) -> Membership:
    """The membership row, locked until the end of the current database transaction."""
    return Membership.objects.select_for_update(of=("self",)).select_related("brand", "tier").get(pk=membership_id)


def event_lock_row(event_id: int) -> Event:
    """An event row (the one being processed, or the purchase a refund undoes), locked."""
    return Event.objects.select_for_update(of=("self",)).get(pk=event_id)


@contextlib.contextmanager
def brand_processing_lock(brand_id: int) -> Iterator[bool]:
    """One event processor per brand at a time, so that a brand's events are processed in the order
    they were accepted (a PostgreSQL session advisory lock: it goes with the connection if the worker
    dies). Yields False, at once, when another processor holds it. Not a correctness fence: the row locks
    and the ledger's keys are (loyalty.services.processing)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_NAMESPACE, brand_id])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_NAMESPACE, brand_id])
            except DatabaseError:  # the connection is gone, and the lock with it
                logger.warning("could not release the processing lock of brand %s", brand_id, exc_info=True)


# The first key of the lifecycle job's advisory lock (the second is the brand id).
LIFECYCLE_NAMESPACE = 0x7A12


@contextlib.contextmanager
def brand_lifecycle_lock(brand_id: int, *, wait: bool = True) -> Iterator[bool]:
    """One lifecycle run per brand at a time (a session advisory lock): yields whether it is held. With
    `wait`, a second run waits for the first, then finds done what it did; without, it yields False at
    once (the daily task: the run in progress does the day). Not a correctness fence: the keys are."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {'pg_advisory_lock' if wait else 'pg_try_advisory_lock'}(%s, %s)", [LIFECYCLE_NAMESPACE, brand_id]
        )
        held = cursor.fetchone()[0] is not False
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LIFECYCLE_NAMESPACE, brand_id])
            except DatabaseError:  # the connection is gone, and the lock with it
                logger.warning("could not release the lifecycle lock of brand %s", brand_id, exc_info=True)


# The first key of the member import's advisory lock (the second is the brand id).
IMPORT_NAMESPACE = 0x7A13


@contextlib.contextmanager
def brand_import_lock(brand_id: int) -> Iterator[None]:
    """One member import per brand at a time (a session advisory lock; a second import waits, then finds
    imported what the first did). Not a correctness fence, the membership row locks and the ledger keys
    are: it spares two imports of one file each creating the members the other is creating (a member
    known only by an external id would be made twice, the loser's left without a membership)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [IMPORT_NAMESPACE, brand_id])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [IMPORT_NAMESPACE, brand_id])
        except DatabaseError:  # the connection is gone, and the lock with it
            logger.warning("could not release the import lock of brand %s", brand_id, exc_info=True)


@dataclass(slots=True)
class LockedMembership:
    id: int
    status: str
    tier_id: int | None
    wallet_id: int | None
    pending_wallet_id: int | None = None
    member_id: int | None = None


@dataclass(slots=True)
class EventRow:
    """What the processor reads of an event row (a batch reads a thousand: no model instances)."""

    id: int
    status: str
    type: str
    membership_id: int | None
    order_id: str
    amount: Decimal | None
    currency: str
    occurred_at: dt.datetime
    refund_of_id: int | None
    points: int
    refunded_amount: Decimal
    refunded_points: int
    ledger_transaction_id: int | None
    pending_until: dt.date | None
    network_points: int
    refunded_network_points: int


def memberships_lock_rows(membership_ids: Iterable[int]) -> dict[int, LockedMembership]:
    """Membership rows locked until the end of the current database transaction, in id order (two
    batches that share members cannot deadlock)."""
    ids = sorted(set(membership_ids))
    if not ids:
        return {}
    rows = (
        Membership.objects.select_for_update(of=("self",))
        .filter(pk__any=ids)
        .order_by("pk")
        .values_list("pk", "status", "tier_id", "wallet_id", "pending_wallet_id", "member_id")
    )
    return {row[0]: LockedMembership(*row) for row in rows}


@dataclass(frozen=True, slots=True)
class MemberRef:
    """A membership as a request names it: by id (fan pages), or by the email and/or external id a till
    sends (both must match when both are given)."""

    membership_id: int | None = None
    email: str | None = None
    external_id: str | None = None


# Each ref is resolved by the index that fits it (members' lower(email), the brand's external ids, the
# primary key); then the memberships found are locked, in id order, by a scan of the membership table
# alone. Not by a join: when a row it locks was updated meanwhile, PostgreSQL re-checks the row against
# the query (EvalPlanQual), and a join with a CTE or unnest() can then drop the row from the result
# (PostgreSQL 16 did, under load). `= ANY(ARRAY(...))` is computed once, before any row is locked.
_MEMBERSHIPS_BY_REF_SQL = f"""
    WITH ref AS (
        SELECT * FROM unnest(%b::int[], %b::bigint[], %b::text[], %b::text[]) AS r(n, membership_id, email, external_id)
    ), found AS (
        SELECT ref.n, ms.id
          FROM ref JOIN {Membership._meta.db_table} ms ON ms.id = ref.membership_id AND ms.brand_id = %b
        UNION ALL
        SELECT ref.n, ms.id
          FROM ref
          JOIN {Member._meta.db_table} mb ON lower(mb.email) = lower(ref.email)
          JOIN {Membership._meta.db_table} ms ON ms.member_id = mb.id AND ms.brand_id = %b
         WHERE ref.membership_id IS NULL AND (ref.external_id IS NULL OR ms.external_id = ref.external_id)
        UNION ALL
        SELECT ref.n, ms.id
          FROM ref JOIN {Membership._meta.db_table} ms ON ms.brand_id = %b AND ms.external_id = ref.external_id
         WHERE ref.membership_id IS NULL AND ref.email IS NULL
    )
    SELECT ms.id, ms.status, ms.tier_id, ms.wallet_id, ms.pending_wallet_id, ms.member_id,
           ARRAY(SELECT found.n FROM found WHERE found.id = ms.id)
      FROM {Membership._meta.db_table} ms
     WHERE ms.id = ANY(ARRAY(SELECT found.id FROM found))
     ORDER BY ms.id
       FOR UPDATE
"""  # noqa: S608 - only table names are formatted in


def memberships_lock_rows_by_ref(*, brand_id: int, refs: Sequence[MemberRef]) -> list[LockedMembership | None]:
    """The brand's memberships these refs name, found and locked (membership_lock_row's lock) in one
    statement, in id order; None for a ref that names no membership of the brand. A membership named
    twice is locked once and returned for both.

    Read anything a decision depends on in a *later* statement: when this one had to wait for a lock,
    PostgreSQL re-checks the membership rows it locks, but what it joined stays as it was when the
    statement began.
    """
    if not refs:
        return []
    columns = (
        list(range(len(refs))),
        [ref.membership_id for ref in refs],
        [ref.email or None for ref in refs],
        [ref.external_id or None for ref in refs],
    )
    found: list[LockedMembership | None] = [None] * len(refs)
    with bulk_cursor() as cursor:
        cursor.execute(_MEMBERSHIPS_BY_REF_SQL, [*columns, brand_id, brand_id, brand_id], prepare=True)
        for *row, refs in cursor.fetchall():
            for n in refs:
                found[n] = LockedMembership(*row)
    return found


_EVENT_COLUMNS = ["pk" if field.name == "id" else field.name for field in dataclasses.fields(EventRow)]


def events_read(event_ids: Iterable[int]) -> dict[int, EventRow]:
    """A batch's event rows, not locked: locking a thousand rows costs a write each, and the processor's
    UPDATE of them is the fence (it only moves rows still pending, and the batch rolls back unless it
    moved every one)."""
    rows = Event.objects.filter(pk__any=sorted(set(event_ids))).order_by().values_list(*_EVENT_COLUMNS)
    return {row[0]: EventRow(*row) for row in rows}


def events_lock_rows(event_ids: Iterable[int]) -> dict[int, EventRow]:
    """Event rows locked, in id order: the purchases a batch's refunds undo (their refunded totals are
    read, then written)."""
    rows = (
        Event.objects.select_for_update(of=("self",))
        .filter(pk__any=sorted(set(event_ids)))
        .order_by("pk")
        .values_list(*_EVENT_COLUMNS)
    )
    return {row[0]: EventRow(*row) for row in rows}


def balances_lock(account_ids: Iterable[int]) -> dict[int, BalanceHead]:
    """The ledger's balance rows of these accounts, locked in account-id order (see ledger.locks)."""
    return ledger_locks.balances_lock(account_ids=account_ids)
