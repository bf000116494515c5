import factory
from factory.django import DjangoModelFactory

from loyalty.models import Brand, BrandApiKey, BrandStaff, Member, Membership, User

DEFAULT_PASSWORD = "a-strong-test-password"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
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
    class Meta:
        model = BrandStaff

    user = factory.SubFactory(UserFactory, is_staff=True)
    brand = factory.SubFactory(BrandFactory)
    role = BrandStaff.Role.STAFF


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
