"""A worker killed (SIGKILL) in the middle of a batch loses nothing and credits nothing twice.

The processor runs in a real separate process on its own connection; the test waits until that process
is inside a batch's database transaction, kills it, and lets a new one finish the work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.parse

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from ledger.models import Transaction
from loyalty.models import Event, Membership
from loyalty.selectors import membership_balance
from tests.ledger.helpers import ledger_problems
from tests.loyalty.events import accept

pytestmark = pytest.mark.django_db(transaction=True)

APPLICATION = "tally-test-drain"


def drain_process(brand_id: int, batch_size: int) -> subprocess.Popen:
    """`brand_events_drain` in a new Python process, on the test database and the test Redis databases."""
    url = urllib.parse.urlsplit(settings.DATABASE_URL)
    query = [*urllib.parse.parse_qsl(url.query), ("application_name", APPLICATION)]
    database = urllib.parse.urlunsplit(
        url._replace(path=f"/{connection.settings_dict['NAME']}", query=urllib.parse.urlencode(query))
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database,
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_DB": os.environ.get("TEST_REDIS_DB", "2"),
    }
    code = (
        "import django; django.setup(); "
        "from loyalty.services.processing import brand_events_drain; "
        f"brand_events_drain(brand_id={brand_id}, batch_size={batch_size})"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env)  # noqa: S603


def inside_a_batch(timeout: float = 60.0) -> None:
    """Wait until the drain process's connection is inside a transaction, after at least one batch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processed = Event.objects.exclude(status="pending").exists()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND xact_start IS NOT NULL",
                [APPLICATION],
            )
            in_transaction = cursor.fetchone()[0]
        if processed and in_transaction:
            return
        time.sleep(0.005)
    raise AssertionError("the drain process never got inside a batch")


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(coffee):
    bodies = [
        {
            "type": "purchase",
            "member": {"email": f"m{n % 400}@kill.example"},
            "order_id": f"K-{n}",
            "amount": f"{1 + n % 90}.50",
            "currency": "USD",
        }
        for n in range(6000)
    ]
    for start in range(0, len(bodies), 1000):
        accept(coffee, *bodies[start : start + 1000])

    for _ in range(2):  # kill two workers, each in the middle of a batch
        worker = drain_process(coffee.pk, batch_size=300)
        try:
            inside_a_batch()
            os.kill(worker.pid, signal.SIGKILL)
        finally:
            worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
    assert Event.objects.filter(status="pending").exists(), "the kills came too late to prove anything"

    survivor = drain_process(coffee.pk, batch_size=300)
    assert survivor.wait(timeout=300) == 0

    events = Event.objects.filter(brand=coffee)
    assert events.count() == 6000
    assert not events.filter(status="pending").exists()
    assert Transaction.objects.filter(kind="earn").count() == events.filter(status="awarded").count() == 6000
    earned = events.aggregate(total=Sum("points"))["total"]
    assert sum(membership_balance(m) for m in Membership.objects.filter(brand=coffee)) == earned
    assert ledger_problems() == []
