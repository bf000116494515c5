"""Earning in the partner portal: rules, the member page, and manual adjustments by staff."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from loyalty.models import Adjustment, EarnRule, Membership
from loyalty.selectors import membership_balance as _balance
from tests.loyalty.factories import AdjustmentFactory, BrandStaffFactory, EarnRuleFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def membership_balance(membership) -> int:
    return _balance(Membership.objects.get(pk=membership.pk))  # the wallet is linked on first posting


@pytest.fixture
def staff_client(client):
    staff = BrandStaffFactory()
    client.force_login(staff.user)
    client.staff = staff
    return client


def test_staff_adjusts_points_with_a_reason_recorded_with_their_name(staff_client):
    membership = MembershipFactory(brand=staff_client.staff.brand)
    url = reverse("admin:loyalty_membership_adjust", args=[membership.pk])

    response = staff_client.post(url, {"points": 40, "reason": "Welcome gift", "nonce": "n1"})

    assert response.status_code == 302
    adjustment = Adjustment.objects.get()
    assert (adjustment.points, adjustment.reason, adjustment.created_by_user) == (
        40,
        "Welcome gift",
        staff_client.staff.user,
    )
    assert membership_balance(membership) == 40
    page = staff_client.get(reverse("admin:loyalty_membership_change", args=[membership.pk])).content.decode()
    assert "40" in page and "Welcome gift" in page


def test_a_double_submitted_adjustment_form_applies_once(staff_client):
    membership = MembershipFactory(brand=staff_client.staff.brand)
    url = reverse("admin:loyalty_membership_adjust", args=[membership.pk])
    for _ in range(2):
        staff_client.post(url, {"points": 10, "reason": "once", "nonce": "same-form"})
    assert membership_balance(membership) == 10


def test_adjustment_that_would_overdraw_is_refused_on_the_form(staff_client):
    membership = MembershipFactory(brand=staff_client.staff.brand)
    AdjustmentFactory(membership=membership, points=5)
    url = reverse("admin:loyalty_membership_adjust", args=[membership.pk])

    response = staff_client.post(url, {"points": -6, "reason": "too much", "nonce": "n2"})

    assert response.status_code == 200
    assert "cannot remove 6" in response.content.decode()
    assert membership_balance(membership) == 5


def test_adjusting_another_brands_member_is_404(staff_client):
    theirs = MembershipFactory()
    url = reverse("admin:loyalty_membership_adjust", args=[theirs.pk])
    assert staff_client.post(url, {"points": 1, "reason": "x"}).status_code == 404
    assert not Adjustment.objects.exists()


def test_event_and_adjustment_lists_are_read_only(staff_client):
    assert staff_client.get(reverse("admin:loyalty_event_add")).status_code == 403
    assert staff_client.get(reverse("admin:loyalty_adjustment_add")).status_code == 403
    assert staff_client.get(reverse("admin:loyalty_event_changelist")).status_code == 200


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        (
            {"event_type": "purchase", "points_per_unit": None, "currency": "USD", "points": None},
            "points_per_unit",
        ),
        ({"event_type": "purchase", "points_per_unit": 1, "currency": "", "points": None}, "currency"),
        ({"event_type": "review", "points": None}, "points"),
        ({"event_type": "refund", "points": 5}, "event_type"),
    ],
)
def test_earn_rule_validation_explains_what_is_missing(fields, error_field):
    rule = EarnRuleFactory.build(brand=MembershipFactory().brand, **fields)
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert error_field in caught.value.message_dict


def test_the_database_refuses_a_purchase_rule_without_a_rate():
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        EarnRule.objects.create(brand=MembershipFactory().brand, event_type="purchase", currency="USD")


def test_changelists_do_not_query_per_row(staff_client, django_assert_max_num_queries):
    from tests.perks.factories import PerkFactory

    brand = staff_client.staff.brand
    for _ in range(3):
        AdjustmentFactory(membership=MembershipFactory(brand=brand), points=7)
        PerkFactory(brand=brand)
    urls = [reverse(f"admin:{name}_changelist") for name in ("loyalty_membership", "loyalty_brand", "perks_perk")]
    counts = {}
    for url in urls:
        with django_assert_max_num_queries(30) as captured:
            assert staff_client.get(url).status_code == 200
        counts[url] = len(captured.captured_queries)
    for _ in range(10):
        AdjustmentFactory(membership=MembershipFactory(brand=brand), points=7)
        PerkFactory(brand=brand)
    for url in urls:
        with django_assert_max_num_queries(counts[url]) as captured:
            assert staff_client.get(url).status_code == 200
    assert "7" in staff_client.get(urls[0]).content.decode()


@pytest.mark.parametrize("nonce", [None, "n\x00ul"])
def test_an_adjust_form_without_its_nonce_or_with_a_nul_in_it_is_400_and_adjusts_nothing(staff_client, nonce):
    membership = MembershipFactory(brand=staff_client.staff.brand)
    url = reverse("admin:loyalty_membership_adjust", args=[membership.pk])
    form = {"points": 10, "reason": "gift"} | ({"nonce": nonce} if nonce is not None else {})

    response = staff_client.post(url, form)

    assert response.status_code == 400
    assert not Adjustment.objects.exists()
