"""The person behind a membership is shared by brands: a brand's staff see and edit only their brand's
data about them (the membership), never the person's own identity or another brand's ids and changes."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from loyalty.models import EarnRule, Member, Membership, Tier
from tests.admin_forms import form_data
from tests.loyalty.events import accept_one, process
from tests.loyalty.factories import BrandFactory, BrandStaffFactory, MemberFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared_member():
    """One person in two clubs: Alpha knows them as A-1, Bravo as B-77; their own name is theirs."""
    alpha, bravo = BrandFactory(slug="alpha"), BrandFactory(slug="bravo")
    member = MemberFactory(email="sam@example.com", name="Samantha Private")
    MembershipFactory(member=member, brand=alpha, external_id="A-1")
    MembershipFactory(member=member, brand=bravo, external_id="B-77")
    staff_a = BrandStaffFactory(brand=alpha).user
    staff_b = BrandStaffFactory(brand=bravo).user
    return member, alpha, bravo, staff_a, staff_b


def test_staff_cannot_edit_the_persons_email_or_name(client, shared_member):
    member, _, _, staff_a, _ = shared_member
    client.force_login(staff_a)
    url = reverse("admin:loyalty_member_change", args=[member.pk])

    page = client.get(url)
    assert page.status_code == 200  # a read-only view
    assert "Samantha Private" not in page.content.decode()
    client.post(url, {"email": "attacker@example.com", "name": "Changed"})

    member.refresh_from_db()
    assert (member.email, member.name) == ("sam@example.com", "Samantha Private")


def test_an_operator_edits_the_person(client, shared_member, django_user_model):
    member, *_ = shared_member
    operator = django_user_model.objects.create_superuser(email="op@example.com", password="x")
    client.force_login(operator)
    url = reverse("admin:loyalty_member_change", args=[member.pk])
    response = client.post(url, form_data(client.get(url), name="Sam P."))
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.name == "Sam P."


def test_a_till_naming_a_known_person_shows_them_without_their_own_name(client, shared_member):
    member, *_ = shared_member
    gamma = BrandFactory(slug="gamma")
    EarnRule.objects.create(brand=gamma, event_type="check_in", points=5)
    staff_c = BrandStaffFactory(brand=gamma).user
    accept_one(gamma, {"type": "check_in", "member": {"email": "sam@example.com"}, "idempotency_key": "c1"})
    process(gamma)
    membership = Membership.objects.get(brand=gamma, member=member)
    client.force_login(staff_c)

    for url in (
        reverse("admin:loyalty_membership_changelist"),
        reverse("admin:loyalty_membership_change", args=[membership.pk]),
        reverse("admin:loyalty_member_changelist"),
        reverse("admin:loyalty_member_change", args=[member.pk]),
    ):
        page = client.get(url).content.decode()
        assert "sam@example.com" in page  # the till gave the brand the email
        assert "Samantha Private" not in page, url


def test_search_by_external_id_matches_only_the_staffs_own_brand(client, shared_member):
    _, _, _, staff_a, _ = shared_member
    client.force_login(staff_a)
    for url in (reverse("admin:loyalty_member_changelist"), reverse("admin:loyalty_membership_changelist")):
        assert list(client.get(url, {"q": "B-77"}).context["cl"].result_list) == []
        found = list(client.get(url, {"q": "A-1"}).context["cl"].result_list)
        assert len(found) == 1
    assert (
        list(client.get(reverse("admin:loyalty_membership_changelist"), {"q": "Samantha"}).context["cl"].result_list)
        == []
    )


def test_the_persons_history_shows_only_the_staffs_own_brands_changes(client, shared_member):
    member, _, _, staff_a, staff_b = shared_member
    for user, message in ((staff_a, "alpha's note"), (staff_b, "bravo's note")):
        LogEntry.objects.log_actions(user_id=user.pk, queryset=[member], action_flag=CHANGE, change_message=message)
    client.force_login(staff_a)

    page = client.get(reverse("admin:loyalty_member_history", args=[member.pk])).content.decode()

    assert "alpha&#x27;s note" in page or "alpha's note" in page
    assert "bravo" not in page


def test_staff_enroll_a_member_through_the_service(client, shared_member):
    _, alpha, _, staff_a, _ = shared_member
    green = Tier.objects.create(brand=alpha, name="Green", rank=1, threshold=0)
    client.force_login(staff_a)
    url = reverse("admin:loyalty_membership_add")

    response = client.post(url, {"brand": alpha.pk, "email": "New@Example.com", "external_id": "A-2", "name": "Nic"})

    membership = Membership.objects.get(brand=alpha, external_id="A-2")
    assert response.status_code == 302
    assert response.url == reverse("admin:loyalty_membership_change", args=[membership.pk])
    assert (membership.member.email, membership.name, membership.tier) == ("new@example.com", "Nic", green)
    assert membership.member.name == ""  # the brand's name for them is the brand's


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"email": "other@example.com", "external_id": "A-1"}, "Already used by another member of this brand."),
        ({"email": "sam@example.com"}, "Already a member of this brand."),
        ({}, "Give an email, an external id, or both."),
    ],
)
def test_enrolling_refuses_what_would_merge_or_duplicate_members(client, shared_member, fields, error):
    _, alpha, _, staff_a, _ = shared_member
    client.force_login(staff_a)
    before = Membership.objects.count()

    response = client.post(reverse("admin:loyalty_membership_add"), {"brand": alpha.pk, **fields})

    assert response.status_code == 200
    assert error in response.content.decode()
    assert Membership.objects.count() == before


def test_enrolling_into_another_brand_is_refused(client, shared_member):
    _, _, bravo, staff_a, _ = shared_member
    client.force_login(staff_a)
    response = client.post(reverse("admin:loyalty_membership_add"), {"brand": bravo.pk, "email": "x@example.com"})
    assert response.status_code == 200
    assert not Member.objects.filter(email="x@example.com").exists()


@pytest.mark.django_db(transaction=True)
def test_staff_enrolling_one_external_id_at_once_make_one_membership_and_clear_refusals():
    from config.errors import ApplicationError
    from loyalty.services import membership_enroll
    from tests.concurrency import run_concurrently

    brand = BrandFactory(slug="rush")

    def enroll(n: int):
        try:
            return membership_enroll(brand=brand, email=f"p{n}@example.com", external_id="POS-1").pk
        except ApplicationError as error:
            return error.code

    results = run_concurrently(enroll, 8)

    assert sum(isinstance(result, int) for result in results) == 1, results
    assert {result for result in results if not isinstance(result, int)} == {"external_id_taken"}
    assert Membership.objects.filter(brand=brand, external_id="POS-1").count() == 1
    assert not Member.objects.filter(email__in=[f"p{n}@example.com" for n in range(8)], memberships=None).exists()
