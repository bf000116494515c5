"""Accepting events: claim each one's idempotency key and store it pending, one INSERT for all of them.

Accepting is cheap on purpose (DESIGN: the ingest pipeline, step 1): no member lookup, no rules, no
ledger. Validation happened in loyalty.serializers.EventInput; what is left here is what needs the
database:

- the idempotency claim. The event row is its own idempotency record: the INSERT ... ON CONFLICT DO
  NOTHING claims `(brand, idempotency_key)` and, for a purchase, `(brand, order_id)`, in the same
  statement that stores the event. A conflicting item is looked up: the same request (`request_hash`)
  replays the event as it is now, another request under the same key is a 409 idempotency_conflict,
  and a purchase whose order id came with another key is a 409 duplicate_order. The key lasts as long
  as the event: a retry a month later still replays;
- a refund is checked against its purchase (unknown order, more than is left, another currency): a 422
  the till hears at once. The processor checks again, under its locks.

Committed on return (the statement runs in autocommit, or in the caller's transaction), so an
accepted event survives Redis and every worker dying right after. Then a worker is woken
(loyalty.notify.brand_wake), after the commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from config.db import bulk_cursor
from config.errors import ApplicationError, error_body
from loyalty import notify
from loyalty.models import Brand, EarnRule, Event
from loyalty.selectors import events_by_keys
from loyalty.serializers import CleanEvent, event_out


@dataclass(frozen=True)
class Accepted:
    """What the API answers for one event: its HTTP status and the body of the single endpoint."""

    http_status: int
    body: dict
    event_id: int | None = None
    replayed: bool = False

    @property
    def pending(self) -> bool:
        return self.event_id is not None and self.body.get("status") == Event.Status.PENDING


def _refusal(error: ApplicationError) -> Accepted:
    return Accepted(error.status_code, error_body(error.code, error.message, error.fields, **error.extra))


_COLUMNS = """(id, brand_id, membership_id, member_email, member_external_id, type, order_id, amount, currency,
              occurred_at, location_id, metadata, idempotency_key, request_hash, refund_of_id, created_at)"""
_NEXT_ID = f"nextval(pg_get_serial_sequence('{Event._meta.db_table}', 'id'))"
# Many rows: one array per column (the statement's text is the same for 2 or 1,000 rows). Rows without an
# id take one from the sequence, in order; the answer says, position by position, each row's id and
# whether it went in (an item whose key was taken did not): one statement, no ids asked for first.
_INSERT_MANY_SQL = f"""
    WITH v AS MATERIALIZED (
        SELECT COALESCE(u.given_id, {_NEXT_ID}) AS id, u.*
          FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::numeric[],
                      %b::text[], %b::timestamptz[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[])
               WITH ORDINALITY
               AS u(given_id, membership_id, email, external_id, type, order_id, amount, currency, occurred_at,
                    location_id, metadata, key, hash, refund_of_id, position)
         ORDER BY u.position
    ), inserted AS (
        INSERT INTO {Event._meta.db_table} {_COLUMNS}
        SELECT v.id, %b, v.membership_id, v.email, v.external_id, v.type, v.order_id, v.amount, v.currency,
               v.occurred_at, v.location_id, v.metadata::jsonb, v.key, v.hash, v.refund_of_id, %b
          FROM v ORDER BY v.position
        ON CONFLICT DO NOTHING
        RETURNING id
    )
    SELECT v.id, inserted.id IS NOT NULL FROM v LEFT JOIN inserted ON inserted.id = v.id ORDER BY v.position
"""  # noqa: S608 - only the table name is formatted in
# One row (the single endpoint, thousands of times a second): plain values, cheaper to send than arrays.
_INSERT_ONE_SQL = f"""
    INSERT INTO {Event._meta.db_table} {_COLUMNS}
    VALUES (COALESCE(%b::bigint, {_NEXT_ID}), %b, %b, %b, %b, %b, %b, %b::numeric, %b, %b, %b, %b::jsonb, %b, %b,
            %b, %b)
    ON CONFLICT DO NOTHING
    RETURNING id
