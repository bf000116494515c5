from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from ledger.models import Account, Balance, Entry, ReconciliationFix, Transaction
from tests.ledger.factories import earn

pytestmark = pytest.mark.django_db
LEDGER_MODELS = [Account, Transaction, Entry, Balance, ReconciliationFix]


def _url(model, action, *args):
    return reverse(f"admin:ledger_{model._meta.model_name}_{action}", args=args)


@pytest.fixture
def books(issuance, wallet):
    posted = earn(issuance=issuance, wallet=wallet, amount=12, key="order-77").transaction
    ReconciliationFix.objects.create(account=wallet, before=None, after={"balance": 12}, performed_by="ops")
    return posted


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser(email="ops@example.com", password="a-strong-test-password")
    client.force_login(user)
    return client


@pytest.fixture
def brand_staff(client):
    user = get_user_model().objects.create_user(
        email="staff@example.com", password="a-strong-test-password", is_staff=True
    )
    client.force_login(user)
    return client


def test_every_ledger_model_is_registered_read_only_without_actions():
    for model in LEDGER_MODELS:
        model_admin = admin.site._registry[model]
        request = type("Request", (), {"user": type("User", (), {"is_superuser": True, "is_active": True})()})()
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
        assert model_admin.get_actions(request) == {}


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda model: model.__name__)
def test_superusers_see_the_ledger_lists_and_details_read_only(operator, books, model):
    assert operator.get(_url(model, "changelist")).status_code == 200
    row = model.objects.first()
    page = operator.get(_url(model, "change", row.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_the_transaction_page_shows_its_entries(operator, books, wallet):
    page = operator.get(_url(Transaction, "change", books.pk)).content.decode()
    assert "order-77" in page
    assert wallet.code in page


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda model: model.__name__)
def test_nobody_can_add_change_or_delete_through_the_portal(operator, books, model):
    row = model.objects.first()
    assert operator.get(_url(model, "add")).status_code == 403
    assert operator.post(_url(model, "change", row.pk), {}).status_code == 403
    assert operator.post(_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda model: model.__name__)
def test_brand_staff_do_not_see_the_ledger(brand_staff, books, model):
    assert brand_staff.get(_url(model, "changelist")).status_code == 403
    assert brand_staff.get(_url(model, "change", model.objects.first().pk)).status_code == 403
    index = brand_staff.get(reverse("admin:index")).content.decode()
    assert "/admin/ledger/" not in index


def test_search_finds_entries_by_account_code_or_key_and_accounts_by_code_prefix(operator, books, wallet, issuance):
    entries = operator.get(_url(Entry, "changelist"), {"q": wallet.code}).context["cl"].result_list
    assert {entry.account_id for entry in entries} == {wallet.pk}
    entries = operator.get(_url(Entry, "changelist"), {"q": "order-77"}).context["cl"].result_list
    assert len(entries) == 2
    accounts = operator.get(_url(Account, "changelist"), {"q": "test:issuance:"}).context["cl"].result_list
    assert list(accounts) == [issuance]
