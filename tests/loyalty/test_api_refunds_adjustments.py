"""Refunds (partial, full, after spending), adjustments and history through the API."""

import itertools

import pytest

from ledger.models import Account
from ledger.services import transaction_post
from loyalty.models import Adjustment, Event, IdempotencyRecord, Membership
from loyalty.services.accounts import brand_account

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/events?wait=true", body, format="json", **headers)


def buy_body(order_id="O-1", amount="10.00", email="r@example.com") -> dict:
    return {"type": "purchase", "member": {"email": email}, "order_id": order_id, "amount": amount, "currency": "USD"}


def buy(client, amount="10.00", order_id="O-1", email="r@example.com"):
    return post(client, buy_body(order_id, amount, email)).json()


_refund_keys = itertools.count()


def refund(client, amount, order_id="O-1", email="r@example.com", key=None):
    body = {"type": "refund", "member": {"email": email}, "order_id": order_id, "amount": amount}
    return post(client, body, key or f"refund-{order_id}-{next(_refund_keys)}")


def balance(client, member_id):
    return client.get(f"/api/v1/members/{member_id}").json()["balance"]


def test_partial_refunds_add_up_and_never_exceed_what_was_awarded(coffee_api, celery_worker):
    member_id = buy(coffee_api, "10.00")["member"]["id"]  # 10 Stars

    first = refund(coffee_api, "2.75", key="r1").json()
    second = refund(coffee_api, "2.75", key="r2").json()

    assert first["points"] == -2  # floor(10 x 2.75 / 10) = 2
    assert second["points"] == -3  # floor(10 x 5.50 / 10) = 5 in all, 3 more
    assert balance(coffee_api, member_id) == 5
    rest = refund(coffee_api, "4.50", key="r3").json()
    assert rest["points"] == -5  # the whole amount refunded: exactly what was awarded is taken back
    assert balance(coffee_api, member_id) == 0

    too_much = refund(coffee_api, "0.01", key="r4")
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "refund_exceeds_purchase"


def test_full_refund_reverses_exactly_what_was_awarded_at_a_multiplier(coffee_api, celery_worker):
    buy(coffee_api, "505.00", "G-1", "g@example.com")  # now Gold
    earned = buy(coffee_api, "5.50", "G-2", "g@example.com")
    assert earned["points"] == 6

    body = refund(coffee_api, "5.50", "G-2", "g@example.com").json()

    assert body["points"] == -6
    member = coffee_api.get(f"/api/v1/members/{earned['member']['id']}").json()
    assert member["balance"] == 505
    assert member["lifetime"]["earned"] == 505  # a refund takes back what it earned


def test_refund_after_the_points_were_spent_takes_what_the_wallet_holds(coffee_api, celery_worker):
    bought = buy(coffee_api, "10.00")
    membership = Membership.objects.get(pk=bought["member"]["id"])
    transaction_post(  # the member spends 8 of their 10 Stars
        idempotency_key="spend-1",
        kind="redeem",
        entries=[
            (membership.wallet, -8),
            (brand_account(brand=membership.brand, kind=Account.Kind.REDEMPTIONS), 8),
        ],
    )

    body = refund(coffee_api, "10.00").json()

    assert body["points"] == -2
    assert body["unrecovered_points"] == 8
    assert balance(coffee_api, membership.pk) == 0
    assert Event.objects.get(pk=body["id"]).unrecovered_points == 8


def test_refund_of_an_unknown_order_is_422_unknown_order(coffee_api, celery_worker):
    buy(coffee_api, "10.00", "MINE", "a@example.com")
    for order_id, email in (("NOPE", "a@example.com"), ("MINE", "someone-else@example.com")):
        response = refund(coffee_api, "1.00", order_id, email)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "unknown_order"


