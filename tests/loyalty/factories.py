import uuid
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

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
    User,
)
from loyalty.services import brand_staff_add

DEFAULT_PASSWORD = "a-strong-test-password"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    email_verified_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class BrandFactory(DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")
    timezone = "America/New_York"
    points_name = "points"


class BrandStaffFactory(DjangoModelFactory):
    """Through brand_staff_add, as the portal does: the service, not the factory, opens the portal to the login."""

    class Meta:
        model = BrandStaff

    user = factory.SubFactory(UserFactory)
    brand = factory.SubFactory(BrandFactory)
    role = BrandStaff.Role.STAFF

    @classmethod
    def _create(cls, model_class, *, user, brand, role, **kwargs):
        return brand_staff_add(user=user, brand=brand, role=role)


class MemberFactory(DjangoModelFactory):
    class Meta:
        model = Member

    email = factory.Sequence(lambda n: f"member{n}@example.com")
    name = factory.Faker("name")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    member = factory.SubFactory(MemberFactory)
    brand = factory.SubFactory(BrandFactory)


class BrandApiKeyFactory(DjangoModelFactory):
    """Creates a hashed key; the plain key is on the instance as `.plain_key` for tests."""

    class Meta:
        model = BrandApiKey

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"POS {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        instance, key = model_class.objects.create_key(**kwargs)
        instance.plain_key = key
        return instance


class TierFactory(DjangoModelFactory):
    class Meta:
        model = Tier

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n + 1)
    threshold = factory.Sequence(lambda n: n * 100)
    multiplier = Decimal("1.00")


class EarnRuleFactory(DjangoModelFactory):
    """A custom-event rule by default; `EarnRuleFactory(purchase=True)` for a purchase rule."""

    class Meta:
        model = EarnRule

    class Params:
        purchase = factory.Trait(event_type="purchase", points=None, points_per_unit=Decimal("1"), currency="USD")

    brand = factory.SubFactory(BrandFactory)
    event_type = factory.Sequence(lambda n: f"custom_{n}")
    points = 5


class EventFactory(DjangoModelFactory):
    class Meta:
        model = Event

    membership = factory.SubFactory(MembershipFactory)
    brand = factory.SelfAttribute("membership.brand")
    type = "check_in"
    occurred_at = factory.LazyFunction(timezone.now)


class AdjustmentFactory(DjangoModelFactory):
    """Posts through the service, so the ledger transaction is real."""

    class Meta:
        model = Adjustment

    membership = factory.SubFactory(MembershipFactory)
    points = 10
    reason = "goodwill"

    @classmethod
    def _create(cls, model_class, membership, points, reason, **kwargs):
        from loyalty.services.earning import adjustment_create

        return adjustment_create(membership=membership, points=points, reason=reason, idempotency_key=uuid.uuid4().hex)
