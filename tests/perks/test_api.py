import pytest

from loyalty.models import Membership
from perks.models import Redemption
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import AdjustmentFactory, BrandFactory, TierFactory
from tests.perks.factories import PerkFactory, funded_membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    brand = BrandFactory(slug="shop")
    membership = funded_membership(brand=brand, points=100, member__email="fan@example.com")
    return brand, membership, api_client_for(brand)


def redeem(client, perk, key="k1", email="fan@example.com"):
    body = {"member": {"email": email}, "perk": perk.pk}
    return client.post("/api/v1/redemptions", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_redeem_returns_a_code_the_cost_and_the_balance_after(shop):
    brand, _membership, client = shop
    perk = PerkFactory(brand=brand, cost=60)

    response = redeem(client, perk)

    assert response.status_code == 201
    body = response.json()
    assert (body["cost"], body["balance"], body["status"]) == (60, 40, "issued")
    assert len(body["code"]) >= 10
    assert not set(body["code"]) & set("01OIL5S2Z8B")  # no look-alike characters
    assert client.get(f"/api/v1/redemptions/{body['id']}").json()["code"] == body["code"]


def test_same_key_replays_and_spends_once(shop):
    brand, _membership, client = shop
    perk = PerkFactory(brand=brand, cost=10)
    first, again = redeem(client, perk, "same"), redeem(client, perk, "same")
    assert first.json() == again.json()
    assert Redemption.objects.count() == 1


def test_the_longest_idempotency_key_redeems_once(shop):
    brand, _membership, client = shop
    perk = PerkFactory(brand=brand, cost=10)
    key = "k" * 255

    first, again = redeem(client, perk, key), redeem(client, perk, key)

    assert first.status_code == 201, first.json()
    assert first.json() == again.json()
    assert Redemption.objects.count() == 1


@pytest.mark.parametrize(
    ("perk_kwargs", "code"),
    [
        ({"cost": 130}, "insufficient_points"),
        ({"stock": 0}, "out_of_stock"),
        ({"is_active": False}, "not_available"),
    ],
)
def test_refusals_are_422_with_the_reason(shop, perk_kwargs, code):
    brand, _membership, client = shop
    response = redeem(client, PerkFactory(brand=brand, **perk_kwargs))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    if code == "insufficient_points":
        assert response.json()["error"]["missing"] == 30


def test_tier_gated_perk_is_refused_below_the_tier_and_allowed_at_it(shop):
    brand, membership, client = shop
    gold = TierFactory(brand=brand, name="Gold", rank=2, threshold=500)
    perk = PerkFactory(brand=brand, cost=10, minimum_tier=gold)

    below = redeem(client, perk, "below")
    assert below.status_code == 422
    assert below.json()["error"]["code"] == "tier_required"

    Membership.objects.filter(pk=membership.pk).update(tier=gold)
    assert redeem(client, perk, "at").status_code == 201


def test_limit_reached_after_the_member_limit(shop):
    brand, _membership, client = shop
    perk = PerkFactory(brand=brand, cost=10, limit_per_day=1)
    assert redeem(client, perk, "a").status_code == 201
    second = redeem(client, perk, "b")
    assert second.json()["error"]["code"] == "limit_reached"


def test_perk_list_for_a_member_says_what_they_can_redeem_now(shop):
    brand, membership, client = shop
    cheap, dear = PerkFactory(brand=brand, cost=10), PerkFactory(brand=brand, cost=500)
    PerkFactory(brand=BrandFactory(), cost=1)  # another brand's perk never shows

    everything = client.get("/api/v1/perks").json()["results"]
    annotated = client.get("/api/v1/perks", {"member": membership.pk}).json()["results"]
    redeemable = client.get("/api/v1/perks", {"member": membership.pk, "redeemable": "true"}).json()["results"]

    assert {p["id"] for p in everything} == {cheap.pk, dear.pk}
    assert {p["id"]: p["reason"] for p in annotated} == {cheap.pk: None, dear.pk: "insufficient_points"}
    assert [p["id"] for p in redeemable] == [cheap.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"redeemable": "null"}, "redeemable"),
        ({"redeemable": "maybe", "member": "1"}, "redeemable"),
        ({"member": "-5"}, "member"),
        ({"member": "null"}, "member"),
        ({"member": ""}, "member"),
    ],
)
def test_perk_list_parameters_the_schema_does_not_allow_are_400(shop, params, field):
    _brand, _membership, client = shop

    response = client.get("/api/v1/perks", params)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_perk_list_redeemable_false_lists_every_perk_annotated(shop):
    brand, membership, client = shop
    cheap, dear = PerkFactory(brand=brand, cost=10), PerkFactory(brand=brand, cost=500)

    response = client.get("/api/v1/perks", {"member": membership.pk, "redeemable": "false"})

    assert {p["id"] for p in response.json()["results"]} == {cheap.pk, dear.pk}


def test_cancel_refunds_once_and_a_second_cancel_changes_nothing(shop):
    brand, _membership, client = shop
    perk = PerkFactory(brand=brand, cost=30, stock=3)
    redemption_id = redeem(client, perk).json()["id"]

    first = client.post(f"/api/v1/redemptions/{redemption_id}/cancel")
    second = client.post(f"/api/v1/redemptions/{redemption_id}/cancel")

    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert second.json()["balance"] == 100
    perk.refresh_from_db()
    assert perk.stock == 3


