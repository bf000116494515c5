"""POST/GET/DELETE /api/v1/webhooks for the key's brand: 201 with the secret once, clear 400s in the error
shape, only http(s), and in production no private or loopback address (SSRF)."""

from __future__ import annotations

import pytest

from integrations.models import WebhookEndpoint
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks"


def test_a_brand_registers_lists_and_deletes_an_endpoint(coffee_api):
    created = coffee_api.post(URL, {"url": "https://crm.example.com/tally", "events": ["points.earned"]}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "url", "events", "secret"} and body["secret"].startswith("whsec_")
    assert body["events"] == ["points.earned"]
    listed = coffee_api.get(URL).json()
    assert [(row["id"], row["url"], row["enabled"]) for row in listed] == [(body["id"], body["url"], True)]
    assert "secret" not in listed[0]
    assert coffee_api.delete(f"{URL}/{body['id']}").status_code == 204
    assert coffee_api.delete(f"{URL}/{body['id']}").status_code == 404
    assert not WebhookEndpoint.objects.exists()


def test_no_events_means_every_type(coffee_api):
    body = coffee_api.post(URL, {"url": "https://crm.example.com/tally"}, format="json").json()

    assert body["events"] == []
    assert WebhookEndpoint.objects.get().receives("tier.changed")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://crm.example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({}, "url"),
        ({"url": "https://crm.example.com", "events": ["points.stolen"]}, "events"),
        ({"url": "https://crm.example.com", "events": "points.earned"}, "events"),
    ],
)
def test_bad_input_is_a_400_in_the_error_shape(coffee_api, body, field):
    answer = coffee_api.post(URL, body, format="json")

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_input"
    assert field in answer.json()["error"]["fields"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/hook", "http://localhost/hook", "http://10.1.2.3/", "http://169.254.169.254/latest"]
)
def test_private_and_loopback_addresses_are_refused_in_production(coffee_api, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False

    answer = coffee_api.post(URL, {"url": url}, format="json")

    assert answer.status_code == 400
    assert "url" in answer.json()["error"]["fields"]


def test_private_addresses_are_allowed_when_the_installation_says_so(coffee_api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True

    assert coffee_api.post(URL, {"url": "http://10.1.2.3/hook"}, format="json").status_code == 201


def test_a_brand_sees_and_deletes_only_its_own_endpoints(coffee_api):
    other = api_client_for(BrandFactory(slug="other"))
    theirs = other.post(URL, {"url": "https://other.example.com"}, format="json").json()

    assert coffee_api.get(URL).json() == []
    assert coffee_api.delete(f"{URL}/{theirs['id']}").status_code == 404
    assert WebhookEndpoint.objects.count() == 1


def test_no_key_no_webhooks(client):
    assert client.get(URL).status_code in (401, 403)
