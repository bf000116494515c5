"""Stripe-style idempotency for API writes.

The first request with a key claims it (a row committed at once, so concurrent duplicates see it),
does its work, and stores its answer. A retry with the same key and the same request replays that
answer; with a different request it is a 409 `idempotency_conflict`; while the first is still being
worked on, a duplicate waits for it and replays, or after a while gets a 409 `in_progress`. The ledger
keys every posting too, so even a request that outlives its claim cannot credit twice.

A claim left `in_progress` by a request that was killed (SIGKILL, a worker timeout, a lost machine)
is taken over by a retry once it is STALE_CLAIM_SECONDS old, longer than any request runs: the retry
does the work again, and the ledger's keys make it find what the first one wrote, if anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import ApplicationError, error_body
from loyalty.models import Brand, IdempotencyRecord

WAIT_FOR_FIRST_SECONDS = 10.0
POLL_SECONDS = 0.05
STALE_CLAIM_SECONDS = 60.0


class IdempotencyConflictError(ApplicationError):
    status_code = 409
    code = "idempotency_conflict"


class RequestInProgressError(ApplicationError):
    status_code = 409
    code = "in_progress"
    transient = True


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps({"method": method, "path": path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim(brand: Brand, key: str, fingerprint: str) -> bool:
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(brand=brand, key=key, request_hash=fingerprint)
    except IntegrityError:
        return False
    return True


def _release(brand: Brand, key: str) -> None:
    IdempotencyRecord.objects.filter(brand=brand, key=key, state=IdempotencyRecord.State.IN_PROGRESS).delete()


def idempotent_call(
    *, brand: Brand, key: str, fingerprint: str, handler: Callable[[], tuple[int, dict]]
) -> tuple[int, dict, bool]:
    """Run `handler` at most once per (brand, key). Returns (status, body, replayed).

    Call it outside any transaction (views are not ATOMIC_REQUESTS): the claim must commit before the
    work starts, or a concurrent duplicate cannot see it and would wait on the row instead.
    """
    if _claim(brand, key, fingerprint):
        try:
            status, body = handler()
        except ApplicationError as error:
            if error.transient:
                _release(brand, key)
                raise
            # A business refusal is an answer like any other: a retry hears the same one.
            status, body = error.status_code, error_body(error.code, error.message, error.fields, **error.extra)
        except BaseException:
            # Nothing was answered (a crash, a lost connection): free the key so a retry can try again.
            # Whatever the handler committed is protected by its own keys (order id, ledger keys).
            _release(brand, key)
            raise
        IdempotencyRecord.objects.filter(brand=brand, key=key).update(
            state=IdempotencyRecord.State.DONE, response_status=status, response_body=body
        )
        return status, body, False

    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while True:
        record = IdempotencyRecord.objects.filter(brand=brand, key=key).first()
        if record is None:  # the first attempt crashed and freed the key: this one takes over
            return idempotent_call(brand=brand, key=key, fingerprint=fingerprint, handler=handler)
        if record.request_hash != fingerprint:
            raise IdempotencyConflictError(
                message="This idempotency key was already used with a different request.",
                extra={"idempotency_key": key},
            )
        if record.state == IdempotencyRecord.State.DONE:
            return record.response_status, record.response_body, True
        if record.created_at < timezone.now() - dt.timedelta(seconds=STALE_CLAIM_SECONDS):
            # Its request died without an answer: free the key (once, whoever gets here first) and claim it.
            IdempotencyRecord.objects.filter(
                pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS, created_at=record.created_at
            ).delete()
            return idempotent_call(brand=brand, key=key, fingerprint=fingerprint, handler=handler)
        if time.monotonic() >= deadline:
            raise RequestInProgressError(message="A request with this idempotency key is still being processed.")
        time.sleep(POLL_SECONDS)


def idempotency_records_purge(*, now: dt.datetime | None = None) -> int:
    """Forget answers older than IDEMPOTENCY_KEY_TTL_HOURS (the ledger's own keys are kept forever)."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
