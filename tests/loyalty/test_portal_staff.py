"""Staff added in the partner portal go through brand_staff_add: they can open the portal afterwards."""

from __future__ import annotations

import pytest
from django.urls import reverse

from loyalty.models import BrandStaff
from tests.admin_forms import form_data
from tests.loyalty.factories import DEFAULT_PASSWORD, BrandFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser(email="op@example.com", password="op-password-1")


def _portal_login(client, user) -> int:
    client.logout()
    client.post(reverse("admin:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
    return client.get(reverse("admin:index")).status_code


def test_staff_added_on_the_brand_page_can_log_in_to_the_portal(client, operator):
    brand = BrandFactory(name="Nova Lane", slug="nova")
    newcomer = UserFactory(email="new.staff@example.com")
    assert not newcomer.is_staff
    client.force_login(operator)
    url = reverse("admin:loyalty_brand_change", args=[brand.pk])
    page = client.get(url)

    response = client.post(
        url,
        form_data(
            page,
            **{
                "staff-TOTAL_FORMS": "1",
                "staff-0-user": str(newcomer.pk),
                "staff-0-role": "staff",
                "staff-0-brand": str(brand.pk),
            },
        ),
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    newcomer.refresh_from_db()
    assert newcomer.is_staff
    assert BrandStaff.objects.get(user=newcomer).brand == brand
    assert _portal_login(client, newcomer) == 200
    assert "Nova Lane" in client.get(reverse("admin:index")).content.decode()


def test_staff_added_in_the_staff_list_can_log_in_and_removing_them_closes_the_portal(client, operator):
    brand = BrandFactory(slug="nova")
    newcomer = UserFactory(email="till.manager@example.com")
    client.force_login(operator)

    response = client.post(
        reverse("admin:loyalty_brandstaff_add"), {"user": newcomer.pk, "brand": brand.pk, "role": "owner"}
    )
    assert response.status_code == 302
    staff = BrandStaff.objects.get(user=newcomer)
    assert staff.role == "owner"
    assert _portal_login(client, newcomer) == 200

    client.force_login(operator)
    client.post(reverse("admin:loyalty_brandstaff_delete", args=[staff.pk]), {"post": "yes"})
    newcomer.refresh_from_db()
    assert not newcomer.is_staff
    assert _portal_login(client, newcomer) == 302  # back to the login page
