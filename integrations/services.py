"""Delivering the outbox, and the writes of the integrations (webhook endpoints, resends).

A worker's round (`outbox_work`):
  1. fan out: claim up to FANOUT_BATCH messages not yet dispatched (FOR UPDATE SKIP LOCKED: workers
     share the work), make one Delivery per sink subscribed to each (the brand's analytics project, its
     enabled endpoints that take the type and existed when the message was written), mark them
     dispatched; one database transaction.
  2. send: claim the deliveries that are due, pushing their next attempt a lease away in the same short
     transaction (a worker killed while sending leaves them to be tried again once the lease ends: at
     least once), then send with no transaction open: analytics per brand in batches of up to
     ANALYTICS_BATCH_SIZE, webhooks one message per request. A failure is tried again after an
     exponential backoff until the message is WEBHOOK_RETRY_FOR_SECONDS old; an endpoint that has only
     failed for that long is disabled (its staff see it in the portal).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.db import bulk_cursor
from config.errors import ApplicationError
from integrations import sinks
from integrations.models import MESSAGE_TYPES, BrandIntegration, Delivery, OutboxMessage, WebhookEndpoint
from loyalty.models import Brand, Membership, PointsLot

logger = logging.getLogger(__name__)

FANOUT_BATCH = 2000
SEND_BATCH = 2000
LEASE_SECONDS = 120
WORK_BUDGET_SECONDS = 20.0
MAX_BACKOFF_SECONDS = 6 * 3600


def outbox_work(*, budget_seconds: float = WORK_BUDGET_SECONDS) -> int:
    """Fan out and send until nothing is due (or the budget is spent). Returns the deliveries sent."""
    deadline = time.monotonic() + budget_seconds
    sent = 0
    while True:
        fanned = outbox_fan_out()
        done = deliveries_send()
        sent += done
        if (not fanned and not done) or time.monotonic() > deadline:
            return sent


# --- 1. fan out --------------------------------------------------------------------------------------

_CLAIM_MESSAGES = f"""
    SELECT id, brand_id, type, created_at FROM {OutboxMessage._meta.db_table}
     WHERE NOT dispatched ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
"""  # noqa: S608 - only the table name is formatted in

_INSERT_DELIVERIES = f"""
    INSERT INTO {Delivery._meta.db_table}
           (message_id, brand_id, sink, endpoint_id, status, attempts, next_attempt_at, last_error, created_at)
    SELECT v.message_id, v.brand_id, v.sink, v.endpoint_id, 'pending', 0, %b, '', %b
      FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::bigint[]) AS v(message_id, brand_id, sink, endpoint_id)
    ON CONFLICT (message_id, sink) DO NOTHING
"""  # noqa: S608 - only the table name is formatted in


def outbox_fan_out(limit: int = FANOUT_BATCH) -> int:
    """One Delivery per sink of each message not dispatched yet. Returns how many messages it dispatched."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_MESSAGES, [limit])
            messages = cursor.fetchall()
        if not messages:
            return 0
        brand_ids = {brand_id for _, brand_id, _, _ in messages}
        analytics = (
            set(
                BrandIntegration.objects.filter(brand_id__in=brand_ids)
                .exclude(analytics_secret="")
                .values_list("brand_id", flat=True)
            )
            if settings.ANALYTICS_URL
            else set()
        )
        endpoints: dict[int, list[WebhookEndpoint]] = defaultdict(list)
        for endpoint in WebhookEndpoint.objects.filter(brand_id__in=brand_ids, enabled=True):
            endpoints[endpoint.brand_id].append(endpoint)
        rows: list[tuple[int, int, str, int | None]] = []
        for message_id, brand_id, message_type, created_at in messages:
            if brand_id in analytics and MESSAGE_TYPES.get(message_type):
                rows.append((message_id, brand_id, Delivery.ANALYTICS, None))
            for endpoint in endpoints.get(brand_id, ()):
                # An endpoint hears what happened from its registration on, not the backlog before it.
                if endpoint.receives(message_type) and created_at >= endpoint.created_at:
                    rows.append((message_id, brand_id, f"webhook:{endpoint.pk}", endpoint.pk))
        now = timezone.now()
        with bulk_cursor() as cursor:
            if rows:
                cursor.execute(_INSERT_DELIVERIES, [now, now, *map(list, zip(*rows, strict=True))])
            cursor.execute(
                f"UPDATE {OutboxMessage._meta.db_table} SET dispatched = true WHERE id = ANY(%b)",  # noqa: S608
                [[message_id for message_id, *_ in messages]],
            )
    return len(messages)