"""  # noqa: S608 - only the table name is formatted in


def _ids_allocate(count: int) -> list[int]:
    """Event ids for `count` rows, taken before the INSERT, for a batch with refunds: a refund may name a
    purchase sent earlier in the same batch, by the id that purchase will have."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT nextval(pg_get_serial_sequence('{Event._meta.db_table}', 'id')) FROM generate_series(1, %s)",  # noqa: S608
            [count],
        )
        return [row[0] for row in cursor.fetchall()]


@dataclass
class _Row:
    """One event to insert, as columns."""

    id: int | None
    membership_id: int | None
    email: str
    external_id: str
    type: str
    order_id: str
    amount: Decimal | None
    currency: str
    occurred_at: dt.datetime
    location_id: str
    metadata: dict
    key: str | None
    hash: str
    refund_of_id: int | None = None


def _insert(brand_id: int, rows: list[_Row], created_at: dt.datetime) -> set[int]:
    """Insert the rows, skipping those whose keys are taken. Returns the inserted ids; every row without
    an id gets the one it went in with (a skipped single row keeps None)."""
    values = [
        (
            row.id,
            row.membership_id,
            row.email,
            row.external_id,
            row.type,
            row.order_id,
            row.amount,
            row.currency,
            row.occurred_at,
            row.location_id,
            json.dumps(row.metadata, cls=DjangoJSONEncoder),
            row.key,
            row.hash,
            row.refund_of_id,
        )
        for row in rows
    ]
    with bulk_cursor() as cursor:
        if len(rows) == 1:
            (first,) = values
            cursor.execute(_INSERT_ONE_SQL, [first[0], brand_id, *first[1:], created_at])
            inserted = {event_id for (event_id,) in cursor.fetchall()}
            if inserted and rows[0].id is None:
                rows[0].id = next(iter(inserted))
            return inserted
        cursor.execute(
            _INSERT_MANY_SQL, [*(list(column) for column in zip(*values, strict=True)), brand_id, created_at]
        )
        inserted = set()
        for row, (event_id, went_in) in zip(rows, cursor.fetchall(), strict=True):
            row.id = event_id
            if went_in:
                inserted.add(event_id)
    return inserted


def _existing(brand_id: int, rows: list[_Row]) -> tuple[dict[str, Event], dict[str, Event]]:
    """The stored events that the skipped rows collided with: by idempotency key, and purchases by order id."""
    keys = [row.key for row in rows if row.key]
    orders = [row.order_id for row in rows if row.type == EarnRule.PURCHASE]
    by_key: dict[str, Event] = {}
    by_order: dict[str, Event] = {}
    for event in events_by_keys(brand_id=brand_id, keys=keys, orders=orders):
        if event.idempotency_key:
            by_key[event.idempotency_key] = event
        if event.type == EarnRule.PURCHASE:
            by_order[event.order_id] = event
    return by_key, by_order


class KeyTakenError(ApplicationError):
    """The event's idempotency key (or a purchase's order id) is another request's."""

    status_code = 409


def _collision(row: _Row, by_key: dict[str, Event], by_order: dict[str, Event]) -> Event | KeyTakenError:
    """What took the key (or order id) of a row that was not inserted: the event it replays (the same
    request), or the 409 it is refused with."""
    event = by_key.get(row.key) if row.key else None
    if event is None and row.type == EarnRule.PURCHASE:
        event = by_order.get(row.order_id)
        if event is not None and event.idempotency_key != row.key:
            return KeyTakenError(
                "duplicate_order",
                f"A purchase with order id {row.order_id!r} was already received (under another idempotency key).",
            )
    if event is None:  # taken by a request that rolled back in between: rare enough to ask for a retry
        return KeyTakenError("in_progress", "A request with this key is being processed; retry.")
    if event.request_hash != row.hash:
        return KeyTakenError(
            "idempotency_conflict",
            "This idempotency key was already used with a different request.",
            extra={"idempotency_key": row.key or row.order_id},
        )
    return event


