"""Celery tasks of the livestream app: take ids (or nothing), call a service. Safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=8)
def watch_minutes_flush_task() -> int:
    """Record the watch minutes heartbeats queued (livestream.services.watch_minutes_flush)."""
    from livestream.services import watch_minutes_flush

    return watch_minutes_flush()
