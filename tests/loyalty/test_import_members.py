"""Importing members and balances from a CSV (loyalty.services.imports): the command with its dry run, bad rows
reported by line, idempotency, the economics it leaves behind, the portal's upload -> preview -> confirm, and
two imports of one file at once."""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import random
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from economics.selectors import figures, outstanding_now
from ledger.models import Balance, Entry, Transaction
from loyalty.models import DailyPoints, Member, Membership, MemberWeek, PointsLot, Tier, TierChange
from loyalty.selectors import membership_balance
from loyalty.services import imports
from loyalty.services.imports import ImportFileError, members_import
from loyalty.services.rollups import economics_rollups_rebuild
from tests.concurrency import run_concurrently
from tests.loyalty.events import accept, process
from tests.loyalty.factories import BrandFactory, BrandStaffFactory, MemberFactory, UserFactory
from tests.loyalty.lifecycle import books_clean, buy, membership_of, on, run_lifecycle

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:loyalty_membership_import")
TIERS = ["", "Green", "Gold", "Reserve"]


def csv_bytes(rows: list[dict], columns=("email", "external_id", "name", "balance", "tier"), bom=False) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    data = out.getvalue().encode()
    return codecs.BOM_UTF8 + data if bom else data


def members_file(count: int, seed: int = 7) -> list[dict]:
    """`count` members as a brand moving over has them: by email, by the brand's own id, or both; with and
    without a balance, a tier, a name."""
    chance = random.Random(seed)
    rows = []
    for n in range(count):
        how = n % 3
        rows.append(
            {
                "email": f"Fan{n}@Example.com " if how != 1 else "",  # case and spaces, as spreadsheets have them
                "external_id": f"POS-{n}" if how != 0 else "",
                "name": f"Fan {n}" if n % 4 else "",
                "balance": str(chance.choice([0, 1, 25, 480, 1234, 99_999])) if n % 10 else "",
                "tier": chance.choice(TIERS),
            }
        )
    return rows


