"""loyalty.services.processing: a drain hands its worker back when its time budget is spent."""

import pytest

from loyalty.models import Event
from loyalty.services.processing import brand_events_drain
from tests.loyalty.events import accept, process

pytestmark = pytest.mark.django_db


def test_a_drain_over_its_budget_stops_after_one_batch_and_leaves_the_rest_pending(coffee):
    bodies = [
        {"type": "purchase", "member": {"email": f"b{n}@example.com"}, "order_id": f"B-{n}", "amount": "2.00"}
        | {"currency": "USD"}
        for n in range(30)
    ]
    accept(coffee, *bodies)

    processed = brand_events_drain(brand_id=coffee.pk, batch_size=10, budget_seconds=0)

    assert processed == 10  # and it queued a task to go on (a worker's job; none runs in this test)
    assert Event.objects.filter(status=Event.Status.PENDING).count() == 20
    assert process(coffee, batch_size=10) == 20
    assert not Event.objects.filter(status=Event.Status.PENDING).exists()
