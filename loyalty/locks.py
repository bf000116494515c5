"""Every lock loyalty takes, in one place.

Order, always: the membership's Redis lock, then the membership row (SELECT ... FOR UPDATE), then
whatever the ledger locks (its balance rows, in account-id order). The Redis lock keeps workers from
piling up on one member; the row lock is what makes caps, tiers and refunds correct, because a
Redis lock can expire while its holder is still working.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import LockError

from config.errors import ApplicationError
from loyalty.models import Event, Membership


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
