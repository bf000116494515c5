"""Brand staff import members from a CSV on a phone-sized screen, in real Chromium: the changelist's "Import
CSV" button, the upload, the preview (nothing written yet), the confirmation and its summary."""

import os

import pytest
from playwright.sync_api import expect

from loyalty.models import Membership
from loyalty.selectors import membership_balance
from tests.e2e.test_economics_dashboard import portal_login
from tests.loyalty.factories import BrandStaffFactory

pytestmark = pytest.mark.django_db(transaction=True)

CSV = (
    "email,external_id,name,balance,tier\n"
    "ann@example.com,POS-1,Ann,120,Gold\n"
    "bob@example.com,,Bob,0,\n"
    "not-an-email,,,5,\n"
    ",POS-3,Cat,40,green\n"
)


def test_staff_import_a_csv_on_a_phone(page, coffee, tmp_path):
    staff = BrandStaffFactory(brand=coffee).user
    path = tmp_path / "members.csv"
    path.write_text(CSV)
    portal_login(page, staff.email)

    page.goto("/admin/loyalty/membership/")
    expect(page.get_by_role("link", name="Export CSV")).to_be_visible()
    if os.environ.get("TALLY_SCREENSHOTS"):
        page.screenshot(path=os.environ["TALLY_SCREENSHOTS"] + "/import-changelist.png")
    page.get_by_role("link", name="Import CSV").click()
    page.locator("input[name=file]").set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_test_id("import-counts")).to_contain_text("Rows read")
    expect(page.get_by_test_id("import-skipped")).to_contain_text("Line 4")
    expect(page.get_by_test_id("import-preview")).to_contain_text("ann@example.com")
    assert not Membership.objects.exists()  # the preview wrote nothing
    # One column on a phone: nothing but the preview table (which scrolls in its box) is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if os.environ.get("TALLY_SCREENSHOTS"):
        page.screenshot(path=os.environ["TALLY_SCREENSHOTS"] + "/import-preview.png", full_page=True)

    page.get_by_role("button", name="Import 3 rows").click()

    expect(page.get_by_test_id("import-result")).to_contain_text("was imported into Coffee")
    expect(page.get_by_test_id("import-points")).to_have_text("160")
    ann = Membership.objects.get(brand=coffee, external_id="POS-1")
    assert (membership_balance(ann), ann.tier.name, ann.name) == (120, "Gold", "Ann")
    if os.environ.get("TALLY_SCREENSHOTS"):
        page.screenshot(path=os.environ["TALLY_SCREENSHOTS"] + "/import-result.png", full_page=True)
