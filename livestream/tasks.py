"""Celery tasks of the livestream: take ids, call a service. Safe to run twice."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from loyalty.tasks import TRANSIENT


# The same transient failures as loyalty's event task: a busy member lock, a dropped database connection.
@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=8)
def watch_minute_credit_task(membership_id: int, channel_id: int, minute_key: str, occurred_at: str) -> str:
    """Credit one watched minute. `minute_key` is "<brand day>:<the member's minute number that day>";
    the credit is keyed by it, so a redelivered or retried message credits nothing more."""
    from livestream.services import watch_minute_credit

    event = watch_minute_credit(
        membership_id=membership_id,
        channel_id=channel_id,
        minute_key=minute_key,
        occurred_at=dt.datetime.fromisoformat(occurred_at),
    )
    return event.status if event else "missing"
