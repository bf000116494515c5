"""Celery tasks of the loyalty app: take ids, re-fetch, call a service. Safe to run twice."""

from __future__ import annotations

from celery import shared_task

from loyalty.services.processing import TRANSIENT_ERRORS


# Retried with backoff; events still pending after that are found again by events_pending_sweep_task.
# An event that fails for any other reason is counted and set aside (processing.event_failure_record).
@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_backoff_max=30, max_retries=8)
def events_process_task(brand_id: int) -> int:
    """Process the brand's pending events in batches (loyalty.services.processing)."""
    from loyalty.services.processing import brand_events_drain

    return brand_events_drain(brand_id=brand_id)


@shared_task
def events_pending_sweep_task() -> list[int]:
    from loyalty.services.processing import events_pending_sweep

    return events_pending_sweep()


@shared_task
def idempotency_purge_task() -> int:
    from loyalty.services.idempotency import idempotency_records_purge

    return idempotency_records_purge()
