"""The fan's wallet page per club: balance, pending, expiring soon, tier progress and the history."""

import pytest

from loyalty.models import EarnRule, Member
from tests.loyalty.factories import UserFactory
from tests.loyalty.lifecycle import EMAIL, buy, check_in, expiry_set, membership_of, on, run_lifecycle, spend

pytestmark = pytest.mark.django_db


@pytest.fixture
def fan(client, coffee):
    """A verified login whose member is the one the till buys for (by email)."""
    user = UserFactory(email=EMAIL)
    Member.objects.create(email=EMAIL, user=user)
    client.force_login(user)
    return user


def test_the_wallet_shows_balance_pending_expiring_tier_progress_and_history(client, coffee, fan):
    expiry_set(coffee, 6)
    EarnRule.objects.filter(brand=coffee, event_type="purchase").update(pending_days=14)
    with on("2026-01-15"):
        buy(coffee, "J-1", "120.00")
    run_lifecycle(coffee, "2026-01-29")  # the 14-day return window ended: 120 spendable
    with on("2026-01-30"):
        check_in(coffee)
    with on("2026-02-20"):
        spend(membership_of(coffee), 20)
        buy(coffee, "F-1", "30.00")  # pending until 6 March
        page = client.get("/b/coffee/wallet/").content.decode()

    assert 'data-testid="balance">105<' in page  # 120 released, + 5, - 20
    assert 'data-testid="pending">30<' in page
    assert "30 on 6 Mar" in page
    assert "<strong>105</strong> Stars on 1 Aug 2026" in page  # all January's points, oldest spent first
    assert "155 of 500 qualifying Stars: 345 to go." in page
    assert "Pending points became spendable" in page and "Check-in" in page and "Redeemed: Perk" in page


def test_the_wallet_history_pages_back(client, coffee, fan):
    EarnRule.objects.filter(brand=coffee, event_type="check_in").update(cap_per_day=None)
    with on("2026-06-01"):
        for _ in range(25):
            check_in(coffee)
        first = client.get("/b/coffee/wallet/").content.decode()
        assert first.count("<td>Check-in</td>") == 20
        older = first.split('href="?after=')[1].split('"')[0]
        second = client.get(f"/b/coffee/wallet/?after={older}").content.decode()
    assert second.count("<td>Check-in</td>") == 5
    assert client.get("/b/coffee/wallet/?after=not-a-cursor").status_code == 302


def test_someone_who_is_not_a_member_is_sent_to_the_club_page(client, coffee):
    client.force_login(UserFactory())
    response = client.get("/b/coffee/wallet/")
    assert response.status_code == 302
    assert response["Location"] == "/b/coffee/"


def test_the_wallet_needs_a_login(client, coffee):
    response = client.get("/b/coffee/wallet/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
