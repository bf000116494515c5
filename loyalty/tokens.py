"""Signed, expiring tokens mailed to people: the proof that they read the address they gave."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from loyalty.models import User

_EMAIL_VERIFICATION_SALT = "loyalty.email-verification"


def email_verification_token(user: User) -> str:
    # The address is signed too: a link mailed to an address the login no longer has proves nothing.
    return signing.TimestampSigner(salt=_EMAIL_VERIFICATION_SALT).sign_object({"user": user.pk, "email": user.email})


def user_for_email_verification_token(token: str) -> User | None:
    """The login the token was made for, if it is genuine, not expired and its address unchanged."""
    try:
        claims = signing.TimestampSigner(salt=_EMAIL_VERIFICATION_SALT).unsign_object(
            token, max_age=settings.EMAIL_VERIFICATION_MAX_AGE_SECONDS
        )
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(claims, dict):
        return None
    user = User.objects.filter(pk=claims.get("user"), is_active=True).first()
    if user is None or user.email != claims.get("email"):
        return None
    return user