# --- 2. send ---------------------------------------------------------------------------------------------


@dataclass
class _Claimed:
    delivery: Delivery
    message: OutboxMessage


def _claim(limit: int) -> list[_Claimed]:
    now = timezone.now()
    with transaction.atomic():
        deliveries = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:limit]
        )
        if not deliveries:
            return []
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
            next_attempt_at=now + dt.timedelta(seconds=LEASE_SECONDS)
        )
    messages = OutboxMessage.objects.in_bulk({d.message_id for d in deliveries})
    return [_Claimed(d, messages[d.message_id]) for d in deliveries]


def deliveries_send(limit: int = SEND_BATCH) -> int:
    """Send the deliveries that are due. Returns how many were tried."""
    claimed = _claim(limit)
    if not claimed:
        return 0
    brands = dict(Brand.objects.filter(pk__in={c.delivery.brand_id for c in claimed}).values_list("pk", "slug"))
    by_sink: dict[str, list[_Claimed]] = defaultdict(list)
    for item in claimed:
        by_sink[item.delivery.sink].append(item)
    outcomes: list[tuple[_Claimed, sinks.Answer | None]] = []  # None: not tried (its endpoint failed just now)
    analytics = {
        row.brand_id: row
        for row in BrandIntegration.objects.filter(brand_id__in={c.delivery.brand_id for c in claimed})
    }
    endpoints = WebhookEndpoint.objects.in_bulk({c.delivery.endpoint_id for c in claimed if c.delivery.endpoint_id})
    for sink, items in by_sink.items():
        if sink == Delivery.ANALYTICS:
            outcomes += _analytics_send(items, brands, analytics)
        else:
            outcomes += _webhooks_send(items, brands, endpoints.get(items[0].delivery.endpoint_id))
    _record(outcomes, endpoints)
    return len(claimed)


def _analytics_send(items: list[_Claimed], brands: dict[int, str], settings_of: dict[int, BrandIntegration]):
    outcomes = []
    by_brand: dict[int, list[_Claimed]] = defaultdict(list)
    for item in items:
        by_brand[item.delivery.brand_id].append(item)
    for brand_id, batch in by_brand.items():
        config = settings_of.get(brand_id)
        if not settings.ANALYTICS_URL or config is None or not config.analytics_secret:
            outcomes += [(item, sinks.Answer(False, None, "analytics is not configured")) for item in batch]
            continue
        size = settings.ANALYTICS_BATCH_SIZE
        for start in range(0, len(batch), size):
            chunk = batch[start : start + size]
            events = [sinks.analytics_event(item.message, brands[brand_id], config.analytics_token) for item in chunk]
            answer = sinks.analytics_send(config.analytics_secret, events)
            outcomes += [(item, answer) for item in chunk]
    return outcomes


def _webhooks_send(items: list[_Claimed], brands: dict[int, str], endpoint: WebhookEndpoint | None):
    if endpoint is None or not endpoint.enabled:
        return [(item, sinks.Answer(False, None, "the endpoint is disabled or deleted")) for item in items]
    outcomes = []
    failed = None
    for item in sorted(items, key=lambda item: item.message.pk):
        if failed is not None:
            # It just failed: the rest of its messages wait with the failed one, untried (no attempt
            # counted), instead of each waiting out a timeout now.
            outcomes.append((item, None))
            continue
        body = sinks.webhook_body(item.message, brands[item.delivery.brand_id])
        answer = sinks.webhook_send(endpoint.url, endpoint.secret, body)
        outcomes.append((item, answer))
        if not answer.ok:
            failed = answer
    return outcomes


