"""Writing the outbox: messages of what happened, in the database transaction of the change.

Ledger postings are told by integrations.receivers (the ledger's `transactions_posted`, one INSERT for
all of a call's postings); new memberships and tier changes by triggers on their tables (the migration
0001), whichever code path makes them; points expiring soon by integrations.services.expiring_soon_queue.
After the commit a worker is woken (integrations.tasks): it fans each message out to its sinks and
delivers them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from config.db import bulk_cursor
from integrations.models import OutboxMessage

logger = logging.getLogger(__name__)

KICK_KEY = "tally:outbox:kick"
KICK_TTL_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Message:
    brand_id: int
    type: str
    membership_id: int | None
    data: dict
    created_at: dt.datetime


_INSERT_SQL = f"""
    INSERT INTO {OutboxMessage._meta.db_table} (uid, brand_id, type, membership_id, data, created_at, dispatched)
    SELECT gen_random_uuid(), v.brand_id, v.type, v.membership_id, v.data::jsonb, v.created_at, false
      FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::text[], %b::timestamptz[])
           AS v(brand_id, type, membership_id, data, created_at)
"""  # noqa: S608 - only the table name is formatted in


def messages_write(messages: Sequence[Message]) -> None:
    """Add messages to the outbox, in the caller's database transaction (one statement for all), and wake
    a worker once it commits."""
    if not messages:
        return
    columns = [
        [m.brand_id for m in messages],
        [m.type for m in messages],
        [m.membership_id for m in messages],
        [json.dumps(m.data, separators=(",", ":"), default=str) for m in messages],
        [m.created_at for m in messages],
    ]
    with bulk_cursor() as cursor:
        cursor.execute(_INSERT_SQL, columns)
    transaction.on_commit(outbox_kick)


def outbox_kick() -> None:
    """Have a worker deliver the outbox (after a commit that wrote to it). One task however many commits
    ask while it is due: the flag is taken by the worker as it starts. Redis or the broker away: the beat
    job (every few seconds) delivers instead."""
    from integrations.tasks import outbox_work_task

    try:
        client = get_redis_connection("default")
        if not client.set(KICK_KEY, 1, nx=True, ex=KICK_TTL_SECONDS):
            return
    except RedisError:
        return
    try:
        outbox_work_task.delay()
    except Exception:
        logger.warning("could not send the outbox task; the beat job will deliver", exc_info=True)
        with contextlib.suppress(RedisError):
            client.delete(KICK_KEY)


def kick_flag_take() -> None:
    """The worker starts: later commits must send a task again."""
    with contextlib.suppress(RedisError):
        get_redis_connection("default").delete(KICK_KEY)
