"""Celery tasks of the integrations: take no ids, call a service."""

from __future__ import annotations

from celery import shared_task

from integrations import services
from integrations.outbox import kick_flag_take


@shared_task(ignore_result=True)
def outbox_work_task() -> int:
    """Fan out new outbox messages and send what is due, until nothing is left (or a budget is spent)."""
    kick_flag_take()
    return services.outbox_work()


@shared_task(ignore_result=True)
def expiring_soon_task() -> int:
    return services.expiring_soon_queue()


@shared_task(ignore_result=True)
def outbox_prune_task() -> int:
    return services.outbox_prune()