def backoff_seconds(attempts: int) -> int:
    """After the `attempts`-th failed attempt: base x 2^(attempts - 1), at most MAX_BACKOFF_SECONDS."""
    return min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1), MAX_BACKOFF_SECONDS)


def _record(outcomes: list[tuple[_Claimed, sinks.Answer | None]], endpoints: dict[int, WebhookEndpoint]) -> None:
    now = timezone.now()
    give_up = dt.timedelta(seconds=settings.WEBHOOK_RETRY_FOR_SECONDS)
    changed: list[Delivery] = []
    failing: dict[int, bool] = {}  # endpoint id -> whether all its tries of this round failed
    wait_for: dict[str, dt.datetime] = {}
    for item, answer in outcomes:
        delivery = item.delivery
        if answer is None:
            continue
        if delivery.endpoint_id:
            failing[delivery.endpoint_id] = failing.get(delivery.endpoint_id, True) and not answer.ok
        delivery.attempts += 1
        delivery.last_status = answer.status
        delivery.last_error = answer.error[:500]
        if answer.ok:
            delivery.status, delivery.delivered_at = Delivery.Status.DELIVERED, now
        elif now - item.message.created_at >= give_up:
            delivery.status = Delivery.Status.FAILED
        else:
            delivery.next_attempt_at = now + dt.timedelta(seconds=backoff_seconds(delivery.attempts))
            wait_for[delivery.sink] = delivery.next_attempt_at
        changed.append(delivery)
    for item, answer in outcomes:
        if answer is None:  # untried: they go with the failed one
            item.delivery.next_attempt_at = wait_for.get(item.delivery.sink, now)
            changed.append(item.delivery)
    Delivery.objects.bulk_update(
        changed, ["status", "attempts", "last_status", "last_error", "delivered_at", "next_attempt_at"], batch_size=1000
    )
    for endpoint_id, failed in failing.items():
        _endpoint_health(endpoints[endpoint_id], failed=failed, now=now)


def _endpoint_health(endpoint: WebhookEndpoint, *, failed: bool, now: dt.datetime) -> None:
    if not failed:
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    elif now - endpoint.failing_since >= dt.timedelta(seconds=settings.WEBHOOK_RETRY_FOR_SECONDS):
        reason = f"every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC"
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_at=now, disabled_reason=reason)
        endpoint.deliveries.filter(status=Delivery.Status.PENDING).update(
            status=Delivery.Status.FAILED, last_error="the endpoint was disabled"
        )
        logger.warning("webhook endpoint %s of brand %s disabled: %s", endpoint.pk, endpoint.brand_id, reason)


# --- endpoints and resends ----------------------------------------------------------------------------


class WebhookUrlRefusedError(ApplicationError):
    status_code = 400
    code = "invalid_input"


def endpoint_create(*, brand: Brand, url: str, events: list[str] | tuple[str, ...] = ()) -> WebhookEndpoint:
    """Register a brand's endpoint (its secret is made here and shown once to whoever registered it)."""
    refusal = sinks.url_refusal(url)
    if refusal:
        raise WebhookUrlRefusedError(message=refusal, fields={"url": [refusal]})
    unknown = sorted(set(events) - set(MESSAGE_TYPES))
    if unknown:
        message = f"Unknown types: {', '.join(unknown)}. Known: {', '.join(MESSAGE_TYPES)}."
        raise WebhookUrlRefusedError(message=message, fields={"events": [message]})
    return WebhookEndpoint.objects.create(brand=brand, url=url, events=sorted(set(events)))


