"""Helpers for tests of the event pipeline: accept events as the API does, process a brand's backlog."""

from __future__ import annotations

from loyalty.models import Brand, Event
from loyalty.selectors import brand_event_types
from loyalty.serializers import EventInput
from loyalty.services.ingest import Accepted, events_accept
from loyalty.services.processing import brand_events_drain


def accept(brand: Brand, *bodies: dict) -> list[Accepted]:
    """Validate and accept events (each a dict as the API receives it); fails the test on invalid input."""
    validator = EventInput(known_types=brand_event_types(brand.pk, fresh=True))
    items = []
    for body in bodies:
        clean, errors = validator.clean(body)
        assert errors is None, errors
        items.append(clean)
    return events_accept(brand=brand, items=items)


def accept_one(brand: Brand, body: dict) -> Event:
    [answer] = accept(brand, body)
    assert answer.http_status == 202, answer.body
    return Event.objects.get(pk=answer.event_id)


def process(brand: Brand, batch_size: int = 1000) -> int:
    """Process all of the brand's pending events now, in this thread (however long it takes)."""
    return brand_events_drain(brand_id=brand.pk, batch_size=batch_size, budget_seconds=None)
