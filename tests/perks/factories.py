import uuid

import factory
from factory.django import DjangoModelFactory

from perks.models import Perk, Redemption
from perks.services import perk_redeem
from tests.loyalty.factories import AdjustmentFactory, BrandFactory, MembershipFactory


class PerkFactory(DjangoModelFactory):
    class Meta:
        model = Perk

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"Perk {n}")
    cost = 50


def funded_membership(brand=None, points=100, **kwargs):
    """A membership whose wallet holds `points` (credited through the ledger, like any real points)."""
    membership = MembershipFactory(**({"brand": brand} if brand else {}), **kwargs)
    if points:
        AdjustmentFactory(membership=membership, points=points, reason="test funds")
    membership.refresh_from_db()
    return membership


def redemption_for(brand) -> Redemption:
    perk = PerkFactory(brand=brand, cost=10)
    membership = funded_membership(brand=brand, points=10)
    return perk_redeem(membership=membership, perk=perk, request_key=uuid.uuid4().hex).redemption


BRAND_OBJECT_FACTORIES = {
    Perk: lambda brand: PerkFactory(brand=brand),
    Redemption: redemption_for,
}
