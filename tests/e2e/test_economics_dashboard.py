"""Brand staff open the partner portal in real Chromium: the economics dashboard draws its charts with the
portal's own Chart.js, shows only their brand's figures, and the report's range form works."""

import pytest
from playwright.sync_api import expect

from loyalty.models import Brand, EarnRule
from tests.economics.test_figures import history
from tests.loyalty.factories import DEFAULT_PASSWORD, BrandStaffFactory
from tests.loyalty.lifecycle import buy

pytestmark = pytest.mark.django_db(transaction=True)

CHARTS = ("chart-points", "chart-active", "chart-tiers", "chart-events")


def portal_login(page, email: str) -> None:
    page.goto("/admin/login/?next=/admin/%3Fdays%3D365")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(DEFAULT_PASSWORD)
    page.locator("button[type=submit]").click()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}])
def test_staff_see_their_brands_dashboard_with_drawn_charts(browser, live_server, coffee, viewport):
    history(coffee)
    other = Brand.objects.create(name="Other Brand", slug="other")
    EarnRule.objects.create(brand=other, event_type="purchase", points_per_unit=1, currency="USD")
    buy(other, "o-1", "5000.00", {"email": "o@example.com"})
    staff = BrandStaffFactory(brand=coffee).user
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        portal_login(page, staff.email)

        dashboard = page.get_by_test_id("economics-dashboard")
        expect(dashboard).to_contain_text("Coffee: the last 365 days")
        expect(page.get_by_test_id("outstanding")).to_have_text("710")
        expect(page.get_by_test_id("issued")).to_have_text("770")
        expect(page.get_by_test_id("redeemed")).to_have_text("60")
        expect(dashboard).not_to_contain_text("Other Brand")
        for chart in CHARTS:
            expect(page.get_by_test_id(chart)).to_be_visible()
            # The portal's script makes the charts after the page loads: wait for this one.
            page.wait_for_function("id => !!Chart.getChart(document.querySelector(`[data-testid=${id}]`))", arg=chart)
            drawn = page.evaluate(
                "id => { const c = Chart.getChart(document.querySelector(`[data-testid=${id}]`));"
                " return c ? c.data.datasets.reduce((n, d) => n + d.data.length, 0) : -1 }",
                chart,
            )
            assert drawn > 0, chart
        totals = page.evaluate(
            "() => Chart.getChart(document.querySelector('[data-testid=chart-points]'))"
            ".data.datasets.map(d => d.data.reduce((a, b) => a + b, 0))"
        )
        assert totals == [770, 60, 0]  # issued, redeemed, expired over the range: the coffee brand's only
        if viewport["width"] < 500:
            width = page.evaluate("document.querySelector('[data-testid=economics-dashboard]').scrollWidth")
            assert width <= viewport["width"]

        page.get_by_role("link", name="Economics report").click()
        page.locator("input[name=from]").fill("2026-01-01")
        page.locator("input[name=to]").fill("2026-01-31")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_test_id("liability")).to_have_text("23.67 USD")
        expect(page.get_by_test_id("return-rate").nth(1)).to_have_text("4.00%")
        assert errors == []
    finally:
        context.close()
