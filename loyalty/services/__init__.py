"""Every write of the loyalty app. Import from the submodules; the common ones are re-exported here."""

from loyalty.services.members import (
    EmailUnverifiedError,
    api_key_create,
    brand_staff_add,
    brand_staff_remove,
    email_verification_send,
    member_for_user,
    member_get_or_create_by_email,
    membership_enroll,
    membership_join,
    user_email_verify,
    user_profile_update,
    user_sign_up,
)

__all__ = [
    "EmailUnverifiedError",
    "api_key_create",
    "brand_staff_add",
    "brand_staff_remove",
    "email_verification_send",
    "member_for_user",
    "member_get_or_create_by_email",
    "membership_enroll",
    "membership_join",
    "user_email_verify",
    "user_profile_update",
    "user_sign_up",
]
