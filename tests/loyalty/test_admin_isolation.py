"""Tenant isolation in the partner portal: staff of brand A never see or choose brand B's rows.

The tests walk the admin registry, so every brand-owned model registered later (perks, channels...)
is checked too: add its factory to BRAND_OBJECT_FACTORIES and the tests cover it.
"""

from __future__ import annotations

import re
from importlib import import_module

import pytest
from django.contrib import admin
from django.urls import reverse

from loyalty.admin_site import BrandScopedAdmin, is_brand_scoped
from loyalty.models import (
    Adjustment,
    Brand,
    BrandApiKey,
    BrandStaff,
    EarnRule,
    Event,
    Member,
    Membership,
    Tier,
)
from tests.loyalty.factories import (
    AdjustmentFactory,
    BrandApiKeyFactory,
    BrandFactory,
    BrandStaffFactory,
    EarnRuleFactory,
    EventFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# How to make one object of each brand-owned model for a given brand. Other apps add theirs in
# tests/<app>/factories.py as a BRAND_OBJECT_FACTORIES dict of the same shape.
BRAND_OBJECT_FACTORIES = {
    Brand: lambda brand: brand,
    BrandStaff: lambda brand: BrandStaffFactory(brand=brand),
    Member: lambda brand: MembershipFactory(brand=brand).member,
    Membership: lambda brand: MembershipFactory(brand=brand),
    BrandApiKey: lambda brand: BrandApiKeyFactory(brand=brand),
    Tier: lambda brand: TierFactory(brand=brand),
    EarnRule: lambda brand: EarnRuleFactory(brand=brand),
    Event: lambda brand: EventFactory(membership__brand=brand),
    Adjustment: lambda brand: AdjustmentFactory(membership__brand=brand),
}
for _app in ("ledger", "perks", "livestream", "integrations"):
    try:
        _factories = import_module(f"tests.{_app}.factories")
    except ModuleNotFoundError:
        continue
    BRAND_OBJECT_FACTORIES.update(getattr(_factories, "BRAND_OBJECT_FACTORIES", {}))


def scoped_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, BrandScopedAdmin)
    ]


def admin_url(model, action, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{action}", args=args)


@pytest.fixture
def two_brands():
    brand_a = BrandFactory(name="Alpha Roasters", slug="alpha")
    brand_b = BrandFactory(name="Bravo Beats", slug="bravo")
    staff_a = BrandStaffFactory(brand=brand_a).user
    objects_a = {model: make(brand_a) for model, make in BRAND_OBJECT_FACTORIES.items()}
    objects_b = {model: make(brand_b) for model, make in BRAND_OBJECT_FACTORIES.items()}
    return brand_a, brand_b, staff_a, objects_a, objects_b


def test_every_brand_owned_model_admin_is_brand_scoped_and_has_a_test_factory():
    for model, model_admin in admin.site._registry.items():
        if is_brand_scoped(model):
            assert isinstance(model_admin, BrandScopedAdmin), f"{model.__name__} admin is not brand-scoped"
            assert model in BRAND_OBJECT_FACTORIES, f"add a factory for {model.__name__} to this test"


@pytest.mark.parametrize(("model", "model_admin"), scoped_admins(), ids=lambda v: getattr(v, "__name__", ""))
def test_changelist_shows_only_own_brand_rows(client, two_brands, model, model_admin):
    brand_a, brand_b, staff_a, objects_a, objects_b = two_brands
    client.force_login(staff_a)

    response = client.get(admin_url(model, "changelist"))

    assert response.status_code == 200
    shown = set(response.context["cl"].result_list)
    own_rows = set(model._default_manager.filter(**{model.brand_path: brand_a.pk}).distinct())
    assert objects_a[model] in shown
    assert objects_b[model] not in shown
    assert shown == own_rows
    assert brand_b.name not in response.content.decode()


@pytest.mark.parametrize(("model", "model_admin"), scoped_admins(), ids=lambda v: getattr(v, "__name__", ""))
def test_other_brand_object_urls_are_404(client, two_brands, model, model_admin):
    _, _, staff_a, objects_a, objects_b = two_brands
    client.force_login(staff_a)

    for action in ("change", "delete", "history"):
        assert client.get(admin_url(model, action, objects_b[model].pk)).status_code == 404
    assert client.get(admin_url(model, "change", objects_a[model].pk)).status_code == 200


@pytest.mark.parametrize(
    ("model", "model_admin"),
    [(model, model_admin) for model, model_admin in scoped_admins() if model_admin.search_fields],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_search_finds_nothing_of_the_other_brand(client, two_brands, model, model_admin):
    _, _, staff_a, _, objects_b = two_brands
    client.force_login(staff_a)
    term = str(objects_b[model])[:6]
    response = client.get(admin_url(model, "changelist"), {"q": term})
    assert objects_b[model] not in set(response.context["cl"].result_list)


def _option_values(html: str, field: str) -> set[str]:
    select = re.search(rf'<select[^>]*name="{field}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no <select name={field}> on the page"
    return set(re.findall(r'<option value="([^"]+)"', select.group(1)))


def test_foreign_key_choices_offer_only_own_brand(client, two_brands):
    brand_a, _brand_b, staff_a, _objects_a, _objects_b = two_brands
    client.force_login(staff_a)

    membership_form = client.get(admin_url(Membership, "add")).content.decode()
    assert _option_values(membership_form, "brand") == {str(brand_a.pk)}

    key_form = client.get(admin_url(BrandApiKey, "add")).content.decode()
    assert _option_values(key_form, "brand") == {str(brand_a.pk)}


def test_posting_another_brands_id_in_a_foreign_key_is_refused(client, two_brands):
    _brand_a, brand_b, staff_a, _, _ = two_brands
    client.force_login(staff_a)

    response = client.post(admin_url(BrandApiKey, "add"), {"name": "Sneaky till", "brand": brand_b.pk})

    assert response.status_code == 200  # the form comes back with an error, nothing is saved
    assert "Select a valid choice" in response.content.decode()
    assert not BrandApiKey.objects.filter(name="Sneaky till").exists()


def test_autocomplete_offers_only_own_brand_members(client, two_brands):
    _, _, staff_a, objects_a, objects_b = two_brands
    client.force_login(staff_a)

    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "loyalty",
            "model_name": "membership",
            "field_name": "member",
            "term": "",
        },
    )

    ids = {int(result["id"]) for result in response.json()["results"]}
    assert objects_a[Member].pk in ids
    assert objects_b[Member].pk not in ids


def test_list_filter_choices_do_not_name_other_brands(client, two_brands):
    _, _brand_b, staff_a, _, _ = two_brands
    client.force_login(staff_a)
    html = client.get(admin_url(Membership, "changelist")).content.decode()
    assert "Bravo Beats" not in html


def test_staff_cannot_see_the_login_list_nor_change_another_login(client, two_brands):
    _, _, staff_a, _, _ = two_brands
    client.force_login(staff_a)
    assert client.get(reverse("admin:loyalty_user_changelist")).status_code == 403


def test_superuser_sees_every_brand(client, two_brands):
    brand_a, brand_b, *_ = two_brands
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    shown = set(client.get(admin_url(Brand, "changelist")).context["cl"].result_list)
    assert {brand_a, brand_b} <= shown


def test_a_login_without_a_brand_sees_no_portal_models(client):
    client.force_login(UserFactory(is_staff=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert response.context["app_list"] == []


def test_portal_header_shows_the_brand_name(client, two_brands):
    _, _, staff_a, _, _ = two_brands
    client.force_login(staff_a)
    assert "Alpha Roasters" in client.get(reverse("admin:index")).content.decode()