def test_adjustments_add_and_remove_with_a_reason_and_never_overdraw(coffee_api, celery_worker):
    member_id = buy(coffee_api, "10.00")["member"]["id"]
    ref = {"email": "r@example.com"}

    added = coffee_api.post(
        "/api/v1/adjustments",
        {"member": ref, "points": 25, "reason": "Spilled drink"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="adj-1",
    )
    assert added.status_code == 201
    assert added.json()["balance"] == 35
    assert added.json()["created_by"].startswith("API key")

    too_much = coffee_api.post(
        "/api/v1/adjustments",
        {"member": ref, "points": -36, "reason": "oops"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="adj-2",
    )
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "insufficient_points"
    assert too_much.json()["error"]["missing"] == 1

    no_reason = coffee_api.post(
        "/api/v1/adjustments", {"member": ref, "points": 5, "reason": ""}, format="json", HTTP_IDEMPOTENCY_KEY="adj-3"
    )
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["error"]["fields"]

    assert balance(coffee_api, member_id) == 35
    assert Adjustment.objects.count() == 1


def test_adjustment_with_an_idempotency_key_applies_once(coffee_api, celery_worker):
    buy(coffee_api, "10.00")
    body = {"member": {"email": "r@example.com"}, "points": 5, "reason": "birthday"}
    first = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="bday")
    again = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="bday")
    assert first.json() == again.json()
    assert Adjustment.objects.count() == 1


def test_an_adjustment_keyed_by_the_longest_idempotency_key_applies_once(coffee_api, celery_worker):
    buy(coffee_api, "10.00")
    body = {"member": {"email": "r@example.com"}, "points": 5, "reason": "birthday"}
    key = "k" * 255  # with the ledger's prefix, longer than its key column: it is hashed there

    first = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert first.status_code == 201, first.json()
    assert first.json() == again.json()
    assert Adjustment.objects.count() == 1


def test_history_is_signed_newest_first_and_paginated_by_cursor(coffee_api, celery_worker):
    member_id = buy(coffee_api, "10.00")["member"]["id"]
    refund(coffee_api, "5.00", key="half")
    coffee_api.post(
        "/api/v1/adjustments",
        {"member": {"email": "r@example.com"}, "points": 3, "reason": "sorry"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sorry-1",
    )

    page = coffee_api.get(f"/api/v1/members/{member_id}/transactions", {"limit": 2}).json()
    assert [(row["kind"], row["points"]) for row in page["results"]] == [("adjustment", 3), ("refund", -5)]
    assert page["results"][0]["reason"] == "sorry"
    rest = coffee_api.get(f"/api/v1/members/{member_id}/transactions", {"limit": 2, "cursor": page["next_cursor"]})
    assert [(row["kind"], row["points"], row["reference"]) for row in rest.json()["results"]] == [("earn", 10, "O-1")]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"type": "check_in", "member": {"email": "k@example.com"}},
        {"type": "refund", "member": {"email": "k@example.com"}, "order_id": "O-1", "amount": "1.00"},
    ],
    ids=["custom event", "refund"],
)
def test_an_event_without_a_natural_key_needs_an_idempotency_key(coffee_api, body):
    response = coffee_api.post("/api/v1/events", body, format="json")

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert not Event.objects.exists()


def test_a_batch_item_without_a_key_is_refused_alone_unless_the_request_has_one(coffee_api):
    items = [{"type": "check_in", "member": {"email": "k@example.com"}}, buy_body("B-1")]
    response = coffee_api.post("/api/v1/events/batch", {"events": items}, format="json")
    first, second = response.json()["results"]
    assert first["http_status"] == 400 and "idempotency_key" in first["body"]["error"]["fields"]
    assert second["http_status"] == 202

    keyed = coffee_api.post("/api/v1/events/batch", {"events": items}, format="json", HTTP_IDEMPOTENCY_KEY="up-1")
    assert [result["http_status"] for result in keyed.json()["results"]] == [202, 202]


def test_an_adjustment_needs_an_idempotency_key(coffee_api, celery_worker):
    buy(coffee_api, "10.00")
    body = {"member": {"email": "r@example.com"}, "points": 5, "reason": "goodwill"}
    response = coffee_api.post("/api/v1/adjustments", body, format="json")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert not Adjustment.objects.exists()


def test_an_adjustment_retried_after_its_replay_record_expired_still_adjusts_once(coffee_api, celery_worker):
    member_id = buy(coffee_api, "10.00")["member"]["id"]
    body = {"member": {"email": "r@example.com"}, "points": 5, "reason": "goodwill"}
    first = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="gw-1")
    IdempotencyRecord.objects.all().delete()  # what the purge does after IDEMPOTENCY_KEY_TTL_HOURS

    again = coffee_api.post("/api/v1/adjustments", body, format="json", HTTP_IDEMPOTENCY_KEY="gw-1")
    other = coffee_api.post("/api/v1/adjustments", {**body, "points": 50}, format="json", HTTP_IDEMPOTENCY_KEY="gw-1")

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert Adjustment.objects.count() == 1
    assert balance(coffee_api, member_id) == 15
