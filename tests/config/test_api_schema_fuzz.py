"""The OpenAPI schema tells the truth: schemathesis, with all its checks, against the WSGI app.

The schema is the one the app serves (`/api/schema/`, drf-spectacular). For every operation schemathesis
sends its examples, the boundary cases of each parameter and field (coverage) and generated requests,
valid and invalid (fuzzing), authenticated as the operation's security scheme says: a till with a real
API key of a seeded brand, or a fan's page with a logged-in session and its CSRF token (the livestream
lease and heartbeat), except where schemathesis leaves the credentials out or spoils them on purpose.

A test fails on any 5xx, any 4xx or 5xx not in the error shape, any status, content type or body the
schema does not document, any schema-valid request refused (but for the rules in BEYOND_THE_SCHEMA) and
any schema-violating request accepted.

Reproducible: a fixed seed, derandomized, no example database; no deadlines (a shared 2-core machine).
One test per operation, `test_<operationId>`, so that a failure names its operation.
`TALLY_FUZZ_EXAMPLES=500 pytest tests/config/test_api_schema_fuzz.py` fuzzes deeper.
"""

from __future__ import annotations

import json
import os
import re
import secrets

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from livestream import clock as live_clock
from livestream import selectors as live_selectors
from livestream import services as live_services
from loyalty import api as loyalty_api
from tests.livestream.factories import ChannelFactory, PlaylistItemFactory, member_user, watch_rule
from tests.loyalty.conftest import coffee  # noqa: F401 - the seeded brand, as a fixture
from tests.loyalty.factories import BrandApiKeyFactory
from tests.perks.factories import PerkFactory, funded_membership

# Generated requests per operation (fuzzing), on top of its examples and coverage cases.
MAX_EXAMPLES = int(os.environ.get("TALLY_FUZZ_EXAMPLES", "100"))
CHANNEL = "coffee-tv"  # the seeded channel: half of the slugs sent are it, the others made up

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261202,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # No NUL characters: the API refuses them in every string (PostgreSQL stores none), a rule
            # tests/loyalty/test_review_fixes.py asserts; a schema's string type cannot say it.
            "allow-x00": False,
        },
        "dictionaries": {"channels": {"values": [CHANNEL]}},
        "parameters": {"path.slug": {"dictionary": "channels", "probability": 0.5}},
        "checks": {
            # A schema-valid request may be refused by a business rule (422: an unknown voucher code, too
            # few points), as a well-formed request for an unknown id is a 404.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"],
            },
            # An adjustment for an unknown member is a 404 before its missing Idempotency-Key is looked at
            # (tests/loyalty/test_api_errors.py asserts it): refused either way.
            "missing_required_header": {"expected-statuses": ["400", "401", "403", "404", "406", "415", "422"]},
        },
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler(), config=CONFIG)

# Schema-valid requests the API refuses (400) on purpose, by rules an OpenAPI schema cannot state: they
# depend on another field, on the brand's data or on the clock. Each is said in the schema's descriptions
# and asserted by the tests of its endpoint. (operation, error field or "code:<code>", message)
BEYOND_THE_SCHEMA = [
    # A brand's custom event types are its own data (an unknown one is a 400, so that a typo is no rule).
    # The events' rules hold for their dry run too (the same validation).
    ("POST /api/v1/events(/simulate)?", "type", r"^Unknown event type "),
    # What a purchase or a refund needs, and the key that only a purchase does without (its order id).
    ("POST /api/v1/events(/simulate)?", "order_id|amount|currency", r"^Required for a (purchase|refund)\.$"),
    ("POST /api/v1/events(/simulate)?", "Idempotency-Key", r"^Required for a .* event: send an Idempotency-Key"),
    ("POST /api/v1/events(/simulate)?", "currency", r"is not an ISO 4217 currency code\.$"),
    (
        "POST /api/v1/events(/simulate)?",
        "occurred_at",
        r"^(Must be within the last \d+ days|Must not be in the future)\.$",
    ),
    # Loyalteez's manual-event call: the brand id must be the key's brand's (data, not schema), and what the
    # event it makes needs (an order's id and value, a custom event's key, the brand's own event types).
    ("POST /api/v1/compat/loyalteez/manual-event", "brandId", r"^Not the Loyalteez brand id"),
    ("POST /api/v1/compat/loyalteez/manual-event", r"metadata\.order_(id|value)", r".+"),
    ("POST /api/v1/compat/loyalteez/manual-event", "eventType", r"^Unknown event type "),
    ("POST /api/v1/compat/loyalteez/manual-event", "Idempotency-Key", r".+"),
    ("POST /api/v1/compat/loyalteez/manual-event", r"metadata(\.location_id)?|userEmail", r".+"),
    # Keys of the platform's own (watched minutes): a client's key may not start like one.
    ("POST /api/v1/.*", "Idempotency-Key", r"^Keys starting with 'tally:' are reserved\.$"),
    # One query parameter or the other, or both: OpenAPI has no "one of" for query parameters.
    ("GET /api/v1/members", "email", r"^Give email or external_id to look a member up\.$"),
    # A range of days: a real date (the pattern lets 2026-02-30 through), `from` not after `to`, ten years at most.
    (
        "GET /api/v1/reports/economics",
        "from|to",
        r"^(A date as YYYY-MM-DD, .*|Must not be after 'to'\.|A range of at most \d+ days\.)$",
    ),
    # A webhook URL: Django's URL validation (stricter than the schema's format), http(s) only, and in
    # production a public address.
    (
        "POST /api/v1/webhooks",
        "url",
        r"^(Enter a valid URL\.|Only http:// and https:// URLs with a host\.|.* address .*: refused\.|The host .*)$",
    ),
    # A cursor is only ever one that the statement gave out.
    ("GET /api/v1/members/{member_id}/transactions", "code:invalid_cursor", r""),
]


