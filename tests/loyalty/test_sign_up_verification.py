"""Sign-up, email verification and password reset: a login claims a till's member only by proving the
address is theirs (issue: sign-up took over till-enrolled members)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core import signing
from django.urls import reverse

from ledger.models import Account
from loyalty.models import EarnRule, Member, Membership, User
from loyalty.services import EmailUnverifiedError, member_for_user, user_email_verify
from loyalty.tokens import email_verification_token
from tests.concurrency import run_concurrently
from tests.loyalty.events import accept_one, process
from tests.loyalty.factories import BrandFactory, MemberFactory, MembershipFactory, UserFactory

# Committed for real: the mail goes out after commit, and the race runs on connections of its own.
pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-42"


def _sign_up(client, email: str) -> User:
    response = client.post(reverse("signup"), {"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return User.objects.get(email=email.lower())


def _link_in(message) -> str:
    [link] = re.findall(r"https?://\S+", message.body)
    return link.split("testserver", 1)[1]


def _till_brand():
    brand = BrandFactory(slug="till")
    EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=Decimal("1"), currency="USD")
    return brand


def _wallet_balance(membership: Membership) -> int:
    return Account.objects.get(pk=membership.wallet_id).balance.balance


def test_sign_up_mails_a_link_and_joining_waits_for_it(client, mailoutbox):
    brand = BrandFactory(slug="nova")
    user = _sign_up(client, "Ada@Example.com")

    [message] = mailoutbox
    assert message.to == ["ada@example.com"]
    assert "/verify-email/" in message.body
    page = client.get(reverse("brand_detail", args=["nova"])).content.decode()
    assert "Confirm your email address to join" in page

    client.post(reverse("brand_join", args=["nova"]))
    assert not Membership.objects.filter(brand=brand).exists()

    response = client.get(_link_in(message))
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email_verified
    client.post(reverse("brand_join", args=["nova"]))
    assert Membership.objects.get(brand=brand).member.user == user


def test_sign_up_with_a_till_members_email_claims_its_points_only_after_verifying(client, mailoutbox):
    brand = _till_brand()
    accept_one(
        brand,
        {
            "type": "purchase",
            "member": {"email": "pos@example.com"},
            "order_id": "A1",
            "amount": "40",
            "currency": "USD",
        },
    )
    process(brand)
    till_member = Member.objects.get(email="pos@example.com")

    user = _sign_up(client, "POS@example.com")
    till_member.refresh_from_db()
    assert till_member.user is None  # typing the address proved nothing

    client.get(_link_in(mailoutbox[0]))
    till_member.refresh_from_db()
    assert till_member.user == user
    assert Member.objects.filter(email__iexact="pos@example.com").count() == 1
    assert _wallet_balance(till_member.memberships.get(brand=brand)) == 40


def test_an_unverified_sign_up_never_receives_the_owners_till_purchases(client):
    brand = _till_brand()
    attacker = _sign_up(client, "victim@example.com")  # never opens the victim's mail

    accept_one(
        brand,
        {
            "type": "purchase",
            "member": {"email": "victim@example.com"},
            "order_id": "V1",
            "amount": "25",
            "currency": "USD",
        },
    )
    process(brand)

    member = Member.objects.get(email="victim@example.com")
    assert member.user is None
    assert not Member.objects.filter(user=attacker).exists()
    with pytest.raises(EmailUnverifiedError):
        member_for_user(user=attacker)


@pytest.mark.parametrize(
    "token",
    ["garbage", signing.TimestampSigner(salt="other").sign_object({"user": 1, "email": "x@example.com"})],
)
def test_a_forged_verification_link_is_refused(client, token):
    user = UserFactory(email="x@example.com", email_verified_at=None)
    response = client.get(reverse("email_verify", args=[token]))
    assert response.status_code == 400
    user.refresh_from_db()
    assert not user.email_verified


def test_a_link_for_an_address_the_login_no_longer_has_is_refused(client):
    user = UserFactory(email="old@example.com", email_verified_at=None)
    token = email_verification_token(user)
    User.objects.filter(pk=user.pk).update(email="new@example.com")
    assert client.get(reverse("email_verify", args=[token])).status_code == 400


def test_an_expired_verification_link_is_refused(client, settings):
    user = UserFactory(email_verified_at=None)
    token = email_verification_token(user)
    settings.EMAIL_VERIFICATION_MAX_AGE_SECONDS = -1
    assert client.get(reverse("email_verify", args=[token])).status_code == 400


def test_verifying_twice_is_harmless(client):
    user = UserFactory(email_verified_at=None)
    token = email_verification_token(user)
    client.get(reverse("email_verify", args=[token]))
    client.get(reverse("email_verify", args=[token]))
    assert Member.objects.filter(user=user).count() == 1


def test_the_link_can_be_sent_again(client, mailoutbox):
    _sign_up(client, "again@example.com")
    response = client.post(reverse("email_verification_resend"))
    assert response.status_code == 302
    assert len(mailoutbox) == 2
    assert mailoutbox[1].to == ["again@example.com"]


def test_concurrent_verifications_link_one_member_to_one_login():
    member = MemberFactory(email="race@example.com")
    MembershipFactory(member=member)
    user = UserFactory(email="race@example.com", email_verified_at=None)

    results = run_concurrently(lambda _: user_email_verify(user=user).pk, callers=8)

    assert results == [member.pk] * 8, results
    member.refresh_from_db()
    assert member.user == user
    assert Member.objects.filter(email__iexact="race@example.com").count() == 1


def test_password_reset_mails_a_link_that_sets_the_password_and_verifies_the_address(client, mailoutbox):
    member = MemberFactory(email="forgot@example.com")
    user = UserFactory(email="forgot@example.com", email_verified_at=None)

    response = client.post(reverse("password_reset"), {"email": "forgot@example.com"})
    assert response.status_code == 302
    [message] = mailoutbox
    link = _link_in(message)
    form_page = client.get(link, follow=True)  # Django swaps the token for a session and redirects
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-new-long-secret-9", "new_password2": "a-new-long-secret-9"},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-new-long-secret-9")
    assert user.email_verified
    member.refresh_from_db()
    assert member.user == user


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mailoutbox == []