def _pending_out(row: _Row, created_at: dt.datetime) -> dict:
    """`event_out` of the event just stored from `row` (pending, its member as sent), given the stored
    values themselves rather than a model instance: the single endpoint answers thousands a second."""
    stored = SimpleNamespace(
        pk=row.id,
        membership_id=None,
        member_email=row.email,
        member_external_id=row.external_id,
        type=row.type,
        status=Event.Status.PENDING,
        points=0,
        reason="",
        order_id=row.order_id,
        amount=row.amount,
        currency=row.currency,
        occurred_at=row.occurred_at,
        created_at=created_at,
        processed_at=None,
        balance_after=None,
        unrecovered_points=0,
        network_points=0,
    )
    return event_out(stored)


def _status_of(event: Event) -> int:
    return 202 if event.status == Event.Status.PENDING else 201


def _refund_checks(brand: Brand, items: Sequence[CleanEvent], ids: list[int | None]) -> dict[int, object]:
    """For each refund item (by position): the purchase it refunds (its id) and currency, or the refusal
    (an ApplicationError, a 422).

    A purchase sent earlier in the same batch counts, and so do the refunds before it in the batch.
    """
    positions = [index for index, item in enumerate(items) if item.type == Event.REFUND]
    if not positions:
        return {}
    orders = {items[index].order_id for index in positions}
    stored = {event.order_id: event for event in events_by_keys(brand_id=brand.pk, keys=[], orders=sorted(orders))}
    earlier: dict[str, tuple[int, CleanEvent]] = {}
    refunded: dict[str, Decimal] = {}
    outcome: dict[int, object] = {}
    for index, item in enumerate(items):
        if item.type == EarnRule.PURCHASE and item.order_id not in earlier and ids[index] is not None:
            earlier[item.order_id] = (ids[index], item)
        if item.type != Event.REFUND:
            continue
        purchase = stored.get(item.order_id)
        if purchase is not None:
            target_id, amount, spent, currency = (
                purchase.pk,
                purchase.amount,
                purchase.refunded_amount,
                purchase.currency,
            )
            if purchase.membership_id is not None:
                known = (purchase.membership.member.email or "", purchase.membership.external_id or "")
            else:
                known = (purchase.member_email, purchase.member_external_id)
        elif item.order_id in earlier:
            target_id, sent = earlier[item.order_id]
            amount, spent, currency, known = sent.amount, Decimal(0), sent.currency, (sent.email, sent.external_id)
        else:
            outcome[index] = _unknown_order(item)
            continue
        if not _same_member((item.email, item.external_id), known):
            outcome[index] = _unknown_order(item)
            continue
        left = amount - spent - refunded.get(item.order_id, Decimal(0))
        if item.currency and item.currency != currency:
            outcome[index] = ApplicationError(
                "currency_mismatch",
                f"The order was paid in {currency}.",
                fields={"currency": [f"Must be {currency}, the order's currency."]},
            )
        elif item.amount > left:
            outcome[index] = ApplicationError(
                "refund_exceeds_purchase",
                f"Only {left} {currency} of this order is left to refund.",
                extra={"refundable": str(left)},
            )
        else:
            refunded[item.order_id] = refunded.get(item.order_id, Decimal(0)) + item.amount
            outcome[index] = (target_id, currency)
    return outcome


def _same_member(sent: tuple[str, str], known: tuple[str, str]) -> bool:
    """Whether a refund's member (email, external id) can be the purchase's: some identifier that both
    give agrees, or none is given by both (the processor decides, once it has resolved both)."""
    comparable = [(mine, theirs) for mine, theirs in zip(sent, known, strict=True) if mine and theirs]
    return not comparable or any(mine.lower() == theirs.lower() for mine, theirs in comparable)


def _unknown_order(item: CleanEvent) -> ApplicationError:
    return ApplicationError("unknown_order", f"No purchase with order id {item.order_id!r} for this member.")


def _row_of(
    item: CleanEvent, *, event_id: int | None, refund_of_id: int | None, currency: str, now: dt.datetime
) -> _Row:
    return _Row(
        id=event_id,
        membership_id=None,
        email=item.email,
        external_id=item.external_id,
        type=item.type,
        order_id=item.order_id,
        amount=item.amount,
        currency=currency,
        occurred_at=item.occurred_at or now,
        location_id=item.location_id,
        metadata=item.metadata,
        key=item.idempotency_key,
        hash=item.request_hash,
        refund_of_id=refund_of_id,
    )


