import pytest
from django.db import IntegrityError

from tests.loyalty.factories import BrandFactory, MemberFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_member_email_is_unique_case_insensitively():
    MemberFactory(email="Fan@Example.com")
    with pytest.raises(IntegrityError):
        MemberFactory(email="fan@example.COM")


def test_external_id_is_unique_per_brand_but_may_repeat_across_brands():
    brand_a, brand_b = BrandFactory(), BrandFactory()
    MembershipFactory(brand=brand_a, external_id="C-1")
    MembershipFactory(brand=brand_b, external_id="C-1")
    with pytest.raises(IntegrityError):
        MembershipFactory(brand=brand_a, external_id="C-1")
