import pytest
from django.urls import reverse

from loyalty.models import Member, Membership, User
from tests.loyalty.factories import DEFAULT_PASSWORD, BrandFactory, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_sign_up_creates_an_unverified_login_without_a_member_and_logs_in(client):
    response = client.post(
        reverse("signup"), {"name": "Ada", "email": "Ada@Example.com", "password": "correct-horse-42"}
    )

    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    assert not user.email_verified
    assert not Member.objects.filter(user=user).exists()  # linked only once the address is verified
    assert client.get(reverse("my_clubs")).status_code == 200


def test_sign_up_with_a_taken_email_shows_an_error_and_creates_nothing(client):
    UserFactory(email="taken@example.com")
    response = client.post(reverse("signup"), {"email": "TAKEN@example.com", "password": "correct-horse-42"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_sign_up_refuses_a_weak_password(client):
    response = client.post(reverse("signup"), {"email": "weak@example.com", "password": "123"})
    assert response.status_code == 200
    assert not User.objects.filter(email="weak@example.com").exists()


def test_joining_a_club_twice_is_harmless_and_shows_on_my_clubs(client):
    brand = BrandFactory(name="Nova Lane", slug="nova")
    user = UserFactory()
    client.force_login(user)

    client.post(reverse("brand_join", args=["nova"]))
    client.post(reverse("brand_join", args=["nova"]))

    assert Membership.objects.filter(brand=brand, member__user=user).count() == 1
    assert "Nova Lane" in client.get(reverse("my_clubs")).content.decode()
    assert "You are a member" in client.get(reverse("brand_detail", args=["nova"])).content.decode()


def test_join_requires_login_and_post(client):
    BrandFactory(slug="nova")
    assert client.post(reverse("brand_join", args=["nova"])).status_code == 302
    client.force_login(UserFactory())
    assert client.get(reverse("brand_join", args=["nova"])).status_code == 405


def test_unknown_or_inactive_brand_page_is_404(client):
    BrandFactory(slug="closed", is_active=False)
    assert client.get(reverse("brand_detail", args=["nope"])).status_code == 404
    assert client.get(reverse("brand_detail", args=["closed"])).status_code == 404


def test_log_in_with_email_any_case_and_log_out(client):
    UserFactory(email="fan@example.com")
    response = client.post(reverse("login"), {"username": "FAN@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("my_clubs")).status_code == 302


def test_join_returns_to_the_page_that_asked_but_never_off_site(client):
    BrandFactory(slug="nova")
    client.force_login(UserFactory())
    assert client.post(reverse("brand_join", args=["nova"]), {"next": "/b/nova/tv/"}).url == "/b/nova/tv/"
    assert client.post(reverse("brand_join", args=["nova"]), {"next": "https://evil.example/"}).url == "/b/nova/"


def test_sign_up_never_redirects_off_site(client):
    response = client.post(
        reverse("signup") + "?next=https://evil.example/", {"email": "safe@example.com", "password": "correct-horse-42"}
    )
    assert response.url == "/"


def test_brand_page_links_to_perks_from_the_perks_app(client):
    BrandFactory(slug="nova", points_name="Stars")
    html = client.get(reverse("brand_detail", args=["nova"])).content.decode()
    assert 'href="/b/nova/perks/"' in html
    assert "Spend your Stars on perks" in html


def test_a_fan_edits_their_own_name_and_the_brands_keep_theirs(client):
    user = UserFactory(first_name="Sam")
    member = MemberFactory(user=user, email=user.email, name="Sam")
    brand = BrandFactory(slug="nova")
    membership = Membership.objects.create(member=member, brand=brand, name="Sammy (regular)")
    client.force_login(user)

    assert "Your profile" in client.get(reverse("profile")).content.decode()
    response = client.post(reverse("profile"), {"name": "Samantha"})

    assert response.status_code == 302
    member.refresh_from_db()
    user.refresh_from_db()
    membership.refresh_from_db()
    assert (user.first_name, member.name, membership.name) == ("Samantha", "Samantha", "Sammy (regular)")


def test_the_profile_needs_a_login_and_refuses_a_nul(client):
    assert client.get(reverse("profile")).status_code == 302
    client.force_login(UserFactory())
    response = client.post(reverse("profile"), {"name": "a\x00b"})
    assert response.status_code == 200
    assert "Null characters" in response.content.decode()
