"""Reads for brands, staff and memberships."""

from __future__ import annotations

from django.db.models import QuerySet

from loyalty.models import Brand, BrandStaff, Membership, User


def brand_list_active() -> QuerySet[Brand]:
    return Brand.objects.filter(is_active=True).order_by("name")


def brand_ids_for_staff(user: User) -> set[int]:
    """The brands whose partner portal this login may see (superusers: see every brand instead)."""
    if not user.is_authenticated or not user.is_active:
        return set()
    return set(BrandStaff.objects.filter(user=user).values_list("brand_id", flat=True))


def membership_list_for_user(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(member__user=user)
        .exclude(status=Membership.Status.LEFT)
        .select_related("brand")
        .order_by("brand__name")
    )


def membership_for_user(*, user: User, brand: Brand) -> Membership | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(member__user=user, brand=brand)
        .exclude(status=Membership.Status.LEFT)
        .first()
    )
