"""Brands, the people who run them, and the fans who join their clubs.

Every brand-owned model names the path from itself to its brand in `brand_path`; the partner
portal (loyalty.admin_site.BrandScopedAdmin) uses it to scope querysets and choices, so a new
brand-owned model is scoped by declaring one attribute.
"""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from rest_framework_api_key.models import AbstractAPIKey


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA timezone (for example Europe/Paris).")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A login: a fan, a brand's staff, or an operator. Logs in with an email address."""

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip().lower()


class Brand(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="The brand's day (daily caps, reports) starts at midnight in this timezone.",
    )
    points_name = models.CharField(max_length=40, default="points", help_text='For example "Stars".')
    tagline = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "pk"

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class BrandStaff(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        STAFF = "staff", "Staff"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="brand_roles")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="staff")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "brand"

    class Meta:
        verbose_name = "staff member"
        verbose_name_plural = "staff"
        constraints = [models.UniqueConstraint(fields=["user", "brand"], name="brandstaff_user_brand_unique")]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()} of {self.brand})"


class Member(models.Model):
    """A person known to the platform, across brands. May or may not have a login."""

    email = models.EmailField(null=True, blank=True)  # noqa: DJ001 - NULL, not "", so that many may lack one
    name = models.CharField(max_length=120, blank=True)
    user = models.OneToOneField(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="member")
    created_at = models.DateTimeField(auto_now_add=True)

    # A member is a person across brands; a brand's staff see those who joined their club.
    brand_path = "memberships__brand"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(Lower("email"), name="member_email_ci_unique")]

    def __str__(self) -> str:
        return self.email or self.name or f"member #{self.pk}"


class Membership(models.Model):
    """A member in one brand's fan club."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        LEFT = "left", "Left"

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="memberships")
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="memberships")
    # NULL, not "", so that the per-brand uniqueness below applies only to ids that are present.
    external_id = models.CharField(  # noqa: DJ001
        max_length=120,
        null=True,
        blank=True,
        help_text="The brand's own id for this member (POS customer id, shop account id).",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    joined_at = models.DateTimeField(auto_now_add=True)

    brand_path = "brand"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "brand"], name="membership_member_brand_unique"),
            models.UniqueConstraint(
                fields=["brand", "external_id"],
                name="membership_brand_external_id_unique",
                condition=models.Q(external_id__isnull=False),
            ),
        ]
        indexes = [models.Index(fields=["brand", "-joined_at"])]

    def __str__(self) -> str:
        return f"{self.member} in {self.brand}"


class BrandApiKey(AbstractAPIKey):
    """An integrator's key. Only its hash is stored; the key itself is shown once, when created."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="api_keys")

    brand_path = "brand"

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
