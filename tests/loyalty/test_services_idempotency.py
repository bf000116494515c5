"""loyalty.services.idempotency: a claim left in progress by a request that died does not hold its key."""

import datetime as dt

import pytest
from django.utils import timezone

from loyalty.models import IdempotencyRecord
from loyalty.services import idempotency
from loyalty.services.idempotency import RequestInProgressError, idempotent_call
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db


def claim_left_behind(brand, *, age_seconds: float) -> None:
    """What a request killed after claiming its key leaves: an in-progress record of that age."""
    record = IdempotencyRecord.objects.create(brand=brand, key="k-1", request_hash="fp")
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - dt.timedelta(seconds=age_seconds))


def test_a_retry_takes_over_a_claim_older_than_any_request_runs():
    brand = BrandFactory()
    claim_left_behind(brand, age_seconds=idempotency.STALE_CLAIM_SECONDS + 5)
    calls = []

    status, body, replayed = idempotent_call(
        brand=brand, key="k-1", fingerprint="fp", handler=lambda: calls.append(1) or (201, {"ok": True})
    )

    assert (status, body, replayed, calls) == (201, {"ok": True}, False, [1])
    record = IdempotencyRecord.objects.get(brand=brand, key="k-1")
    assert (record.state, record.response_status) == (IdempotencyRecord.State.DONE, 201)


def test_a_claim_younger_than_that_still_answers_in_progress(monkeypatch):
    monkeypatch.setattr(idempotency, "WAIT_FOR_FIRST_SECONDS", 0.2)
    brand = BrandFactory()
    claim_left_behind(brand, age_seconds=5)

    with pytest.raises(RequestInProgressError):
        idempotent_call(brand=brand, key="k-1", fingerprint="fp", handler=lambda: (201, {}))


@pytest.mark.django_db(transaction=True)
def test_retries_racing_for_a_stale_claim_run_the_work_once_and_all_answer_alike():
    from tests.concurrency import run_concurrently

    brand = BrandFactory()
    claim_left_behind(brand, age_seconds=idempotency.STALE_CLAIM_SECONDS + 5)
    runs = []

    def handler():
        runs.append(1)
        return 201, {"run": len(runs)}

    answers = run_concurrently(
        lambda _: idempotent_call(brand=brand, key="k-1", fingerprint="fp", handler=handler)[:2], 8
    )

    assert runs == [1]
    assert answers == [(201, {"run": 1})] * 8
