"""Failed logins are throttled per email and per address, on the fan login and the partner portal's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.loyalty.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_limits(settings):
    settings.LOGIN_THROTTLE_FAILURES = 3
    settings.LOGIN_THROTTLE_FAILURES_PER_IP = 5


def _log_in(client, url: str, email: str, password: str, ip: str = "10.0.0.1"):
    return client.post(url, {"username": email, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_after_too_many_failures_even_the_right_password_is_refused_with_429(client, url_name):
    UserFactory(email="fan@example.com", is_staff=True)
    url = reverse(url_name)
    for _ in range(3):
        assert _log_in(client, url, "fan@example.com", "wrong").status_code == 200

    response = _log_in(client, url, "FAN@example.com", DEFAULT_PASSWORD)

    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_address_trying_many_emails_is_throttled(client):
    UserFactory(email="target@example.com")
    for number in range(5):
        _log_in(client, reverse("login"), f"guess{number}@example.com", "wrong")
    assert _log_in(client, reverse("login"), "target@example.com", DEFAULT_PASSWORD).status_code == 429
    # Someone else, elsewhere, still logs in.
    assert _log_in(client, reverse("login"), "target@example.com", DEFAULT_PASSWORD, ip="10.0.0.2").status_code == 302


def test_a_successful_login_clears_its_emails_failures(client):
    UserFactory(email="fan@example.com")
    for _ in range(2):
        _log_in(client, reverse("login"), "fan@example.com", "wrong")
    assert _log_in(client, reverse("login"), "fan@example.com", DEFAULT_PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        _log_in(client, reverse("login"), "fan@example.com", "wrong")
    assert _log_in(client, reverse("login"), "fan@example.com", DEFAULT_PASSWORD).status_code == 302


def test_the_client_address_comes_from_x_forwarded_for_only_behind_trusted_proxies(client, settings):
    UserFactory(email="fan@example.com")
    for number in range(5):  # every failure from "different" spoofed addresses, one real one
        client.post(
            reverse("login"),
            {"username": f"g{number}@example.com", "password": "wrong"},
            REMOTE_ADDR="10.0.0.9",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{number}",
        )
    assert _log_in(client, reverse("login"), "fan@example.com", DEFAULT_PASSWORD, ip="10.0.0.9").status_code == 429

    settings.TRUSTED_PROXIES = 1
    response = client.post(
        reverse("login"),
        {"username": "fan@example.com", "password": DEFAULT_PASSWORD},
        REMOTE_ADDR="10.0.0.9",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert response.status_code == 302


def test_choosing_a_new_password_through_the_mailed_link_lifts_the_lock(client, mailoutbox):
    import re

    UserFactory(email="locked@example.com")
    for _ in range(3):
        _log_in(client, reverse("login"), "locked@example.com", "wrong")
    assert _log_in(client, reverse("login"), "locked@example.com", DEFAULT_PASSWORD).status_code == 429

    client.post(reverse("password_reset"), {"email": "locked@example.com"})
    [link] = re.findall(r"https?://testserver(\S+)", mailoutbox[0].body)
    form_page = client.get(link, follow=True)
    new = "a-brand-new-secret-7"
    client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}, REMOTE_ADDR="10.0.0.1")

    assert _log_in(client, reverse("login"), "locked@example.com", new).status_code == 302
