"""Celery tasks of the loyalty app: take ids, re-fetch, call a service. Safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from loyalty.locks import LockUnavailableError

# Retried with backoff; an event still pending after that is sent again by events_pending_requeue_task.
TRANSIENT = (LockUnavailableError, OperationalError)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=8)
def event_process_task(event_id: int) -> str:
    from loyalty.services.earning import event_process

    event = event_process(event_id=event_id)
    return event.status if event else "missing"


@shared_task
def idempotency_purge_task() -> int:
    from loyalty.services.idempotency import idempotency_records_purge

    return idempotency_records_purge()


@shared_task
def events_pending_requeue_task() -> int:
    from loyalty.services.earning import events_pending_requeue

    return events_pending_requeue()
