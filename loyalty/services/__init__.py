"""Every write of the loyalty app. Import from the submodules; the common ones are re-exported here."""

from loyalty.services.members import (
    api_key_create,
    brand_staff_add,
    member_for_user,
    member_get_or_create_by_email,
    membership_join,
    user_sign_up,
)

__all__ = [
    "api_key_create",
    "brand_staff_add",
    "member_for_user",
    "member_get_or_create_by_email",
    "membership_join",
    "user_sign_up",
]