def _field_errors(fields: object, path: str = "") -> list[tuple[str, str]]:
    """(field, message) of every error in an error body's `fields`, nested ones under their outer field."""
    if isinstance(fields, dict):
        return [pair for name, value in fields.items() for pair in _field_errors(value, path or name)]
    if isinstance(fields, list):
        return [pair for value in fields for pair in _field_errors(value, path)]
    return [(path, str(fields))]


def _refused_beyond_the_schema(case, response) -> bool:
    if response.status_code != 400:
        return False
    error = json.loads(response.content)["error"]
    rules = [(field, text) for label, field, text in BEYOND_THE_SCHEMA if re.fullmatch(label, case.operation.label)]
    if any(field == f"code:{error['code']}" for field, _ in rules):
        return True
    errors = _field_errors(error["fields"])
    return bool(errors) and all(
        any(re.fullmatch(field, name) and re.search(text, message) for field, text in rules) for name, message in errors
    )


def positive_data_acceptance_beyond_the_schema(ctx, response, case):
    """schemathesis's positive_data_acceptance, but for the refusals in BEYOND_THE_SCHEMA."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _refused_beyond_the_schema(case, response):
            return None
        raise


def error_shape(ctx, response, case):
    """Every 4xx and 5xx is JSON in the error shape: {"error": {"code", "message", "fields"}}."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"{response.status_code} answered as {content_type!r}"
    body = json.loads(response.content)
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), body
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    assert isinstance(error.get("fields"), dict), body
    return None


@pytest.fixture
def credentials(db, coffee, monkeypatch):  # noqa: F811 - the fixture imported above
    """The credentials of each security scheme, (headers, cookies): the coffee brand's API key for a till,
    a fan's session and CSRF token for the TV page. With the data the schema's examples name: member
    fan@example.com / C-1001 with points, a perk, and a channel on air with a watch rule."""
    api_key = BrandApiKeyFactory(brand=coffee)
    funded_membership(brand=coffee, points=500, member__email="fan@example.com", external_id="C-1001")
    PerkFactory(brand=coffee, cost=60)
    watch_rule(coffee)
    channel = ChannelFactory(brand=coffee, slug=CHANNEL)
    for order in range(3):
        PlaylistItemFactory(channel=channel, duration_seconds=600, order=order)
    live_services.channel_schedule_publish(channel=channel, now=live_clock.now())
    live_selectors.caches_clear()
    user, _membership = member_user(coffee)
    browser = Client()
    browser.force_login(user)
    session = browser.cookies["sessionid"].value
    csrf = secrets.token_hex(16)  # a CSRF secret: 32 characters, the same in the cookie and the header

    monkeypatch.setattr(loyalty_api, "WAIT_SECONDS", 0.05)  # no worker runs: ?wait=true would wait 2 s
    # The WSGI app runs in this thread, inside the test's transaction: keep its connection open across
    # requests, as Django's test client does.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {
        "ApiKey": ({"Authorization": f"Api-Key {api_key.plain_key}"}, {}),
        # The cookies go both ways: schemathesis sends its cookie jar, and tells given credentials from
        # generated ones by the Cookie header.
        "cookieAuth": (
            {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf},
            {"sessionid": session, "csrftoken": csrf},
        ),
    }
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    live_selectors.caches_clear()


# What one example writes (an event, an adjustment), the operation's later examples may meet: the fixture
# serves all of them, and is rolled back after the operation's test.
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def _fuzz(case, credentials):
    headers, cookies = {}, {}
    # The credentials of the operation's security scheme, unless the case leaves them out or spoils them
    # on purpose: then it must be answered 401 or 403.
    if not case.operation.schema.is_security_param_negated(case):
        for requirement in case.operation.definition.raw.get("security", []):
            for scheme in requirement:
                headers.update(credentials[scheme][0])
                cookies.update(credentials[scheme][1])
    case.call_and_validate(
        headers=headers,
        cookies=cookies,
        excluded_checks=[positive_data_acceptance],
        additional_checks=[positive_data_acceptance_beyond_the_schema, error_shape],
    )


# One test per operation, named after its operationId: schemathesis's own items (one per operation of a
# single test) all get the same node id under pytest 9.2. Every operation in the schema gets its test.
for _result in schema.get_all_operations():
    _operation_id = _result.ok().definition.raw["operationId"]
    globals()[f"test_{_operation_id}"] = schema.include(operation_id=_operation_id).parametrize()(_fuzz)