def endpoint_delete(*, brand: Brand, endpoint_id: int) -> bool:
    """Delete one of the brand's endpoints (its undelivered messages go with it). False: no such endpoint."""
    deleted, _ = WebhookEndpoint.objects.filter(brand=brand, pk=endpoint_id).delete()
    return bool(deleted)


def endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    """Staff turn a disabled endpoint back on: it gets what is written from now on."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_at=None, disabled_reason="", failing_since=None
    )


def deliveries_resend(*, delivery_ids: list[int]) -> int:
    """Send these deliveries again, now, whatever became of them (the same message id)."""
    count = Delivery.objects.filter(pk__in=delivery_ids).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now()
    )
    transaction.on_commit(_kick)
    return count


# --- points expiring soon, pruning ---------------------------------------------------------------------

# Per member of the brand: what of the wallet will expire at the next expiry date (the lots older than the
# oldest month still live then), when that is within the brand's notice. Spending takes the oldest points
# first, so that is max(0, balance - the lots from that month on) (as loyalty.services.lifecycle expires).
_EXPIRING_SQL = f"""
    INSERT INTO {OutboxMessage._meta.db_table} (uid, brand_id, type, membership_id, data, created_at, dispatched,
                                                  dedupe_key)
    SELECT gen_random_uuid(), %(brand)s, 'points.expiring_soon', x.membership_id,
           jsonb_build_object('member', jsonb_build_object('id', x.membership_id), 'points', x.due,
                              'expires_on', %(expires_on)s::text, 'balance', x.balance),
           %(now)s, false, 'expiring:' || x.membership_id || ':' || %(expires_on)s::text
      FROM (
        SELECT m.id AS membership_id, b.balance,
               b.balance - COALESCE(sum(l.points) FILTER (WHERE l.month >= %(live)s), 0) AS due
          FROM {Membership._meta.db_table} m
          JOIN ledger_balance b ON b.account_id = m.wallet_id
          JOIN {PointsLot._meta.db_table} l ON l.membership_id = m.id AND NOT l.closed
         WHERE m.brand_id = %(brand)s AND b.balance > 0
         GROUP BY m.id, b.balance
        HAVING bool_or(l.month < %(live)s)
      ) AS x
     WHERE x.due > 0
    ON CONFLICT (dedupe_key) DO NOTHING
"""  # noqa: S608 - only table names are formatted in


def expiring_soon_queue(*, now: dt.datetime | None = None) -> int:
    """For each brand that gives notice: one points.expiring_soon per member whose points expire at the
    brand's next expiry date, once it is within the notice (once per member and date). Returns how many
    messages it wrote."""
    from loyalty.periods import months_add
    from loyalty.services.processing import program_of

    now = now or timezone.now()
    written = 0
    for config in BrandIntegration.objects.filter(expiring_soon_days__gt=0).select_related("brand"):
        brand = config.brand
        program = program_of(brand)
        if program.expire_months is None:
            continue
        today = now.astimezone(brand.zone).date()
        next_expiry = months_add(today.replace(day=1), 1)  # points expire at the start of a month
        if (next_expiry - today).days > config.expiring_soon_days:
            continue
        live = program.live_lot(dt.datetime.combine(next_expiry, dt.time(12), tzinfo=brand.zone))
        if program.expire_from is not None and live <= program.expire_from:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_EXPIRING_SQL, {"brand": brand.pk, "expires_on": next_expiry, "now": now, "live": live})
            written += cursor.rowcount
            if cursor.rowcount:
                transaction.on_commit(_kick)
    return written


def _kick() -> None:
    from integrations.outbox import outbox_kick

    outbox_kick()


def outbox_prune(*, now: dt.datetime | None = None) -> int:
    """Delete messages older than OUTBOX_RETENTION_DAYS whose deliveries are all settled (their
    deliveries go with them)."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    old = OutboxMessage.objects.filter(created_at__lt=cutoff, dispatched=True).exclude(
        deliveries__status=Delivery.Status.PENDING
    )
    deleted, _ = old.delete()
    return deleted
