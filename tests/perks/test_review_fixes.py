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
