"""POST /api/v1/events/batch: up to 1,000 events, one answer per item, idempotent per item and per request."""

import pytest

from ledger.models import Transaction
from loyalty.models import Event, Membership
from loyalty.selectors import membership_balance
from tests.ledger.helpers import ledger_problems
from tests.loyalty.conftest import event_processed
from tests.loyalty.events import process

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/batch"


def purchase(order_id: str, amount: str = "10.00", email: str = "b@example.com", **extra) -> dict:
    return {
        "type": "purchase",
        "member": {"email": email},
        "order_id": order_id,
        "amount": amount,
        "currency": "USD",
        **extra,
    }


def post(client, events, **headers):
    return client.post(URL, {"events": events}, format="json", **headers)


def test_each_item_gets_the_answer_the_single_endpoint_gives_in_order(coffee_api):
    response = post(
        coffee_api,
        [
            purchase("B-1"),
            {**purchase("B-2"), "amount": "ten"},
            {"type": "teleport", "member": {"external_id": "C-1"}},
            {"type": "check_in", "member": {"external_id": "C-1"}, "idempotency_key": "ci-1"},
            purchase("B-1"),  # the same purchase again: a replay
            purchase("B-1", amount="11.00"),  # the same order id, another body
        ],
    )

    assert response.status_code == 200, response.content
    body = response.json()
    statuses = [result["http_status"] for result in body["results"]]
    assert statuses == [202, 400, 400, 202, 202, 409]
    assert body["results"][1]["body"]["error"]["fields"] == {"amount": ["A valid number is required."]}
    assert "Unknown event type 'teleport'" in body["results"][2]["body"]["error"]["fields"]["type"][0]
    assert body["results"][4]["body"]["id"] == body["results"][0]["body"]["id"]
    assert body["results"][5]["body"]["error"]["code"] == "idempotency_conflict"
    assert (body["accepted"], body["replayed"], body["refused"]) == (2, 1, 3)
    assert Event.objects.count() == 2

    process(coffee_api.api_key.brand)

    assert set(Event.objects.values_list("status", flat=True)) == {"awarded"}
    assert membership_balance(Membership.objects.get(member__email="b@example.com")) == 10


@pytest.mark.parametrize(
    "body",
    [
        [purchase("X")],
        {"events": purchase("X")},
        {"events": []},
        {"events": "nope"},
        {"event": [purchase("X")]},
        {"events": [purchase(f"X-{n}") for n in range(1001)]},
    ],
)
def test_a_body_that_is_not_an_object_with_1_to_1000_events_is_400(coffee_api, body):
    response = coffee_api.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    assert "events" in response.json()["error"]["fields"]
    assert not Event.objects.exists()


def test_a_body_over_the_size_limit_is_413_in_the_error_shape(coffee_api, settings):
    settings.API_BODY_LIMITS = {"/api/v1/events/batch": 1000}
    response = post(coffee_api, [purchase(f"X-{n}", note="x" * 100) for n in range(20)])
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_the_request_key_replays_the_whole_answer_and_keys_items_without_one(coffee_api):
    events = [purchase("K-1"), {"type": "check_in", "member": {"email": "k@example.com"}}]
    first = post(coffee_api, events, HTTP_IDEMPOTENCY_KEY="upload-7")
    again = post(coffee_api, events, HTTP_IDEMPOTENCY_KEY="upload-7")
    other = post(coffee_api, [purchase("K-2")], HTTP_IDEMPOTENCY_KEY="upload-7")

    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    check_in = Event.objects.get(type="check_in")
    assert check_in.idempotency_key == "upload-7:1"  # a retry after a crash half-way counts it once
    assert Event.objects.count() == 2


def test_a_refund_in_the_same_batch_as_its_purchase_is_processed_after_it(coffee_api):
    refund = {
        "type": "refund",
        "member": {"email": "r@example.com"},
        "order_id": "R-1",
        "amount": "4.00",
        "idempotency_key": "r-1",
    }
    too_much = {**refund, "amount": "7.00", "idempotency_key": "r-2"}
    response = post(coffee_api, [purchase("R-1", email="r@example.com"), refund, too_much])

    assert [result["http_status"] for result in response.json()["results"]] == [202, 202, 422]
    assert response.json()["results"][2]["body"]["error"]["code"] == "refund_exceeds_purchase"

    process(coffee_api.api_key.brand, batch_size=1000)

    purchase_event, refund_event = Event.objects.order_by("id")
    assert (purchase_event.points, purchase_event.refunded_points) == (10, 4)
    assert (refund_event.status, refund_event.points) == ("awarded", -4)
    assert membership_balance(Membership.objects.get(member__email="r@example.com")) == 6
    assert ledger_problems() == []


def test_ten_thousand_events_with_duplicates_each_get_exactly_one_outcome(coffee_api):
    brand = coffee_api.api_key.brand
    sent = set()
    for batch in range(10):
        events = []
        for n in range(1000):
            # 1 in 20 is a repeat of an event of the previous batch (a till retrying): replayed.
            number = (batch - 1) * 1000 + n + 1 if batch and n % 20 == 0 else batch * 1000 + n
            sent.add(number)
            events.append(purchase(f"T-{number}", amount=f"{1 + number % 50}.00", email=f"m{number % 300}@x.example"))
        answers = post(coffee_api, events).json()["results"]
        assert {answer["http_status"] for answer in answers} == {202}

    process(brand)

    events = Event.objects.filter(brand=brand)
    assert events.count() == len(sent)
    assert sorted(int(order_id[2:]) for order_id in events.values_list("order_id", flat=True)) == sorted(sent)
    assert not events.filter(status="pending").exists()
    awarded = events.filter(status="awarded")
    assert Transaction.objects.filter(kind="earn").count() == awarded.count() == len(sent)
    for membership in Membership.objects.filter(brand=brand):
        earned = sum(awarded.filter(membership=membership).values_list("points", flat=True))
        assert membership_balance(membership) == earned == membership.lifetime_earned
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_processed_by_the_worker_woken_by_its_accept(coffee_api, celery_worker):
    events = [purchase(f"W-{n}", amount="3.00", email=f"w{n % 5}@example.com") for n in range(50)]
    answers = post(coffee_api, events).json()["results"]

    last = event_processed(answers[-1]["body"]["id"])

    assert last.status == "awarded"
    assert not Event.objects.filter(status="pending").exists()
    assert sum(membership_balance(m) for m in Membership.objects.all()) == 150
