"""Writes for brands, staff, members and memberships. Views, admin and commands call these."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from config.errors import ApplicationError
from loyalty.models import Brand, BrandApiKey, BrandStaff, Member, Membership, User


@transaction.atomic
def user_sign_up(*, email: str, password: str, name: str = "") -> User:
    """Create a fan's login and link it to their member record (one may exist from a POS)."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ApplicationError(
            "email_taken",
            "An account with this email already exists.",
            fields={"email": ["An account with this email already exists."]},
        )
    user = User.objects.create_user(email=email, password=password, first_name=name[:150])
    member = member_get_or_create_by_email(email=email, name=name)
    if member.user_id is None:
        member.user = user
        member.save(update_fields=["user"])
    return user


def member_get_or_create_by_email(*, email: str, name: str = "") -> Member:
    """The member with this email (case-insensitive), created on first sight; safe under races."""
    email = email.strip().lower()
    member = Member.objects.filter(email__iexact=email).first()
    if member is not None:
        return member
    try:
        with transaction.atomic():
            return Member.objects.create(email=email, name=name)
    except IntegrityError:  # a concurrent request created it between our read and our insert
        return Member.objects.get(email__iexact=email)


def member_for_user(*, user: User) -> Member:
    """The member record behind a login, created if the login predates it."""
    member = Member.objects.filter(user=user).first()
    if member is not None:
        return member
    member = member_get_or_create_by_email(email=user.email, name=user.get_full_name())
    if member.user_id is None:
        member.user = user
        member.save(update_fields=["user"])
    return member


@transaction.atomic
def membership_join(*, member: Member, brand: Brand) -> Membership:
    """Join a brand's fan club; joining again is harmless and re-activates a club one had left."""
    if not brand.is_active:
        raise ApplicationError("brand_inactive", f"{brand.name} is not accepting members right now.")
    membership, created = Membership.objects.get_or_create(member=member, brand=brand)
    if not created and membership.status == Membership.Status.LEFT:
        membership.status = Membership.Status.ACTIVE
        membership.save(update_fields=["status"])
    return membership


@transaction.atomic
def brand_staff_add(*, user: User, brand: Brand, role: str = BrandStaff.Role.STAFF) -> BrandStaff:
    """Give a login access to a brand's partner portal."""
    staff, _ = BrandStaff.objects.update_or_create(user=user, brand=brand, defaults={"role": role})
    if not user.is_staff:
        user.is_staff = True  # Django admin admits only is_staff logins; the brand scope does the rest
        user.save(update_fields=["is_staff"])
    return staff


def api_key_create(*, brand: Brand, name: str) -> tuple[BrandApiKey, str]:
    """Create an API key for a brand. Returns the row and the key, which is never shown again."""
    return BrandApiKey.objects.create_key(brand=brand, name=name)
