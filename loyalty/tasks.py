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


@shared_task
def lifecycle_due_task() -> list[int]:
    """Queue the daily lifecycle of every active brand whose day changed since its last run (Celery beat
    calls this often; each brand runs once per day of its own timezone)."""
    from loyalty.models import Brand
    from loyalty.services.lifecycle import brand_today

    queued = []
    for brand in Brand.objects.filter(is_active=True):
        today = brand_today(brand)
        if brand.lifecycle_ran_on is None or brand.lifecycle_ran_on < today:
            lifecycle_brand_task.delay(brand.pk, today.isoformat())
            queued.append(brand.pk)
    return queued


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, max_retries=8)
def lifecycle_brand_task(brand_id: int, as_of: str) -> list[str]:
    import datetime as dt

    from loyalty.models import Brand
    from loyalty.services.lifecycle import lifecycle_run

    brand = Brand.objects.get(pk=brand_id)
    return lifecycle_run(brand=brand, as_of=dt.date.fromisoformat(as_of), if_due=True).lines()


@shared_task(acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, max_retries=8)
def tiers_reevaluate_task(brand_id: int) -> list[str]:
    """Re-weigh a brand's members against its tiers (queued when staff edit the tiers)."""
    from loyalty.models import Brand
    from loyalty.services.lifecycle import brand_today, tiers_evaluate

    brand = Brand.objects.get(pk=brand_id)
    return tiers_evaluate(brand=brand, as_of=brand_today(brand)).lines()