def test_a_till_consumes_a_voucher_once_and_refuses_used_cancelled_unknown_and_foreign_codes(shop):
    brand, _membership, client = shop
    perk = PerkFactory(brand=brand, cost=10)
    code = redeem(client, perk, "v1").json()["code"]
    cancelled_id = redeem(client, perk, "v2").json()["id"]
    client.post(f"/api/v1/redemptions/{cancelled_id}/cancel")
    cancelled_code = Redemption.objects.get(pk=cancelled_id).code

    consumed = client.post("/api/v1/vouchers/redeem", {"code": code.lower()}, format="json")
    assert consumed.status_code == 200
    assert consumed.json()["status"] == "fulfilled"

    for attempt, reason in (
        (code, "voucher_used"),
        (cancelled_code, "voucher_cancelled"),
        ("NOPE12345678", "voucher_unknown"),
    ):
        response = client.post("/api/v1/vouchers/redeem", {"code": attempt}, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (422, reason)

    other_brand_client = api_client_for(BrandFactory())
    response = other_brand_client.post("/api/v1/vouchers/redeem", {"code": cancelled_code}, format="json")
    assert response.json()["error"]["code"] == "voucher_unknown"


def test_another_brands_redemption_member_and_perk_are_404(shop):
    brand, _membership, client = shop
    other = BrandFactory()
    their_perk = PerkFactory(brand=other, cost=1)
    their_member = funded_membership(brand=other, points=5)
    from perks.services import perk_redeem

    theirs = perk_redeem(membership=their_member, perk=their_perk, request_key="x").redemption

    assert client.get(f"/api/v1/redemptions/{theirs.pk}").status_code == 404
    assert client.post(f"/api/v1/redemptions/{theirs.pk}/cancel").status_code == 404
    assert redeem(client, their_perk).status_code == 404
    body = {"member": {"email": their_member.member.email}, "perk": PerkFactory(brand=brand).pk}
    assert client.post("/api/v1/redemptions", body, format="json").status_code == 404
    assert client.get("/api/v1/perks", {"member": their_member.pk}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"member": {"email": "fan@example.com"}},
        {"member": {}, "perk": 1},
        {"member": {"email": "fan@example.com"}, "perk": "one"},
    ],
)
def test_malformed_redemptions_are_400(shop, body):
    _, _, client = shop
    response = client.post("/api/v1/redemptions", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


def test_a_refusal_is_replayed_for_its_key_even_once_the_member_could_pay(shop):
    brand, membership, client = shop
    perk = PerkFactory(brand=brand, cost=130)
    first = redeem(client, perk, "short")
    AdjustmentFactory(membership=membership, points=100, reason="top up")

    again = redeem(client, perk, "short")

    assert first.status_code == 422
    # The same answer, but for the id of the request that heard it.
    assert again.json()["error"]["request_id"] == again["X-Request-ID"] != first["X-Request-ID"]
    replayed = {"error": {**again.json()["error"], "request_id": first["X-Request-ID"]}}
    assert (again.status_code, replayed) == (first.status_code, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert redeem(client, perk, "another key").status_code == 201


def test_the_same_key_with_another_request_is_409_and_spends_nothing(shop):
    brand, _membership, client = shop
    perk, other = PerkFactory(brand=brand, cost=10), PerkFactory(brand=brand, cost=20)
    assert redeem(client, perk, "k").status_code == 201

    response = redeem(client, other, "k")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "idempotency_conflict")
    assert Redemption.objects.count() == 1


def test_an_unknown_member_or_perk_is_404_and_leaves_the_key_unused(shop):
    brand, _membership, client = shop
    perk = PerkFactory(brand=brand, cost=10)

    assert redeem(client, perk, "k", email="nobody@example.com").status_code == 404
    assert redeem(client, PerkFactory(brand=BrandFactory(), cost=1), "k").status_code == 404
    assert redeem(client, perk, "k").status_code == 201


def test_a_member_can_be_named_by_external_id(shop):
    brand, membership, client = shop
    Membership.objects.filter(pk=membership.pk).update(external_id="C-42")
    perk = PerkFactory(brand=brand, cost=10)
    body = {"member": {"external_id": "C-42"}, "perk": perk.pk}

    response = client.post("/api/v1/redemptions", body, format="json")

    assert (response.status_code, response.json()["member"], response.json()["balance"]) == (
        201,
        {"id": membership.pk},
        90,
    )
    mismatch = {"member": {"email": "fan@example.com", "external_id": "C-43"}, "perk": perk.pk}
    assert client.post("/api/v1/redemptions", mismatch, format="json").status_code == 404


def test_a_perk_id_beyond_any_id_is_404_not_a_crash(shop):
    _, _, client = shop
    body = {"member": {"email": "fan@example.com"}, "perk": 10**30}
    assert client.post("/api/v1/redemptions", body, format="json", HTTP_IDEMPOTENCY_KEY="big").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/redemptions", {"member": {"email": "x@example.com"}, "perk": "3"}, "perk"),
        ("/api/v1/redemptions", {"member": {"email": "x@example.com"}, "perk": 3.0}, "perk"),
        ("/api/v1/vouchers/redeem", {"code": 123456}, "code"),
    ],
)
def test_a_string_for_a_number_or_a_number_for_a_string_is_400(shop, path, body, field):
    _brand, _membership, client = shop

    response = client.post(path, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
