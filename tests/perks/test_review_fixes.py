import uuid

import pytest
from django.urls import reverse

from config.errors import ApplicationError
from perks.models import Perk, Redemption
from perks.services import perk_redeem, redemption_cancel
from tests.concurrency import run_concurrently
from tests.loyalty.factories import BrandStaffFactory
from tests.perks.factories import PerkFactory, funded_membership


@pytest.mark.django_db(transaction=True)
def test_redeeming_and_cancelling_the_same_perk_at_once_never_deadlocks():
    perk = PerkFactory(cost=5, stock=100)
    members = [funded_membership(brand=perk.brand, points=50) for _ in range(6)]
    issued = [perk_redeem(membership=m, perk=perk, request_key=uuid.uuid4().hex).redemption for m in members]

    def work(n):
        try:
            if n % 2:
                redemption_cancel(redemption=issued[n % len(issued)])
            else:
                perk_redeem(membership=members[n % len(members)], perk=perk, request_key=uuid.uuid4().hex)
            return "ok"
        except ApplicationError as error:
            return error.code

    outcomes = run_concurrently(work, 48)

    assert set(outcomes) == {"ok"}  # a deadlock would surface as a database error, not an outcome
    live = Redemption.objects.exclude(status=Redemption.Status.CANCELLED).count()
    assert Perk.objects.get(pk=perk.pk).stock == 100 - live


@pytest.mark.django_db
def test_staff_stock_edit_applies_as_a_difference_to_what_sold_meanwhile(client):
    staff = BrandStaffFactory()
    perk = PerkFactory(brand=staff.brand, cost=1, stock=10)
    client.force_login(staff.user)
    url = reverse("admin:perks_perk_change", args=[perk.pk])
    client.get(url)
    for _ in range(4):  # four fans redeem while the form is open
        perk_redeem(membership=funded_membership(brand=perk.brand, points=1), perk=perk, request_key=uuid.uuid4().hex)

    form = {
        "brand": staff.brand.pk,
        "name": perk.name,
        "category": perk.category,
        "cost": 1,
        "stock": 12,
        "fulfillment": perk.fulfillment,
        "is_active": "on",
        "initial-stock": 10,
    }
    response = client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Perk.objects.get(pk=perk.pk).stock == 8  # 12 entered over 10 seen: +2 on the 6 left


@pytest.mark.django_db
def test_a_stock_edit_that_cannot_apply_is_a_form_error_and_saves_no_other_field(client):
    staff = BrandStaffFactory()
    perk = PerkFactory(brand=staff.brand, cost=1, stock=10, name="Tote bag")
    client.force_login(staff.user)
    url = reverse("admin:perks_perk_change", args=[perk.pk])
    for _ in range(8):  # eight sold while staff look at 10
        perk_redeem(membership=funded_membership(brand=perk.brand, points=1), perk=perk, request_key=uuid.uuid4().hex)

    form = {
        "brand": staff.brand.pk,
        "name": "Renamed tote",
        "category": perk.category,
        "cost": 1,
        "stock": 5,  # removing 5 of the 2 left
        "fulfillment": perk.fulfillment,
        "is_active": "on",
        "initial-stock": 10,
    }
    response = client.post(url, form)

    assert response.status_code == 200
    assert "Fewer are left than you remove" in response.content.decode()
    perk.refresh_from_db()
    assert (perk.name, perk.stock) == ("Tote bag", 2)


@pytest.mark.django_db(transaction=True)
def test_a_stock_edit_racing_redemptions_never_takes_the_stock_below_zero():
    """The portal's check holds the perk row until the save commits: redemptions wait, then see the result."""
    from django.db import transaction

    from perks.services import perk_stock_check, perk_stock_set

    perk = PerkFactory(cost=1, stock=6)
    members = [funded_membership(brand=perk.brand, points=1) for _ in range(8)]

    def work(n):
        try:
            if n == 0:
                with transaction.atomic():
                    perk_stock_check(perk=perk, seen=6, wanted=2)
                    perk_stock_set(perk=perk, seen=6, wanted=2)
                return "edited"
            perk_redeem(membership=members[n], perk=perk, request_key=uuid.uuid4().hex)
            return "sold"
        except ApplicationError as error:
            return error.code

    outcomes = run_concurrently(work, 8)

    sold = outcomes.count("sold")
    perk.refresh_from_db()
    assert outcomes[0] in {"edited", "stock_changed"}, outcomes
    if outcomes[0] == "edited":
        assert perk.stock == 6 - 4 - sold
    else:  # the edit found fewer than 4 left (sales came first) and changed nothing
        assert perk.stock == 6 - sold < 4
    assert perk.stock >= 0
    assert Redemption.objects.filter(perk=perk).count() == sold
