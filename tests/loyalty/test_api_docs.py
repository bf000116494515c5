import re

import pytest
import yaml

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    ("/api/v1/events", "post"),
    ("/api/v1/events/batch", "post"),
    ("/api/v1/events/simulate", "post"),
    ("/api/v1/events/{event_id}", "get"),
    ("/api/v1/members", "get"),
    ("/api/v1/members/{member_id}", "get"),
    ("/api/v1/members/{member_id}/transactions", "get"),
    ("/api/v1/adjustments", "post"),
    ("/api/v1/perks", "get"),
    ("/api/v1/redemptions", "post"),
    ("/api/v1/redemptions/{redemption_id}", "get"),
    ("/api/v1/redemptions/{redemption_id}/cancel", "post"),
    ("/api/v1/vouchers/redeem", "post"),
}


def test_schema_documents_every_endpoint_with_examples_and_error_codes(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    documented = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert documented >= ENDPOINTS
    for path, method in ENDPOINTS:
        operation = schema["paths"][path][method]
        responses = operation["responses"]
        assert "401" in responses, (path, method)
        examples = [
            example
            for response in responses.values()
            for media in response.get("content", {}).values()
            for example in media.get("examples", {}).values()
        ]
        assert examples, f"{method.upper()} {path} has no response example"
        if method == "post" and not path.endswith("/cancel"):  # cancel takes no body
            assert operation["requestBody"]["content"]["application/json"]["examples"], path


def test_interactive_docs_page_loads_its_assets_locally(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()


def test_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", validate=True, fail_on_warn=True, file=str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").stat().st_size > 1000


def schema_of(client) -> dict:
    return yaml.safe_load(client.get("/api/schema/").content)


def test_request_schemas_say_what_validation_requires(client):
    components = schema_of(client)["components"]["schemas"]

    assert components["MemberRef"]["anyOf"] == [{"required": ["email"]}, {"required": ["external_id"]}]
    events = components["EventBatchRequest"]["properties"]["events"]
    assert (events["items"], events["minItems"], events["maxItems"]) == ({}, 1, 1000)  # items judged one by one
    assert components["AdjustmentInput"]["properties"]["points"]["not"] == {"enum": [0]}
    assert components["EventInput"]["properties"]["metadata"]["type"] == "object"


def test_not_blank_is_what_trimming_keeps():
    """NOT_BLANK (the schema's pattern for trimmed text) matches a character exactly when str.strip() keeps it."""
    from loyalty.serializers import NOT_BLANK

    pattern = re.compile(NOT_BLANK)
    differ = [
        hex(code)
        for code in range(0x10000)
        if not 0xD800 <= code <= 0xDFFF and bool(pattern.search(chr(code))) != bool(chr(code).strip())
    ]
    assert differ == []


@pytest.mark.parametrize(
    "amount",
    ["5.50", "0.01", "0.1", "000.50", "5", "5.", ".05", "999999999999.99", "0", "0.00", "-1", "", ".", "1.234"],
)
def test_the_amount_pattern_takes_what_the_event_validator_takes(amount):
    from loyalty.serializers import AMOUNT_PATTERN, EventInput

    errors: dict = {}
    EventInput(known_types=frozenset())._amount({"amount": amount}, errors)

    assert bool(re.search(AMOUNT_PATTERN, amount)) == ("amount" not in errors)


def test_every_operation_documents_the_errors_the_api_can_answer_it_with(client):
    """413 on every /api/ path (config.middleware.ApiBodyLimitMiddleware, before any view); 401 and 429 on
    every API key operation (authentication, throttle); 400 and 415 wherever a JSON body is parsed."""
    operations = [
        (method, path, operation)
        for path, item in schema_of(client)["paths"].items()
        for method, operation in item.items()
    ]
    for method, path, operation in operations:
        documented = set(operation["responses"])
        expected = {"413"}
        if {"ApiKey": []} in operation.get("security", []):
            expected |= {"401", "429"}
        if "requestBody" in operation:
            expected |= {"400", "415"}
        assert expected <= documented, (method, path, sorted(expected - documented))
        for status in documented - {"200", "201", "202", "204"}:
            shape = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            assert shape.rsplit("/", 1)[1] in {"Error", "LiveError"}, (method, path, status)
