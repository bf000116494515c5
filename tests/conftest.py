"""Shared fixtures: real PostgreSQL and Redis (embedded unless URLs are given), a real Celery worker."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from loyalty.authentication import ApiKeyRateThrottle, _recent_keys
from loyalty.services import processing


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty test cache database (locks, counters, throttles), and nothing
    remembered by this process (API keys, brands' issuance accounts)."""
    cache.clear()
    _recent_keys.clear()
    ApiKeyRateThrottle._leases.clear()
    processing._issuance_accounts.clear()
    yield


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker, in a thread of this process, consuming from the real Redis broker.

    It shares this process's settings, so its tasks read and write the test database; tests that use
    it need committed data, hence `transactional_db`.
    """
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.conf.broker_pool_limit = None
    app.control.purge()  # messages left by earlier tests that ran without a worker
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING") as worker:
        yield worker
