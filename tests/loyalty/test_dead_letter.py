"""An event whose processing keeps failing (an error, not a rule) is counted, then set aside as failed,
so that its brand's later events are processed; staff can send it back once the cause is fixed."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.urls import reverse

from loyalty import engine
from loyalty.models import Event, Membership
from loyalty.selectors import membership_balance
from tests.loyalty.events import accept_one, process
from tests.loyalty.factories import BrandStaffFactory

pytestmark = pytest.mark.django_db


def _purchase(order_id: str, amount: str = "10") -> dict:
    return {
        "type": "purchase",
        "member": {"email": "dl@example.com"},
        "order_id": order_id,
        "amount": amount,
        "currency": "USD",
    }


@pytest.fixture
def poison(monkeypatch):
    """Makes processing fail, with an error, for the events whose ids are put in the returned set."""
    failing: set[int] = set()
    decide = engine.decide

    def failing_decide(*, events, **kwargs):
        if any(event.id in failing for event in events):
            raise ValueError("the rule engine choked")
        return decide(events=events, **kwargs)

    monkeypatch.setattr(engine, "decide", failing_decide)
    return failing


def test_a_failing_event_holds_its_brand_until_set_aside_then_the_rest_go_on(coffee, poison, settings):
    settings.EVENT_MAX_ATTEMPTS = 3
    first, bad, later = (accept_one(coffee, _purchase(order_id)) for order_id in ("D-1", "D-2", "D-3"))
    poison.add(bad.pk)

    process(coffee)  # the batch fails; one at a time: D-1 goes through, D-2 fails, D-3 waits behind it
    statuses = dict(Event.objects.values_list("pk", "status"))
    assert (statuses[first.pk], statuses[bad.pk], statuses[later.pk]) == ("awarded", "pending", "pending")
    bad.refresh_from_db()
    assert bad.attempts == 1 and "the rule engine choked" in bad.last_error

    process(coffee)
    process(coffee)  # the third failure sets it aside

    bad.refresh_from_db()
    later.refresh_from_db()
    assert (bad.status, bad.reason, bad.attempts) == ("failed", "processing_failed", 3)
    assert later.status == "awarded"
    assert membership_balance(Membership.objects.get(member__email="dl@example.com")) == 20
    call_command("reconcile")  # exits non-zero (SystemExit) on any difference


def test_transient_errors_are_retried_by_the_task_not_counted_against_the_event(coffee, monkeypatch):
    event = accept_one(coffee, _purchase("T-1"))

    def dropped(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(engine, "decide", dropped)
    with pytest.raises(OperationalError):
        process(coffee)  # the brand's very first batch: it created the issuance account, then rolled back
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("pending", 0)

    monkeypatch.undo()  # the connection is back: the same process goes on (no account remembered that is not there)
    process(coffee)
    event.refresh_from_db()
    assert (event.status, event.points) == ("awarded", 10)


def test_the_api_shows_a_set_aside_event_as_failed(coffee, coffee_api, poison, settings):
    settings.EVENT_MAX_ATTEMPTS = 1
    event = accept_one(coffee, _purchase("A-1"))
    poison.add(event.pk)
    process(coffee)

    body = coffee_api.get(f"/api/v1/events/{event.pk}").json()

    assert (body["status"], body["reason"], body["points"]) == ("failed", "processing_failed", 0)


def test_staff_see_failed_events_and_send_them_back_once_fixed(client, coffee, poison, settings):
    settings.EVENT_MAX_ATTEMPTS = 1
    event = accept_one(coffee, _purchase("P-1"))
    poison.add(event.pk)
    process(coffee)
    staff = BrandStaffFactory(brand=coffee).user
    client.force_login(staff)
    changelist = reverse("admin:loyalty_event_changelist")

    listed = client.get(changelist, {"status__exact": "failed"})
    assert [row.pk for row in listed.context["cl"].result_list] == [event.pk]

    poison.clear()  # the cause is fixed
    response = client.post(changelist, {"action": "retry_failed", "_selected_action": [event.pk]})
    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("pending", 0)
    process(coffee)
    event.refresh_from_db()
    assert (event.status, event.points) == ("awarded", 10)
