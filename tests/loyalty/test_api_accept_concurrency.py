"""Concurrent single-event requests of one brand share INSERTs (config.batching): each still gets its own
answer, every event is stored once, and a duplicate sent at the same time replays the first."""

import pytest
from rest_framework.test import APIClient

from loyalty.models import Event
from tests.concurrency import run_concurrently
from tests.loyalty.conftest import api_client_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_sixty_concurrent_purchases_with_ten_duplicates_are_each_stored_once_and_answered_as_sent(coffee):
    key = api_client_for(coffee).api_key.plain_key

    def send(n):
        number = n % 50  # 0..9 are sent twice
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        body = {
            "type": "purchase",
            "member": {"email": f"c{number}@example.com"},
            "order_id": f"C-{number}",
            "amount": f"{number + 1}.00",
            "currency": "USD",
        }
        response = client.post("/api/v1/events", body, format="json")
        return number, response.status_code, response.json()

    answers = run_concurrently(send, 60)

    assert {status for _, status, _ in answers} == {202}
    assert all(body["order_id"] == f"C-{number}" for number, _, body in answers)
    assert all(body["amount"] == f"{number + 1}.00" for number, _, body in answers)
    ids = {number: set() for number in range(50)}
    for number, _, body in answers:
        ids[number].add(body["id"])
    assert all(len(found) == 1 for found in ids.values())  # a duplicate got its first's id back
    assert Event.objects.count() == 50
    assert sorted(Event.objects.values_list("order_id", flat=True)) == sorted(f"C-{n}" for n in range(50))