def write(tmp_path, content: bytes, name: str = "members.csv") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def command(path: str, brand: str = "coffee", *flags: str) -> str:
    out = io.StringIO()
    call_command("import_members", "--brand", brand, path, *flags, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def snapshot() -> dict:
    return {
        "members": Member.objects.count(),
        "memberships": Membership.objects.count(),
        "transactions": Transaction.objects.count(),
        "entries": Entry.objects.count(),
        "tier_changes": TierChange.objects.count(),
        "names": sorted(Membership.objects.values_list("name", flat=True)),
        "daily": list(DailyPoints.objects.order_by("pk").values_list("kind", "points")),
    }


def wallets_total(brand) -> int:
    total = Balance.objects.filter(account__code__startswith=f"brand:{brand.pk}:wallet:").aggregate(Sum("balance"))
    return total["balance__sum"] or 0


def daily_points(brand) -> set:
    return set(DailyPoints.objects.filter(brand=brand).values_list("day", "tier_name", "kind").annotate(Sum("points")))


def membership_for(brand, row: dict) -> Membership:
    if row["external_id"]:
        return Membership.objects.select_related("tier", "wallet").get(brand=brand, external_id=row["external_id"])
    return Membership.objects.select_related("tier", "wallet").get(
        brand=brand, member__email=row["email"].strip().lower()
    )


# --- the command: dry run, import, import again -------------------------------------------------------------


def test_a_dry_run_writes_nothing_then_the_import_applies_every_row_then_again_changes_nothing(coffee, tmp_path):
    rows = members_file(1000)
    path = write(tmp_path, csv_bytes(rows))
    before = snapshot()

    dry = command(path, "coffee", "--dry-run")

    assert snapshot() == before
    assert "1000 rows read, 1000 applied, 0 skipped (dry run: nothing was written)" in dry
    assert "members would be created: 1000, memberships would be created: 1000" in dry
    expected_points = sum(int(row["balance"] or 0) for row in rows)
    posted = sum(1 for row in rows if int(row["balance"] or 0))
    assert f"balances would be posted: {posted} ({expected_points} points)" in dry
    assert "given a tier that needs qualifying points" in dry  # the coffee brand moves members down at once

    done = command(path)

    # The dry run said what the import did, figure for figure.
    assert [line.replace("would be ", "") for line in dry.splitlines()[1:5]] == done.splitlines()[1:5]
    assert Membership.objects.filter(brand=coffee).count() == 1000
    green = Tier.objects.get(brand=coffee, name="Green")
    for row in rows:
        membership = membership_for(coffee, row)
        assert membership_balance(membership) == int(row["balance"] or 0), row
        assert membership.tier.name == (row["tier"] or green.name), row
        assert membership.name == row["name"]
        if row["email"]:
            assert membership.member.email == row["email"].strip().lower()
    imports = Transaction.objects.filter(kind="import")
    assert imports.count() == posted
    assert set(imports.values_list("idempotency_key", flat=True)) == {
        f"import:{m.pk}" for m in Membership.objects.filter(brand=coffee) if membership_balance(m)
    }
    assert outstanding_now(coffee) == wallets_total(coffee) == expected_points
    moved = {row["tier"] for row in rows if row["tier"] not in ("", "Green")}
    assert set(TierChange.objects.filter(reason="import").values_list("to_name", flat=True)) == moved
    books_clean()

    after = snapshot()
    again = command(path)

    assert snapshot() == after
    assert "balances posted: 0 (0 points)" in again
    assert "unchanged: 1000" in again
    books_clean()


def test_an_imported_balance_counts_as_adjusted_not_issued_and_not_as_earned(coffee, tmp_path):
    buy(coffee, "O-1", "40.00", {"email": "old@example.com"})  # 40 Stars issued, earned
    rows = [{"email": "a@example.com", "balance": "300"}, {"email": "old@example.com", "balance": "60"}]

    report = members_import(brand=coffee, content=csv_bytes(rows, columns=("email", "balance")))

    assert (report.balances_posted, report.points_posted) == (2, 360)
    today = timezone.now().astimezone(coffee.zone).date()
    kinds = dict(DailyPoints.objects.filter(brand=coffee).values_list("kind").annotate(Sum("points")))
    assert kinds == {"issued": 40, "adjusted": 360}
    numbers = figures(coffee, start=today, end=today)
    assert (numbers.issued, numbers.adjusted, numbers.outstanding) == (40, 360, 400)
    assert outstanding_now(coffee) == wallets_total(coffee) == 400
    assert membership_of(coffee, "a@example.com").lifetime_earned == 0  # not earned in this program
    assert membership_of(coffee, "old@example.com").lifetime_earned == 40
    # Not an active member's week (only earning and redeeming are), and a lot of the import's month.
    assert not MemberWeek.objects.filter(membership=membership_of(coffee, "a@example.com")).exists()
    lot = PointsLot.objects.get(membership=membership_of(coffee, "a@example.com"))
    assert (lot.month, lot.points) == (today.replace(day=1), 300)
    # The rebuild from the ledger classifies the import as the posting path did.
    kept = daily_points(coffee)
    economics_rollups_rebuild(brand=coffee)
    assert daily_points(coffee) == kept


def test_a_member_imported_before_with_another_balance_is_reported_and_nothing_posted(coffee, tmp_path):
    first = [{"email": "a@example.com", "balance": "100"}, {"email": "b@example.com", "balance": "50"}]
    members_import(brand=coffee, content=csv_bytes(first, columns=("email", "balance")))
    changed = [
        {"email": "a@example.com", "balance": "150"},  # line 2: a new figure
        {"email": "b@example.com", "balance": "50"},  # line 3: as before
        {"email": "c@example.com", "balance": "10"},  # line 4: new
    ]
    content = csv_bytes(changed, columns=("email", "balance"))

    dry = members_import(brand=coffee, content=content, dry_run=True)
    report = members_import(brand=coffee, content=content)

    for result in (dry, report):
        assert [(p.line, p.reason) for p in result.skipped] == [
            (2, "already imported with 100 points; adjust it in the portal")
        ]
        assert (result.balances_posted, result.points_posted, result.unchanged) == (1, 10, 1)
    assert membership_balance(membership_of(coffee, "a@example.com")) == 100
    assert Transaction.objects.filter(kind="import").count() == 3


def test_an_existing_member_keeps_their_tier_unless_the_file_names_one_and_a_known_person_joins(coffee):
    buy(coffee, "O-1", "600.00", {"email": "gold@example.com"})  # earns Gold
    other = BrandFactory(slug="other")
    MemberFactory(email="known@example.com")  # a person Tally knows from another club
    assert membership_of(coffee, "gold@example.com").tier.name == "Gold"
    rows = [
        {"email": "gold@example.com", "tier": "", "name": "Goldie"},
        {"email": "known@example.com", "tier": "reserve"},  # tier names are matched whatever their case
    ]

    preview = members_import(brand=coffee, content=csv_bytes(rows, columns=("email", "tier", "name")), dry_run=True)
    report = members_import(brand=coffee, content=csv_bytes(rows, columns=("email", "tier", "name")))

    assert [(row.member, row.tier) for row in preview.preview] == [
        ("already a member", "Gold"),
        ("joins the club", "Reserve"),
    ]
    assert (report.members_created, report.memberships_created, report.tiers_set, report.names_set) == (0, 1, 1, 1)
    gold, known = membership_of(coffee, "gold@example.com"), membership_of(coffee, "known@example.com")
    assert (gold.tier.name, gold.name) == ("Gold", "Goldie")
    assert known.tier.name == "Reserve"
    change = TierChange.objects.get(membership=known)
    assert (change.from_name, change.to_name, change.reason) == ("Green", "Reserve", "import")
    assert not Membership.objects.filter(brand=other).exists()


def test_an_imported_tier_is_kept_under_the_end_of_period_policy_and_the_at_once_policy_is_warned_of(coffee):
    tea = BrandFactory(slug="tea", tier_downgrade="end_of_period")
    for rank, (name, threshold) in enumerate([("Leaf", 0), ("Pot", 500)], start=1):
        Tier.objects.create(brand=tea, name=name, rank=rank, threshold=threshold)
    content = csv_bytes([{"email": "fan@example.com", "tier": "Gold"}], columns=("email", "tier"))
    with on("2026-03-10"):
        at_once = members_import(brand=coffee, content=content)
        kept = members_import(brand=tea, content=content.replace(b"Gold", b"Pot"))

    assert "the next daily run moves them to the tier their points earn" in at_once.notes[0]
    assert kept.notes == []
    assert membership_of(tea, "fan@example.com").tier_valid_until == dt.date(2027, 3, 31)
    run_lifecycle(coffee, "2026-03-11")
    run_lifecycle(tea, "2026-03-11")
    assert membership_of(coffee, "fan@example.com").tier.name == "Green"  # no qualifying points: moved down
    assert membership_of(tea, "fan@example.com").tier.name == "Pot"  # kept until its date


# --- bad rows and bad files ---------------------------------------------------------------------------------


def test_bad_rows_are_reported_by_line_and_skipped_while_the_others_apply(coffee):
    Membership.objects.create(
        member=MemberFactory(email="taken@example.com"), brand=coffee, external_id="POS-9"
    )  # the brand knows them as POS-9
    content = (
        b"Email,External ID,balance,tier,name\n"  # line 1: the header, names as a spreadsheet writes them
        b"good@example.com,,10,,Good\n"  # 2
        b"not-an-email,,10,,\n"  # 3
        b"neg@example.com,,-5,,\n"  # 4
        b"tier@example.com,,5,Platinum,\n"  # 5
        b",,7,,Nobody\n"  # 6
        b"GOOD@example.com,,99,,Again\n"  # 7: the same member as line 2
        b"\n"  # 8: a blank line, not a row
        b'"multi@example.com",,"12",,"Two\nlines"\n'  # 9-10: a quoted value over two lines
        b"frac@example.com,,1.5,,\n"  # 11
        b",POS-2,3,gold,\n"  # 12
        b",POS-2,4,,\n"  # 13: the same member as line 12
        b"taken@example.com,POS-1,5,,\n"  # 14: known under another external id
        b"extra@example.com,,1,,,surplus\n"  # 15
    )

    report = members_import(brand=coffee, content=content)

    assert [(problem.line, problem.reason) for problem in report.skipped] == [
        (3, "email: 'not-an-email' is not a valid email address"),
        (4, "balance: -5 is negative"),
        (5, "tier: 'Platinum' is not one of the brand's tiers (Green, Gold, Reserve)"),
        (6, "no email and no external_id: one is needed to know the member"),
        (7, "the same member as line 2 (the first row of a member is the one imported)"),
        (11, "balance: '1.5' is not a whole number of points"),
        (13, "the same member as line 12 (the first row of a member is the one imported)"),
        (14, "taken@example.com is a member already, under another external id than POS-1"),
        (15, "6 values, but line 1 names 5 columns"),
    ]
    assert (report.rows_read, report.applied) == (12, 3)
    assert membership_balance(membership_of(coffee, "good@example.com")) == 10
    assert membership_of(coffee, "good@example.com").name == "Good"
    assert membership_balance(membership_of(coffee, "multi@example.com")) == 12
    assert membership_of(coffee, "multi@example.com").name == "Two\nlines"
    pos2 = Membership.objects.get(brand=coffee, external_id="POS-2")
    assert (membership_balance(pos2), pos2.tier.name, pos2.member.email) == (3, "Gold", None)
    assert not Member.objects.filter(email__in=["neg@example.com", "tier@example.com", "extra@example.com"]).exists()


def test_the_external_id_of_another_person_and_an_inactive_membership_are_refused(coffee):
    Membership.objects.create(member=MemberFactory(email="ann@example.com"), brand=coffee, external_id="A-1")
    Membership.objects.create(member=MemberFactory(email="gone@example.com"), brand=coffee, status="left")
    content = csv_bytes(
        [
            {"email": "bob@example.com", "external_id": "A-1", "balance": "5"},
            {"email": "gone@example.com", "balance": "5"},
        ],
        columns=("email", "external_id", "balance"),
    )

    report = members_import(brand=coffee, content=content)

    assert [(p.line, p.reason) for p in report.skipped] == [
        (2, "the external id A-1 is another member's (not bob@example.com)"),
        (3, "the membership is left: make it active in the portal first"),
    ]
    assert not Transaction.objects.filter(kind="import").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty"),
        ("email,balance\ncaf\u00e9@example.com,5\n".encode("latin-1"), "The file is not UTF-8 text (byte 18 is not)"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "it contains NUL bytes"),
        (b"email,points,level\nx@example.com,5,Gold\n", "Unknown columns 'points', 'level' on line 1"),
        (b"name,balance\nAnn,5\n", "Line 1 names neither an email nor an external_id column"),
        (b"email,email\na@example.com,b@example.com\n", "The column email appears twice on line 1"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(coffee, content, message):
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        members_import(brand=coffee, content=content)
    assert not Member.objects.exists()


def test_the_command_refuses_a_missing_file_an_unknown_brand_and_a_file_not_csv(coffee, tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        command(str(tmp_path / "nope.csv"))
    with pytest.raises(CommandError, match="No brand with the slug 'tea'"):
        command(write(tmp_path, b"email\n"), "tea")
    with pytest.raises(CommandError, match="not UTF-8"):
        command(write(tmp_path, b"email\n\xff\xfe@example.com\n"))
    with pytest.raises(CommandError, match="Cannot read"):
        command(str(tmp_path))


def test_excels_byte_order_mark_and_semicolons_are_read(coffee, tmp_path):
    content = codecs.BOM_UTF8 + "email;balance;name\r\nzoe@example.com;7;Zoé\r\n".encode()

    out = command(write(tmp_path, content))

    assert "1 rows read, 1 applied, 0 skipped" in out
    membership = membership_of(coffee, "zoe@example.com")
    assert (membership_balance(membership), membership.name) == (7, "Zoé")


# --- the portal ------------------------------------------------------------------------------------------------


def upload(client: Client, brand, content: bytes, name: str = "members.csv"):
    return client.post(
        IMPORT_URL, {"step": "preview", "brand": brand.pk, "file": _file(content, name)}, format="multipart"
    )


def _file(content: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="text/csv")


def confirm(client: Client, preview):
    return client.post(
        IMPORT_URL, {"step": "confirm", "token": preview.context["token"], "sha256": preview.context["report"].sha256}
    )


def test_brand_staff_preview_then_confirm_an_import(client, coffee):
    staff = BrandStaffFactory(brand=coffee).user
    client.force_login(staff)
    rows = members_file(30)
    rows.append({"email": "bad", "external_id": "", "name": "", "balance": "1", "tier": ""})  # line 32
    content = csv_bytes(rows)

    changelist = client.get(reverse("admin:loyalty_membership_changelist"))
    assert IMPORT_URL in changelist.content.decode() and "Export CSV" in changelist.content.decode()
    page = client.get(IMPORT_URL)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.content.decode()

    preview = upload(client, coffee, content)

    assert preview.status_code == 200, preview.content.decode()[:2000]
    assert not Membership.objects.exists()  # a preview writes nothing
    report = preview.context["report"]
    assert (report.rows_read, report.applied, report.memberships_created) == (31, 30, 30)
    assert len(report.preview) == 20 and report.preview[0].line == 2
    html = preview.content.decode()
    assert "Line 32" in html and "not a valid email address" in html
    assert 'name="viewport"' in html  # the portal's pages scale on a phone

    result = confirm(client, preview)

    assert result.status_code == 200
    assert result.context["step"] == "result"
    assert result.context["report"].balances_posted == report.balances_posted
    assert Membership.objects.filter(brand=coffee).count() == 30
    assert outstanding_now(coffee) == wallets_total(coffee) == report.points_posted
    # The upload is applied once: a second click finds it gone.
    again = confirm(client, preview)
    assert again.status_code == 302 and again["Location"] == IMPORT_URL
    assert Transaction.objects.filter(kind="import").count() == report.balances_posted
    assert Transaction.objects.filter(kind="import").first().metadata["by"] == str(staff)


def test_staff_of_another_brand_cannot_import_into_it(client, coffee):
    tea = BrandFactory(slug="tea")
    tea_staff = BrandStaffFactory(brand=tea).user
    coffee_staff = BrandStaffFactory(brand=coffee).user
    content = csv_bytes([{"email": "a@example.com", "balance": "5"}], columns=("email", "balance"))

    client.force_login(tea_staff)
    refused = upload(client, coffee, content)
    assert refused.status_code == 200 and refused.context["form"].errors["brand"]
    assert [brand.slug for brand in refused.context["form"].fields["brand"].queryset] == ["tea"]

    # Nor confirm what a coffee login previewed (the token is that login's).
    client.force_login(coffee_staff)
    preview = upload(client, coffee, content)
    client.force_login(tea_staff)
    assert confirm(client, preview).status_code == 302
    assert not Membership.objects.exists()

    # A login of no brand is not let in at all.
    client.force_login(UserFactory(is_staff=True))
    assert client.get(IMPORT_URL).status_code == 403


def test_an_operator_chooses_the_brand_and_the_page_is_csrf_protected(coffee):
    tea = BrandFactory(slug="tea")
    operator = UserFactory(is_staff=True, is_superuser=True)
    content = csv_bytes([{"email": "a@example.com", "balance": "5"}], columns=("email", "balance"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert upload(client, tea, content).status_code == 403  # no CSRF token

    page = client.get(IMPORT_URL)
    assert {brand.slug for brand in page.context["form"].fields["brand"].queryset} == {"coffee", "tea"}
    token = page.cookies["csrftoken"].value
    preview = client.post(
        IMPORT_URL,
        {"step": "preview", "brand": tea.pk, "file": _file(content, "m.csv"), "csrfmiddlewaretoken": token},
    )
    assert preview.status_code == 200 and preview.context["brand"] == tea
    result = client.post(
        IMPORT_URL,
        {
            "step": "confirm",
            "token": preview.context["token"],
            "sha256": preview.context["report"].sha256,
            "csrfmiddlewaretoken": token,
        },
    )
    assert result.status_code == 200
    assert membership_balance(Membership.objects.get(brand=tea)) == 5


def test_a_confirm_applies_only_the_file_that_was_previewed(client, coffee):
    client.force_login(BrandStaffFactory(brand=coffee).user)
    preview = upload(client, coffee, csv_bytes([{"email": "a@example.com"}], columns=("email",)))

    tampered = client.post(IMPORT_URL, {"step": "confirm", "token": preview.context["token"], "sha256": "0" * 64})

    assert tampered.status_code == 302
    assert not Membership.objects.exists()


def test_a_file_the_portal_cannot_read_is_an_error_on_the_form(client, coffee):
    client.force_login(BrandStaffFactory(brand=coffee).user)

    page = upload(client, coffee, b"points,level\n5,Gold\n", name="book.xlsx")

    assert page.status_code == 200
    assert "Unknown columns" in page.context["form"].errors["file"][0]


# --- concurrency -------------------------------------------------------------------------------------------------


def two_imports_at_once(brand, rows: list[dict]) -> list:
    content = csv_bytes(rows)
    reports = run_concurrently(lambda _: members_import(brand=brand, content=content, chunk_size=200), 2)
    assert not [report for report in reports if isinstance(report, Exception)], reports
    expected = sum(int(row["balance"] or 0) for row in rows)
    assert sum(report.points_posted for report in reports) == expected
    assert sum(report.balances_posted for report in reports) == Transaction.objects.filter(kind="import").count()
    assert Membership.objects.filter(brand=brand).count() == len(rows)
    assert max(Counter(Membership.objects.filter(brand=brand).values_list("member_id", flat=True)).values()) == 1
    for row in rows:
        assert membership_balance(membership_for(brand, row)) == int(row["balance"] or 0)
    assert outstanding_now(brand) == wallets_total(brand) == expected
    books_clean()
    return reports


@pytest.mark.django_db(transaction=True)
def test_the_same_file_imported_twice_at_once_posts_each_balance_once(coffee):
    rows = members_file(600, seed=3)

    reports = two_imports_at_once(coffee, rows)

    # The brand's import lock made the second wait for the first, then find everything imported.
    assert sorted(report.unchanged for report in reports) == [0, 600]
    assert Member.objects.count() == 600


@pytest.mark.django_db(transaction=True)
def test_without_the_import_lock_the_row_locks_and_keys_still_post_each_balance_once(coffee, monkeypatch):
    """The brand's import lock only spares work: correctness rests on the membership locks and the keys."""
    monkeypatch.setattr(imports.locks, "brand_import_lock", lambda brand_id: contextlib.nullcontext())
    rows = members_file(600, seed=5)

    two_imports_at_once(coffee, rows)


@pytest.mark.django_db(transaction=True)
def test_an_import_while_the_processor_credits_the_same_members_loses_and_doubles_nothing(coffee):
    """Both take membership rows, then balance rows (the processor's order): they queue, never deadlock."""
    rows = [{"email": f"fan{n}@example.com", "balance": str(10 + n)} for n in range(300)]
    content = csv_bytes(rows, columns=("email", "balance"))

    def call(index: int):
        if index == 0:
            return members_import(brand=coffee, content=content, chunk_size=50)
        for start in range(0, 300, 50):
            accept(
                coffee,
                *(
                    {"type": "purchase", "member": {"email": f"fan{n}@example.com"}, "order_id": f"O-{n}",
                     "amount": "5.00", "currency": "USD"}
                    for n in range(start, start + 50)
                ),
            )  # fmt: skip
            process(coffee)
        return None

    results = run_concurrently(call, 2)

    assert not [result for result in results if isinstance(result, Exception)], results
    for n in range(300):
        assert membership_balance(membership_of(coffee, f"fan{n}@example.com")) == 10 + n + 5
    assert outstanding_now(coffee) == wallets_total(coffee) == sum(10 + n + 5 for n in range(300))
    books_clean()
