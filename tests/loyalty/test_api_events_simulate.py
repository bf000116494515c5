"""POST /api/v1/events/simulate: what processing an event would do now, answered by the processor's own rules
on the state it would load, with nothing written. Each answer is checked against the real thing: the same
event then sent and processed."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import resolve
from django.utils import timezone
from rest_framework.test import APIClient

from ledger.models import Balance, Entry, Transaction
from loyalty import api
from loyalty.models import (
    AwardCounter,
    EarnRule,
    Event,
    IdempotencyRecord,
    Member,
    Membership,
    QualifyingBucket,
    Streak,
    TierChange,
)
from loyalty.services import dry_run
from tests.loyalty.conftest import api_client_for
from tests.loyalty.events import accept_one, process
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db

SIMULATE = "/api/v1/events/simulate"


def purchase(email: str, amount: str, order_id: str, **extra) -> dict:
    return {"type": "purchase", "member": {"email": email}, "order_id": order_id, "amount": amount} | {
        "currency": "USD",
        **extra,
    }


def simulate(client, body, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(SIMULATE, body, format="json", **headers)


def simulated(client, body, key: str | None = None) -> dict:
    response = simulate(client, body, key)
    assert response.status_code == 200, response.json()
    return response.json()


def answered(response) -> tuple[int, dict]:
    """Status and body, the error's request id (each request's own, as in its header) left out."""
    body = response.json()
    if "error" in body:
        error = dict(body["error"])
        assert error.pop("request_id") == response["X-Request-ID"]
        body = {**body, "error": error}
    return response.status_code, body


def sent(brand, body: dict, key: str | None = None) -> Event:
    """The event sent for real (accepted as the API accepts it) and processed."""
    event = accept_one(brand, body | ({"idempotency_key": key} if key else {}))
    process(brand)
    event.refresh_from_db()
    return event


def assert_as_processed(simulation: dict, event: Event) -> None:
    """The dry run said what processing then did."""
    assert (simulation["status"], simulation["reason"], simulation["points"]) == (
        event.status,
        event.reason,
        event.points,
    )
    assert simulation["network_points"] == event.network_points
    assert simulation["pending_until"] == (event.pending_until.isoformat() if event.pending_until else None)
    if event.status == Event.Status.AWARDED:
        assert simulation["balance_after"] == event.balance_after
        if event.tier_name:  # earns name the tier they earned at
            assert simulation["tier_before"] == event.tier_name
        if event.multiplier is not None:
            assert Decimal(simulation["multiplier"]) == event.multiplier
    membership = Membership.objects.select_related("tier").filter(pk=event.membership_id).first()
    assert simulation["tier_after"] == (membership.tier.name if membership and membership.tier else None)


def gold_member(coffee, email="gold@example.com") -> Membership:
    sent(coffee, purchase(email, "505.00", f"G-{email}"))  # 505 qualifying points: Gold, balance 505
    membership = Membership.objects.get(member__email=email)
    assert membership.tier.name == "Gold"
    return membership


def test_the_route_is_its_own_and_not_an_event_id():
    match = resolve(SIMULATE)
    assert (match.url_name, match.func.cls) == ("api_events_simulate", api.EventSimulate)


def test_a_gold_members_purchase_earns_at_1_2(coffee, coffee_api):
    gold_member(coffee)
    body = purchase("gold@example.com", "5.50", "G-2")

    simulation = simulated(coffee_api, body)

    assert simulation == {
        "status": "awarded",
        "reason": "",
        "points": 6,  # floor(5.50 x 1 x 1.2)
        "network_points": 0,
        "multiplier": "1.20",
        "tier_before": "Gold",
        "tier_after": "Gold",
        "balance_after": 511,
        "pending_until": None,
        "member_exists": True,
        "caps_left": {},
    }
    assert_as_processed(simulation, sent(coffee, body))


def test_the_purchase_that_crosses_a_threshold_names_the_new_tier_and_earns_at_the_old_rate(coffee, coffee_api):
    gold_member(coffee)
    body = purchase("gold@example.com", "2000.00", "G-3")  # 505 + 2,400 qualifying: Reserve (2,500)

    simulation = simulated(coffee_api, body)

    assert (simulation["points"], simulation["multiplier"]) == (2400, "1.20")  # Gold's rate, not Reserve's 1.7
    assert (simulation["tier_before"], simulation["tier_after"]) == ("Gold", "Reserve")
    assert simulation["balance_after"] == 2905
    assert_as_processed(simulation, sent(coffee, body))
    assert simulated(coffee_api, purchase("gold@example.com", "10.00", "G-4"))["multiplier"] == "1.70"


def test_a_purchase_in_a_return_window_is_pending_until_the_window_ends(coffee, coffee_api):
    EarnRule.objects.filter(brand=coffee, event_type="purchase").update(pending_days=14)
    body = purchase("window@example.com", "20.00", "W-1")

    simulation = simulated(coffee_api, body)

    today = timezone.now().astimezone(coffee.zone).date()
    assert simulation["pending_until"] == (today + dt.timedelta(days=14)).isoformat()
    assert (simulation["points"], simulation["balance_after"]) == (20, 0)  # earned, not spendable yet
    assert_as_processed(simulation, sent(coffee, body))


def test_a_network_brands_purchase_earns_network_points(shop):
    body = purchase("fan@example.com", "10.00", "S-1")

    simulation = simulated(api_client_for(shop), body)

    assert (simulation["points"], simulation["network_points"], simulation["tier_after"]) == (0, 100, None)
    assert_as_processed(simulation, sent(shop, body))


def test_caps_left_count_down_with_processed_events_and_the_event_over_the_cap_is_rejected(coffee, coffee_api):
    EarnRule.objects.create(brand=coffee, event_type="review", points=10, cap_per_day=2, cap_per_week=3)
    when = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    body = {"type": "review", "member": {"email": "critic@example.com"}, "occurred_at": when}

    first = simulated(coffee_api, body, key="s-1")
    assert (first["status"], first["points"], first["caps_left"]) == ("awarded", 10, {"day": 1, "week": 2})
    assert first["member_exists"] is False
    assert_as_processed(first, sent(coffee, body, key="r-1"))

    second = simulated(coffee_api, body, key="s-2")
    assert (second["status"], second["caps_left"], second["balance_after"]) == ("awarded", {"day": 0, "week": 1}, 20)
    assert_as_processed(second, sent(coffee, body, key="r-2"))

    over = simulated(coffee_api, body, key="s-3")
    assert (over["status"], over["reason"], over["points"]) == ("rejected", "cap_reached", 0)
    assert (over["caps_left"], over["multiplier"], over["balance_after"]) == ({"day": 0, "week": 1}, None, 20)
    assert_as_processed(over, sent(coffee, body, key="r-3"))


def test_an_uncapped_event_has_no_caps_left_and_a_rule_less_type_is_rejected(coffee, coffee_api):
    EarnRule.objects.create(brand=coffee, event_type="survey", points=3)
    body = {"type": "survey", "member": {"email": "fan@example.com"}}
    assert simulated(coffee_api, body, key="s-1")["caps_left"] == {}

    EarnRule.objects.filter(brand=coffee, event_type="survey").update(enabled=False)
    simulation = simulated(coffee_api, body, key="s-2")
    assert (simulation["status"], simulation["reason"], simulation["points"]) == ("rejected", "rule_inactive", 0)


def test_a_member_the_brand_does_not_have_is_simulated_as_new_and_nothing_is_created(coffee, coffee_api):
    other = BrandFactory(slug="elsewhere")
    sent(other, purchase("known@example.com", "1.00", "E-1"))  # a member, of another brand
    members, memberships = Member.objects.count(), Membership.objects.count()

    by_email = simulated(coffee_api, purchase("new@example.com", "10.00", "N-1"))
    by_external_id = simulated(coffee_api, {"type": "check_in", "member": {"external_id": "POS-9"}}, key="ci-1")
    of_another_brand = simulated(coffee_api, purchase("known@example.com", "3.00", "N-2"))

    assert by_email == {
        "status": "awarded",
        "reason": "",
        "points": 10,
        "network_points": 0,
        "multiplier": "1.00",
        "tier_before": "Green",  # the entry tier the processor gives a new member
        "tier_after": "Green",
        "balance_after": 10,
        "pending_until": None,
        "member_exists": False,
        "caps_left": {},
    }
    assert (by_external_id["points"], by_external_id["member_exists"], by_external_id["caps_left"]) == (
        5,
        False,
        {"day": 0},
    )
    assert (of_another_brand["points"], of_another_brand["member_exists"]) == (3, False)
    assert (Member.objects.count(), Membership.objects.count()) == (members, memberships)
    assert not Member.objects.filter(email="new@example.com").exists()
    assert_as_processed(by_email, sent(coffee, purchase("new@example.com", "10.00", "N-1")))


def test_an_email_of_a_member_with_another_external_id_is_a_member_mismatch(coffee, coffee_api):
    sent(coffee, {"type": "check_in", "member": {"email": "pos@example.com", "external_id": "POS-1"}}, key="ci-1")
    body = {"type": "check_in", "member": {"email": "pos@example.com", "external_id": "POS-2"}}

    simulation = simulated(coffee_api, body, key="ci-2")

    assert (simulation["status"], simulation["reason"], simulation["member_exists"]) == (
        "rejected",
        "member_mismatch",
        False,
    )
    assert_as_processed(simulation, sent(coffee, body, key="ci-2"))


def test_a_refund_is_simulated_against_its_purchase(coffee, coffee_api):
    sent(coffee, purchase("fan@example.com", "10.00", "P-1"))
    body = {"type": "refund", "member": {"email": "fan@example.com"}, "order_id": "P-1", "amount": "4.00"}

    simulation = simulated(coffee_api, body, key="rf-1")

    assert (simulation["status"], simulation["points"], simulation["balance_after"]) == ("awarded", -4, 6)
    assert (simulation["multiplier"], simulation["caps_left"], simulation["tier_after"]) == (None, {}, "Green")
    assert_as_processed(simulation, sent(coffee, body, key="rf-1"))


def test_a_refund_is_refused_as_sending_it_would_be(coffee, coffee_api):
    sent(coffee, purchase("fan@example.com", "10.00", "P-1"))
    unknown = {"type": "refund", "member": {"email": "fan@example.com"}, "order_id": "P-404", "amount": "1.00"}
    too_much = {"type": "refund", "member": {"email": "fan@example.com"}, "order_id": "P-1", "amount": "10.01"}
    other_member = {"type": "refund", "member": {"email": "else@example.com"}, "order_id": "P-1", "amount": "1.00"}

    for body, code in (
        (unknown, "unknown_order"),
        (too_much, "refund_exceeds_purchase"),
        (other_member, "unknown_order"),
    ):
        simulation = simulate(coffee_api, body, key="rf-x")
        real = coffee_api.post("/api/v1/events", body, format="json", HTTP_IDEMPOTENCY_KEY="rf-x")
        assert answered(simulation) == answered(real)
        assert (simulation.status_code, simulation.json()["error"]["code"]) == (422, code)


def test_a_refund_of_a_purchase_not_processed_yet_is_a_409(coffee, coffee_api):
    accept_one(coffee, purchase("fan@example.com", "10.00", "P-1"))  # pending
    body = {"type": "refund", "member": {"email": "fan@example.com"}, "order_id": "P-1", "amount": "1.00"}

    response = simulate(coffee_api, body, key="rf-1")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "purchase_pending")


def test_an_event_sent_before_is_not_simulated_again(coffee, coffee_api):
    event = sent(coffee, purchase("fan@example.com", "10.00", "P-1"))

    again = simulate(coffee_api, purchase("fan@example.com", "10.00", "P-1"))
    changed = simulate(coffee_api, purchase("fan@example.com", "11.00", "P-1"))
    other_key = simulate(coffee_api, purchase("fan@example.com", "10.00", "P-1"), key="till-9")

    assert (again.status_code, again.json()["error"]["code"], again.json()["error"]["event_id"]) == (
        409,
        "already_received",
        event.pk,
    )
    assert (changed.status_code, changed.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert (other_key.status_code, other_key.json()["error"]["code"]) == (409, "duplicate_order")


def rows() -> dict[str, int]:
    models = (
        Event,
        Member,
        Membership,
        Transaction,
        Entry,
        Balance,
        IdempotencyRecord,
        AwardCounter,
        QualifyingBucket,
        Streak,
        TierChange,
    )
    return {model.__name__: model.objects.count() for model in models}


def test_nothing_is_written(coffee, coffee_api, django_capture_on_commit_callbacks):
    gold_member(coffee)
    sent(coffee, {"type": "check_in", "member": {"email": "gold@example.com"}}, key="ci-0")
    before = rows()
    refund = {"type": "refund", "member": {"email": "gold@example.com"}, "order_id": "G-gold@example.com"}
    batch_key = {"HTTP_IDEMPOTENCY_KEY": "batch-1"}

    with django_capture_on_commit_callbacks() as callbacks:
        answers = [
            simulate(coffee_api, purchase("gold@example.com", "2000.00", "G-9")),  # awarded, a new tier
            simulate(coffee_api, purchase("new@example.com", "5.00", "N-1")),  # awarded, a new member
            simulate(coffee_api, {"type": "check_in", "member": {"email": "gold@example.com"}}, key="ci-1"),  # capped
            simulate(coffee_api, refund | {"amount": "100.00"}, key="rf-1"),  # a refund
            simulate(coffee_api, refund | {"amount": "600.00"}, key="rf-2"),  # more than is left: 422
            coffee_api.post(SIMULATE, purchase("batch@example.com", "1.00", "B-1"), format="json", **batch_key),
        ]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 422, 200]
    assert [answer.json().get("status") for answer in answers[:4]] == ["awarded", "awarded", "rejected", "awarded"]
    assert rows() == before
    assert callbacks == []  # no worker woken


def test_a_write_in_a_dry_run_fails_it_rather_than_lands(coffee, coffee_api, monkeypatch, caplog):
    loaded = dry_run.program_load

    def writing(brand):
        Member.objects.create(email="written@example.com")
        return loaded(brand)

    monkeypatch.setattr(dry_run, "program_load", writing)
    assert simulate(coffee_api, purchase("fan@example.com", "1.00", "A-1")).status_code == 500
    assert "cannot execute INSERT in a read-only transaction" in caplog.text

    monkeypatch.undo()
    assert not Member.objects.filter(email="written@example.com").exists()
    assert simulated(coffee_api, purchase("fan@example.com", "1.00", "A-1"))["status"] == "awarded"
    Member.objects.create(email="after@example.com")  # the transaction around it is writable again


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ([{"type": "purchase"}], None),  # not an object
        ({}, None),
        ({"type": "purchase", "member": {"email": "fan@example.com"}, "amount": "5"}, None),
        ({"type": "purchase", "member": {}, "order_id": "A", "amount": "-1", "currency": "usd"}, None),
        ({"type": "check_in", "member": {"email": "fan@example.com"}}, None),  # no Idempotency-Key
        ({"type": "check_inn", "member": {"email": "fan@example.com"}}, "k-1"),
        ({"type": "check_in", "member": {"email": "fan@example.com"}, "idempotency_key": " "}, "k-1"),  # body's too
        ({"type": "purchase", "member": {"email": "fan@example.com"}, "order_id": "A", "amount": "1"}, "tally:1"),
        (purchase("fan@example.com", "1.00", "A", occurred_at="2001-01-01T00:00:00Z"), None),
    ],
)
def test_bad_bodies_are_the_400s_of_the_events_endpoint(coffee_api, body, key):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    response = coffee_api.post(SIMULATE, body, format="json", **headers)
    real = coffee_api.post("/api/v1/events", body, format="json", **headers)

    assert response.status_code == 400
    assert answered(response) == answered(real)
    assert set(response.json()["error"]) == {"code", "message", "fields", "request_id"}


def test_malformed_json_and_another_content_type_are_refused_as_the_events_endpoint_refuses_them(coffee_api):
    for data, content_type in (("{not json", "application/json"), ("type=purchase", "text/plain")):
        response = coffee_api.post(SIMULATE, data, content_type=content_type)
        real = coffee_api.post("/api/v1/events", data, content_type=content_type)
        assert (response.status_code, response.json()["error"]["code"]) == (
            real.status_code,
            real.json()["error"]["code"],
        )
        assert response.status_code in (400, 415)


@pytest.mark.parametrize("authorization", [None, "Api-Key not-a-key", "Bearer x"])
def test_without_a_valid_api_key_it_is_refused_as_the_events_endpoint_refuses(coffee, authorization):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    body = purchase("fan@example.com", "1.00", "A-1")

    response = client.post(SIMULATE, body, format="json")
    real = client.post("/api/v1/events", body, format="json")

    assert response.status_code in (401, 403)
    assert answered(response) == answered(real)
    assert not Event.objects.exists()
