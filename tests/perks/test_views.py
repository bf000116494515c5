import re

import pytest
from django.urls import reverse

from perks.models import Redemption
from tests.loyalty.factories import BrandFactory, MembershipFactory, UserFactory
from tests.perks.factories import PerkFactory, funded_membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def fan(client):
    user = UserFactory(email="fan@example.com")
    membership = funded_membership(
        brand=BrandFactory(slug="shop"), points=100, member__user=user, member__email=user.email
    )
    client.force_login(user)
    return membership


def test_perks_page_says_why_a_perk_cannot_be_redeemed(client, fan):
    PerkFactory(brand=fan.brand, name="Cheap", cost=10)
    PerkFactory(brand=fan.brand, name="Dear", cost=130)
    PerkFactory(brand=fan.brand, name="Gone", cost=10, stock=0)

    html = client.get(reverse("perk_list", args=["shop"])).content.decode()

    assert "30 more points needed" in html
    assert 'data-reason="out_of_stock"' in html
    assert html.count(">Redeem<") == 1


def test_confirmation_shows_cost_and_balance_after_and_spends_nothing(client, fan):
    perk = PerkFactory(brand=fan.brand, cost=60)
    html = client.get(reverse("perk_redeem", args=["shop", perk.pk])).content.decode()
    assert 'data-testid="balance-after"><strong>40<' in html
    assert not Redemption.objects.exists()


def test_confirming_twice_with_the_same_form_redeems_once_and_shows_the_code(client, fan):
    perk = PerkFactory(brand=fan.brand, cost=60)
    html = client.get(reverse("perk_redeem", args=["shop", perk.pk])).content.decode()
    nonce = re.search(r'name="nonce" value="([^"]+)"', html).group(1)

    first = client.post(reverse("perk_redeem", args=["shop", perk.pk]), {"nonce": nonce})
    second = client.post(reverse("perk_redeem", args=["shop", perk.pk]), {"nonce": nonce})

    assert first.url == second.url
    redemption = Redemption.objects.get()
    assert redemption.code in client.get(first.url).content.decode()
    assert redemption.code in client.get(reverse("my_rewards")).content.decode()


def test_a_refused_redemption_says_why(client, fan):
    perk = PerkFactory(brand=fan.brand, cost=500)
    response = client.post(reverse("perk_redeem", args=["shop", perk.pk]), {"nonce": "n"}, follow=True)
    assert "400 more points needed" in response.content.decode()
    assert not Redemption.objects.exists()


def test_a_fan_cannot_see_someone_elses_voucher(client, fan):
    other = funded_membership(brand=fan.brand, points=10)
    from perks.services import perk_redeem

    theirs = perk_redeem(membership=other, perk=PerkFactory(brand=fan.brand, cost=10), request_key="x").redemption
    assert client.get(reverse("my_reward", args=[theirs.pk])).status_code == 404


def test_non_members_are_sent_to_join(client):
    brand = BrandFactory(slug="club")
    perk = PerkFactory(brand=brand)
    client.force_login(UserFactory())
    response = client.get(reverse("perk_redeem", args=["club", perk.pk]))
    assert response.status_code == 302
    assert response.url == reverse("brand_detail", args=["club"])
    MembershipFactory(brand=brand)  # someone else's membership changes nothing for this user
    assert client.get(reverse("perk_redeem", args=["club", perk.pk])).status_code == 302


@pytest.mark.parametrize("nonce", ["", "a\x00b", "x" * 65, "<script>"])
def test_a_redeem_form_with_a_missing_or_tampered_nonce_is_400_and_spends_nothing(client, fan, nonce):
    perk = PerkFactory(brand=fan.brand, cost=60)

    response = client.post(reverse("perk_redeem", args=["shop", perk.pk]), {"nonce": nonce})

    assert response.status_code == 400
    assert not Redemption.objects.exists()
