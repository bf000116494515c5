"""A fan signs up, joins a fan club and finds it on "my clubs": real Chromium, a phone-sized screen."""

import re

import pytest
from playwright.sync_api import expect

from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_fan_signs_up_confirms_their_email_joins_a_club_and_sees_it_on_my_clubs(page, mailoutbox):
    BrandFactory(name="Nova Lane", slug="artist", tagline="Watch together, earn together.")

    page.goto("/")
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Your name").fill("Robin")
    page.get_by_label("Email").fill("robin@example.com")
    page.get_by_label("Password").fill("correct-horse-42")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Welcome to Tally!")).to_be_visible()

    page.get_by_role("link", name=re.compile("Nova Lane")).click()
    expect(page.get_by_text("Confirm your email address to join")).to_be_visible()
    [message] = mailoutbox
    [link] = re.findall(r"https?://\S+/verify-email/\S+", message.body)
    page.goto(link)
    expect(page.get_by_text("robin@example.com is confirmed")).to_be_visible()

    page.goto("/b/artist/")
    page.get_by_role("button", name="Join the fan club").click()
    expect(page.get_by_text("You joined the Nova Lane fan club.")).to_be_visible()
    expect(page.get_by_text("You are a member")).to_be_visible()

    page.get_by_role("link", name="My clubs").click()
    expect(page.get_by_role("heading", name="My clubs")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Nova Lane"))).to_be_visible()


def test_wrong_password_says_so_and_keeps_the_fan_on_the_login_page(page):
    page.goto("/login/")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct email")
    expect(page).to_have_url(re.compile("/login/"))