def refund_target(*, brand: Brand, item: CleanEvent) -> tuple[int, str]:
    """The purchase a refund would be stored against (its id) and its currency, as events_accept checks
    it; raises the ApplicationError (a 422) it would be refused with."""
    check = _refund_checks(brand, [item], [None])[0]
    if isinstance(check, ApplicationError):
        raise check
    return check


def event_stored(*, brand: Brand, item: CleanEvent) -> Event | None:
    """The stored event that events_accept would answer `item` with instead of storing it (the same request,
    sent before under its key or order id), or None: it would be stored. Raises the KeyTakenError (a 409)
    it would be refused with: its key or order id is another request's."""
    row = _row_of(item, event_id=None, refund_of_id=None, currency=item.currency, now=timezone.now())
    by_key, by_order = _existing(brand.pk, [row])
    if not by_key and not by_order:
        return None
    found = _collision(row, by_key, by_order)
    if isinstance(found, KeyTakenError):
        raise found
    return found


def events_accept(*, brand: Brand, items: Sequence[CleanEvent]) -> list[Accepted]:
    """Store valid events as pending, each exactly once per idempotency key; one answer per item, in order.

    Statements: one INSERT for all items (plus, when some keys were taken, one to look up what took
    them, and for a batch with refunds, one for their purchases and one to take ids first). Wakes a
    worker once the new events are committed.
    """
    if not items:
        return []
    with_refunds = len(items) > 1 and any(item.type == Event.REFUND for item in items)
    ids: list[int | None] = _ids_allocate(len(items)) if with_refunds else [None] * len(items)
    refunds = _refund_checks(brand, items, ids)
    answers: list[Accepted | None] = [None] * len(items)
    rows: list[_Row] = []
    positions: list[int] = []
    now = timezone.now()
    for index, item in enumerate(items):
        check = refunds.get(index)
        if isinstance(check, ApplicationError):
            answers[index] = _refusal(check)
            continue
        refund_of_id, currency = check if check is not None else (None, item.currency)
        rows.append(_row_of(item, event_id=ids[index], refund_of_id=refund_of_id, currency=currency, now=now))
        positions.append(index)
    if rows:
        inserted = _insert(brand.pk, rows, now)
        skipped = [row for row in rows if row.id not in inserted]
        by_key, by_order = _existing(brand.pk, skipped) if skipped else ({}, {})
        for index, row in zip(positions, rows, strict=True):
            if row.id in inserted:
                answers[index] = Accepted(202, _pending_out(row, now), row.id)
            else:
                found = _collision(row, by_key, by_order)
                answers[index] = (
                    _refusal(found)
                    if isinstance(found, KeyTakenError)
                    else Accepted(_status_of(found), event_out(found), found.pk, replayed=True)
                )
        if inserted:
            transaction.on_commit(lambda: notify.brand_wake_soon(brand.pk))
    return answers  # type: ignore[return-value] - every slot is filled


def events_record(
    *,
    brand_id: int,
    membership_id: int,
    type: str,
    keys: Sequence[str],
    occurred_at: dt.datetime,
    metadata: dict | None = None,
) -> int:
    """Record events Tally itself observed (watch minutes) for a known membership, pending, once per key.

    `keys` are the events' own idempotency keys (prefixed with Event.INTERNAL_KEY_PREFIX here): a
    retried call records nothing twice. Returns how many were new. The processor credits them with
    everything else, in batches.
    """
    if not keys:
        return 0
    rows = [
        _Row(
            id=None,
            membership_id=membership_id,
            email="",
            external_id="",
            type=type,
            order_id="",
            amount=None,
            currency="",
            occurred_at=occurred_at,
            location_id="",
            metadata=metadata or {},
            key=f"{Event.INTERNAL_KEY_PREFIX}{key}",
            hash="",
        )
        for key in keys
    ]
    inserted = _insert(brand_id, rows, timezone.now())
    if inserted:
        transaction.on_commit(lambda: notify.brand_wake(brand_id))
    return len(inserted)
