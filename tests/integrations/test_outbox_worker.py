"""The outbox with a real Celery worker and real concurrent senders: a purchase reaches the receiver
through the worker woken by the commit; two senders at once send each message once."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.utils import timezone

from integrations import services
from integrations.models import OutboxMessage
from integrations.outbox import Message, messages_write
from integrations.services import endpoint_create
from tests.concurrency import run_concurrently
from tests.loyalty.lifecycle import buy


def wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_purchase_reaches_the_webhook_through_the_worker_the_commit_wakes(celery_worker, coffee, hooks):
    endpoint_create(brand=coffee, url=hooks.url, events=["points.earned"])

    buy(coffee, "o-1", "12.00", {"email": "fan@example.com"})

    assert wait_for(lambda: len(hooks.requests) >= 1), "no webhook within 20 s"
    assert [request.json()["data"]["points"] for request in hooks.requests] == [12]


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_message_once(coffee, hooks):
    endpoint_create(brand=coffee, url=hooks.url, events=["points.adjusted"])
    messages_write([Message(coffee.pk, "points.adjusted", None, {"n": n}, timezone.now()) for n in range(300)])

    results = run_concurrently(lambda _: services.outbox_work(budget_seconds=30), 2)

    assert not [result for result in results if isinstance(result, Exception)], results
    ids = Counter(request.json()["id"] for request in hooks.requests)
    assert len(ids) == OutboxMessage.objects.count() == 300
    assert set(ids.values()) == {1}
