"""Brands, the people who run them, and the fans who join their clubs.

Every brand-owned model names the path from itself to its brand in `brand_path`; the partner
portal (loyalty.admin_site.BrandScopedAdmin) uses it to scope querysets and choices, so a new
brand-owned model is scoped by declaring one attribute.
"""

from __future__ import annotations

import zoneinfo
from decimal import Decimal

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower, Now
from django.utils import timezone
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
    # Set when the person proved they read this address (a signed link, or a password reset mailed
    # to it). Only then is the login linked to the member a till may have made with this email.
    email_verified_at = models.DateTimeField(null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip().lower()


class Network(models.Model):
    """An open network: one portable point (e.g. LTZ) that its brands issue and honor, settled between them.

    Network points are a unit of their own in the ledger: one wallet per person and network (not per
    brand), an issuance account per issuing brand and a redemptions account per honoring brand.
    """

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    unit = models.CharField(max_length=16, help_text='The name of its point, for example "LTZ".')
    point_value = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=Decimal("0.01"),
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="What the network pays a brand for each point of a perk it honored (settlement).",
    )
    currency = models.CharField(max_length=3, default="USD", help_text="Of the settlement value, ISO 4217.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})"


class Brand(models.Model):
    class TierWindow(models.TextChoices):
        ROLLING = "rolling", "Rolling months"
        CALENDAR_YEAR = "calendar_year", "Calendar year"

    class TierDowngrade(models.TextChoices):
        IMMEDIATELY = "immediately", "At once"
        END_OF_PERIOD = "end_of_period", "At the end of the next qualification period (the tier is kept until then)"

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
    tier_window_months = models.PositiveSmallIntegerField(
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text="Tiers are qualified by the points earned in this many months, the current one included.",
    )
    points_expire_months = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(120)],
        help_text="Points expire this many months after the end of the month they were earned (Starbucks: 6). "
        "Empty: points never expire.",
    )
    tier_window = models.CharField(
        max_length=16,
        choices=TierWindow.choices,
        default=TierWindow.ROLLING,
        help_text="Which earned points qualify for a tier: those of the last months (above), or of this calendar year.",
    )
    tier_downgrade = models.CharField(
        max_length=16,
        choices=TierDowngrade.choices,
        default=TierDowngrade.IMMEDIATELY,
        help_text="When a member whose qualifying points fall below their tier moves down.",
    )
    # When the brand switched expiry on: points earned before count as earned in that month, so that
    # switching it on never expires at once what members were told would not expire.
    points_expire_from = models.DateField(null=True, blank=True, editable=False)
    # The brand day the daily lifecycle job (expiry, pending releases, tiers) last ran for.
    lifecycle_ran_on = models.DateField(null=True, blank=True, editable=False)
    network = models.ForeignKey(
        Network,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="brands",
        help_text="The open network the brand issues and honors points of (the operator decides).",
    )
    loyalteez_brand_id = models.CharField(
        max_length=120,
        blank=True,
        help_text="The brand's id at Loyalteez: the compatibility endpoint accepts calls that name it.",
    )
    point_value = models.DecimalField(
        "value of a point",
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="What one point is worth to the brand, in the currency of its purchases (for the economics "
        "report). Empty: the median of its perks' cash value per point.",
    )
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "pk"

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Switching expiry on (or off) moves the month expiry counts from; changing the months does not.
        stored = Brand.objects.filter(pk=self.pk).values_list("points_expire_months").first() if self.pk else None
        if self.points_expire_months is None:
            self.points_expire_from = None
        elif stored is not None and stored[0] is None:  # an existing brand whose points did not expire
            self.points_expire_from = timezone.now().astimezone(self.zone).date().replace(day=1)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "points_expire_from"}
        super().save(*args, **kwargs)

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
        # Not the name: a member's name is their own, across brands, and this label shows in every
        # brand's portal. A brand sees the name it knows on the membership.
        return self.email or f"member #{self.pk}"


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
    # The name this brand knows the member by: what the fan gave when joining, or what staff typed. The
    # member's own name is theirs, shared by every brand they belong to, and only they or an operator edit it.
    name = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    joined_at = models.DateTimeField(auto_now_add=True)
    tier = models.ForeignKey("Tier", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tier_since = models.DateTimeField(null=True, blank=True, editable=False)
    # Under the brand's end-of-period policy: the member keeps the tier at least until this day (brand
    # timezone), even when their qualifying points fall below it. NULL: the tier goes when the points do.
    tier_valid_until = models.DateField(null=True, blank=True, editable=False)
    wallet = models.OneToOneField(
        "ledger.Account", null=True, blank=True, editable=False, on_delete=models.PROTECT, related_name="+"
    )
    # Points earned inside a return window: in the ledger, not spendable until the lifecycle job releases
    # them to the wallet (loyalty.services.lifecycle). Created on the first pending earn.
    pending_wallet = models.OneToOneField(
        "ledger.Account", null=True, blank=True, editable=False, on_delete=models.PROTECT, related_name="+"
    )
    # Rollups kept by loyalty.signals from the ledger's posted signal, in the posting's transaction.
    lifetime_earned = models.BigIntegerField(default=0, editable=False)
    lifetime_redeemed = models.BigIntegerField(default=0, editable=False)
    lifetime_expired = models.BigIntegerField(default=0, editable=False)

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
        indexes = [
            models.Index(fields=["brand", "-joined_at"]),
            # The lifecycle job walks a brand's memberships in id order, in chunks.
            models.Index(fields=["brand", "id"], name="membership_brand_id_idx"),
            # The dashboard's members by tier: an index-only count.
            models.Index(fields=["brand", "tier"], name="membership_brand_tier_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member} in {self.brand}"


class BrandApiKey(AbstractAPIKey):
    """An integrator's key. Only its hash is stored; the key itself is shown once, when created."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="api_keys")

    brand_path = "brand"

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


class Tier(models.Model):
    """A level of a brand's program, qualified by points earned over the brand's rolling window."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(max_length=60)
    rank = models.PositiveSmallIntegerField(help_text="1 is the entry tier; higher ranks are better.")
    threshold = models.PositiveIntegerField(help_text="Qualifying points needed to reach this tier.")
    multiplier = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("1.00"), help_text="Earn rate multiplier, e.g. 1.20."
    )
    benefits = models.TextField(blank=True)
    points_never_expire = models.BooleanField(
        default=False, help_text="A member who holds this tier keeps all their points: none expire meanwhile."
    )

    brand_path = "brand"

    class Meta:
        ordering = ["brand", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "rank"], name="tier_brand_rank_unique"),
            models.UniqueConstraint(fields=["brand", "threshold"], name="tier_brand_threshold_unique"),
            models.UniqueConstraint(fields=["brand", "name"], name="tier_brand_name_unique"),
            models.CheckConstraint(condition=models.Q(multiplier__gt=0), name="tier_multiplier_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (x{self.multiplier})"


class EarnRule(models.Model):
    """How an event earns: `purchase` by amount x rate, any other (custom) type a fixed number of points.

    Caps count awarded events per member per day / week / month of the brand's timezone.
    """

    PURCHASE = "purchase"
    RESERVED_TYPES = frozenset({"refund", "adjustment"})

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="earn_rules")
    event_type = models.SlugField(
        max_length=40,
        help_text='"purchase", or a custom event such as check_in, review, referral, watch_minute.',
    )
    name = models.CharField(max_length=120, blank=True)
    points_per_unit = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Purchases: points per 1 unit of the currency (1 Star per $1 is 1; 10 points per $1 is 10). "
        "Empty: no brand points (a network brand may award only network points).",
    )
    network_points_per_unit = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="Purchases of a network brand: network points per 1 unit of the currency (Loyalteez: 10 per $1), "
        "flat: no tier multiplier, never expiring.",
    )
    currency = models.CharField(max_length=3, blank=True, help_text="Purchases: ISO 4217 code, e.g. USD.")
    minimum_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    points = models.PositiveIntegerField(null=True, blank=True, help_text="Custom events: points per event.")
    cap_per_day = models.PositiveIntegerField(null=True, blank=True, help_text="Awarded events per member.")
    cap_per_week = models.PositiveIntegerField(null=True, blank=True)
    cap_per_month = models.PositiveIntegerField(null=True, blank=True)
    pending_days = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(365)],
        help_text="Purchases: points stay pending (not spendable) for this many days, the return window. "
        "0: spendable at once.",
    )
    streak_length = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(2), MaxValueValidator(366)],
        help_text="Custom events: a bonus for this many consecutive days (or weeks) with at least one awarded event.",
    )
    streak_period = models.CharField(max_length=5, choices=[("day", "Days"), ("week", "Weeks")], default="day")
    streak_bonus = models.PositiveIntegerField(
        null=True, blank=True, help_text="Points of the streak bonus, once per streak."
    )
    active_from = models.DateTimeField(null=True, blank=True)
    active_until = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "brand"

    class Meta:
        ordering = ["brand", "event_type"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "event_type"], name="earnrule_brand_event_type_unique"),
            models.CheckConstraint(
                condition=(
                    # Explicit IS NOT NULL: a CHECK passes when its condition is NULL.
                    (
                        models.Q(event_type="purchase", currency__regex=r"^[A-Z]{3}$")
                        & (
                            models.Q(points_per_unit__isnull=False, points_per_unit__gt=0)
                            | models.Q(network_points_per_unit__isnull=False, network_points_per_unit__gt=0)
                        )
                    )
                    | (~models.Q(event_type="purchase") & models.Q(points__isnull=False, points__gt=0))
                ),
                name="earnrule_purchase_rate_or_fixed_points",
            ),
            models.CheckConstraint(
                condition=models.Q(streak_length__isnull=True, streak_bonus__isnull=True)
                | (
                    ~models.Q(event_type="purchase")
                    & models.Q(streak_length__gte=2, streak_bonus__gt=0, streak_period__in=["day", "week"])
                ),
                name="earnrule_streak_complete",
            ),
            models.CheckConstraint(
                condition=models.Q(pending_days=0) | models.Q(event_type="purchase"),
                name="earnrule_pending_purchases_only",
            ),
            models.CheckConstraint(
                condition=models.Q(active_from__isnull=True)
                | models.Q(active_until__isnull=True)
                | models.Q(active_until__gt=models.F("active_from")),
                name="earnrule_active_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.event_type

    @property
    def is_purchase(self) -> bool:
        return self.event_type == self.PURCHASE

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.event_type in self.RESERVED_TYPES:
            errors["event_type"] = f'"{self.event_type}" is built in and cannot have an earn rule.'
        if self.is_purchase:
            if (not self.points_per_unit or self.points_per_unit <= 0) and not self.network_points_per_unit:
                errors["points_per_unit"] = "A purchase rule needs a rate above zero (or a network rate)."
            if not self.currency:
                errors["currency"] = "A purchase rule needs a currency."
            self.points = None
            if self.streak_length or self.streak_bonus:
                errors["streak_length"] = "Streaks are for custom events, not purchases."
        else:
            if not self.points:
                errors["points"] = "A custom event rule needs a number of points."
            if self.pending_days:
                errors["pending_days"] = "Only purchase points wait out a return window."
            if self.network_points_per_unit:
                errors["network_points_per_unit"] = "Network points are earned by purchases."
            if bool(self.streak_length) != bool(self.streak_bonus):
                errors["streak_bonus"] = "A streak needs both a length and a bonus."
        if self.currency:
            self.currency = self.currency.upper()
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            errors["active_until"] = "Must be after 'active from'."
        if errors:
            raise ValidationError(errors)


class Event(models.Model):
    """Something a member did that may earn points: a purchase, a refund, a custom event.

    Accepted events are stored `pending` as they came (the member as the till named them), and a worker
    resolves the member, applies the rules and writes the outcome in batches (loyalty.services.processing).
    The row is also the event's idempotency record: `idempotency_key` (or a purchase's `order_id`) and
    `request_hash` tell a retry of the same request (replayed) from a different one (409).
    """

    REFUND = "refund"
    # Keys of events recorded by Tally itself (watch minutes) start with this; the API refuses such keys.
    INTERNAL_KEY_PREFIX = "tally:"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        AWARDED = "awarded", "Awarded"
        REJECTED = "rejected", "Rejected"
        # The dead letter: processing it failed EVENT_MAX_ATTEMPTS times (not a rule: an error, logged);
        # set aside so that the brand's later events go on. Staff can send it back to pending.
        FAILED = "failed", "Failed (set aside)"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="events", db_index=False)
    # NULL while pending: resolved (and created on first sight) by the processor, not at accept time.
    membership = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    member_email = models.CharField(
        max_length=254, blank=True, default="", db_default="", help_text="The member as sent."
    )
    member_external_id = models.CharField(
        max_length=120, blank=True, default="", db_default="", help_text="The member as sent."
    )
    type = models.SlugField(max_length=40, db_index=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_default="pending")
    reason = models.CharField(max_length=40, blank=True, default="", db_default="", help_text="Why it was rejected.")
    points = models.BigIntegerField(default=0, db_default=0, help_text="Signed: a refund's points are negative.")
    order_id = models.CharField(max_length=120, blank=True, default="", db_default="")
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    occurred_at = models.DateTimeField()
    location_id = models.CharField(max_length=120, blank=True, default="", db_default="")
    metadata = models.JSONField(default=dict, blank=True)
    # NULL, not "", so that uniqueness applies only to events that have a key. A purchase sent without
    # one is keyed by its order id (event_purchase_order_unique) and leaves this NULL.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=255,
        null=True,
        blank=True,
        help_text="The client's Idempotency-Key (or the item's idempotency_key); tally:... for Tally's own.",
    )
    request_hash = models.CharField(
        max_length=64, blank=True, default="", db_default="", help_text="SHA-256 of the request."
    )
    refund_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds", db_index=False
    )
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"), db_default=0)
    refunded_points = models.BigIntegerField(default=0, db_default=0, help_text="Purchase: points reversed by refunds.")
    unrecovered_points = models.BigIntegerField(
        default=0, db_default=0, help_text="Refund: points owed back that the wallet no longer held (already spent)."
    )
    tier_name = models.CharField(max_length=60, blank=True, default="", db_default="", help_text="Tier when processed.")
    # Purchases inside the rule's return window: the brand day their points become spendable.
    pending_until = models.DateField(null=True, blank=True)
    # Purchases of a network brand: the network points they earned (a refund's are negative), and what
    # refunds took back of them.
    network_points = models.BigIntegerField(default=0, db_default=0)
    refunded_network_points = models.BigIntegerField(default=0, db_default=0)
    multiplier = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    balance_after = models.BigIntegerField(null=True, blank=True)
    # No FOREIGN KEY constraint: the processor sets it to a transaction it posted in the same database
    # transaction, and ledger transactions are never deleted; the constraint would cost a check per event
    # at every batch's commit.
    ledger_transaction = models.ForeignKey(
        "ledger.Transaction",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)
    # Times processing this event failed with an error (not a business rule), and the last error.
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    last_error = models.TextField(blank=True, default="", db_default="")

    brand_path = "brand"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The database itself refuses a second purchase with the same order id: no double credit.
            models.UniqueConstraint(
                fields=["brand", "order_id"],
                condition=models.Q(type="purchase"),
                name="event_purchase_order_unique",
            ),
            models.UniqueConstraint(
                fields=["brand", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="event_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=models.Q(refunded_points__gte=0), name="event_refunded_points_gte_0"),
            models.CheckConstraint(
                condition=~models.Q(status="pending") | models.Q(processed_at__isnull=True),
                name="event_pending_not_processed",
            ),
        ]
        indexes = [
            models.Index(fields=["brand", "-created_at"], name="event_brand_recent_idx"),
            # What the processor claims: a brand's pending events, oldest first. Partial, so it stays as
            # small as the backlog however many events were ever processed.
            models.Index(fields=["brand", "id"], name="event_pending_idx", condition=models.Q(status="pending")),
            models.Index(fields=["refund_of"], name="event_refund_of_idx", condition=models.Q(refund_of__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} ({self.status})"


class AwardCounter(models.Model):
    """How many events of one type a membership was awarded on one day of the brand's calendar.

    Kept by the processor in the batch's own transaction, and what caps are counted on (day, week and
    month are sums of at most 31 rows), instead of counting events. Kept for every custom event type
    (watch minutes, check-ins...) and for purchases when the purchase rule has a cap.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+", db_index=False)
    event_type = models.SlugField(max_length=40, db_index=False)
    day = models.DateField(help_text="The brand's day (its timezone).")
    awarded = models.PositiveIntegerField(default=0)
    points = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "event_type", "day"], name="awardcounter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} on {self.day}: {self.awarded}"


class QualifyingBucket(models.Model):
    """Points a membership earned from earn events in one month of the brand's calendar.

    Qualifying points = the sum of the last `brand.tier_window_months` buckets: at most a few dozen
    rows, so no request ever scans the ledger to know a tier.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="qualifying_buckets")
    month = models.DateField(help_text="First day of the month, brand timezone.")
    points = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "month"], name="qualifyingbucket_membership_month_unique")
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.points}"


class Adjustment(models.Model):
    """A manual correction of a member's points, with its reason and who made it."""

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="adjustments")
    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="adjustments")
    points = models.BigIntegerField()
    reason = models.CharField(max_length=500)
    created_by_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by_api_key = models.ForeignKey(
        BrandApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ledger_transaction = models.OneToOneField("ledger.Transaction", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "brand"

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(points=0), name="adjustment_points_not_zero"),
            models.CheckConstraint(condition=~models.Q(reason=""), name="adjustment_reason_required"),
        ]

    def __str__(self) -> str:
        return f"{self.points:+d} for {self.membership.member}: {self.reason}"

    @property
    def created_by(self) -> str:
        if self.created_by_user_id:
            return str(self.created_by_user)
        if self.created_by_api_key_id:
            return f"API key {self.created_by_api_key.name}"
        return "system"


class IdempotencyRecord(models.Model):
    """The first answer to an API write, replayed for a retry with the same key (Stripe's semantics)."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    # No index of its own: the unique (brand, key) index leads with it, and a second one on the brand alone
    # only costs every claim, and could be picked for a lookup by key.
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["brand", "key"], name="idempotency_brand_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class PointsLot(models.Model):
    """The points a membership's wallet received in one month of the brand's calendar: what expires together.

    Kept by loyalty.signals from every posting to a wallet, in the posting's transaction: an earn adds to
    the month it was earned in, a refund takes back from its purchase's month, any other credit (an
    adjustment, a cancelled redemption, released pending points) adds to the month it happened. Spending
    does not touch lots: spending takes the oldest points first, so what is left of the wallet is always
    its newest points, and the points of the lots up to month M still there are
    max(0, balance - the lots after M) (loyalty.services.lifecycle). `closed` once the lot's expiry date
    passed and the lifecycle job expired what was left of it.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="points_lots", db_index=False)
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField(help_text="First day of the month, brand timezone.")
    points = models.BigIntegerField(default=0)
    closed = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "month"], name="pointslot_membership_month_unique")
        ]
        indexes = [
            # What the daily expiry walks: a brand's members with open lots, in member order, with the months.
            models.Index(
                fields=["brand", "membership", "month"], name="pointslot_open_idx", condition=models.Q(closed=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.points}"


class PendingLot(models.Model):
    """Purchase points of one membership waiting out their return window, by the day they are released."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="pending_lots", db_index=False)
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", db_index=False)
    release_on = models.DateField(help_text="The brand day the points become spendable.")
    points = models.BigIntegerField(default=0)
    # The ledger transaction that moved them to the wallet (NULL: still pending).
    released_transaction = models.ForeignKey(
        "ledger.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "release_on"], name="pendinglot_membership_day_unique"),
            models.CheckConstraint(condition=models.Q(points__gte=0), name="pendinglot_points_gte_0"),
        ]
        indexes = [
            models.Index(
                fields=["brand", "release_on"],
                name="pendinglot_unreleased_idx",
                condition=models.Q(released_transaction__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.points} on {self.release_on}"


class TierChange(models.Model):
    """A membership's move from one tier to another: who, from, to, why and when. Append-only."""

    class Reason(models.TextChoices):
        EARNED = "earned", "Earned points"
        REFUND = "refund", "A refund took back qualifying points"
        REQUALIFICATION = "requalification", "Re-qualification"
        IMPORT = "import", "Imported with the member (CSV import)"

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="tier_changes")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", db_index=False)
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The names as they were: a tier may be renamed or removed later, the record stays readable.
    from_name = models.CharField(max_length=60, blank=True)
    to_name = models.CharField(max_length=60, blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    qualifying_points = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    brand_path = "brand"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_name or '-'} -> {self.to_name or '-'} ({self.reason})"


class Streak(models.Model):
    """A membership's current run of consecutive brand days (or weeks) with an awarded event of a type."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+", db_index=False)
    event_type = models.SlugField(max_length=40)
    last_period = models.DateField(help_text="The last day (or Monday of the last week) of the run.")
    length = models.PositiveIntegerField(default=1)
    bonus_paid = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "event_type"], name="streak_membership_type_unique")
        ]

    def __str__(self) -> str:
        return f"{self.event_type}: {self.length} to {self.last_period}"


class NetworkWallet(models.Model):
    """A person's network points: one ledger wallet per member and network, whatever brand they earn at."""

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="wallets")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="network_wallets")
    account = models.OneToOneField("ledger.Account", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "network"], name="networkwallet_member_unique")]

    def __str__(self) -> str:
        return f"{self.member} in {self.network}"


class NetworkLot(models.Model):
    """Network points a person earned at one brand in one month, and how many of them are still unspent:
    spending takes the oldest first, and says which brands funded it (settlement). Kept with the wallet:
    the lots of a person's network wallet always sum to its balance."""

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="+", db_index=False)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", db_index=False)
    issuer = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="+")
    month = models.DateField(help_text="First day of the month the points were earned (UTC).")
    left = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "network", "issuer", "month"], name="networklot_unique"),
            models.CheckConstraint(condition=models.Q(left__gte=0), name="networklot_left_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.left} of {self.issuer_id} ({self.month:%Y-%m})"


class NetworkSpend(models.Model):
    """Network points spent at (or given back by) a brand, by the brand that issued them: what the monthly
    settlement adds up. Append-only: a cancelled redemption writes negative rows in the month it was
    cancelled, so a closed month never changes."""

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="spends")
    issuer = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="+")
    honoring = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", db_index=False)
    points = models.BigIntegerField(help_text="Negative: given back (a cancelled redemption).")
    month = models.DateField(help_text="First day of the settlement month (UTC) it counts in.")
    ledger_transaction = models.ForeignKey(
        "ledger.Transaction", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["network", "month"], name="networkspend_month_idx")]

    def __str__(self) -> str:
        return f"{self.points} of {self.issuer_id} at {self.honoring_id}"


class NetworkSettlement(models.Model):
    """A closed settlement month of a network: its statements as they were closed, never changed again."""

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="settlements")
    month = models.DateField(help_text="First day of the month (UTC).")
    statements = models.JSONField(help_text="Brand slug -> the statement of that month, as closed.")
    closed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["network", "month"], name="networksettlement_unique")]

    def __str__(self) -> str:
        return f"{self.network} {self.month:%Y-%m}"


# --- Rollups for the economics dashboard and report -----------------------------------------------------
# Kept by the posting path in the postings' own database transaction (loyalty.signals.memberships_roll_up,
# and the processor for events), so that a dashboard reads a few hundred rows, never entries or events.
# Several web processes post a brand's redemptions at once: each rollup row that they would all move is
# split in ROLLUP_SHARDS rows (by database connection), so that concurrent postings rarely wait on one
# another's row lock; readers add the shards up.
ROLLUP_SHARDS = 8


class DailyPoints(models.Model):
    """Points a brand's members received or gave up on one brand day, by the member's tier at the time and
    by what moved them (read by economics.selectors). Counted on the brand's own accounts: issuance
    (issued, refunded), redemptions (redeemed, cancelled), expired, adjustments (signed)."""

    class Kind(models.TextChoices):
        ISSUED = "issued", "Issued (earned)"
        REFUNDED = "refunded", "Taken back by refunds"
        REDEEMED = "redeemed", "Redeemed"
        CANCELLED = "cancelled", "Given back by cancelled redemptions"
        EXPIRED = "expired", "Expired"
        ADJUSTED = "adjusted", "Adjusted by staff (signed)"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="The brand day the points moved (its timezone).")
    tier_name = models.CharField(max_length=60, blank=True, help_text="The member's tier when they moved.")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    shard = models.PositiveSmallIntegerField(default=0)
    points = models.BigIntegerField(default=0)
    value = models.DecimalField(
        max_digits=16, decimal_places=2, default=Decimal("0"), help_text="Redemptions: the perks' cash value."
    )
    transactions = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "daily points"
        constraints = [
            models.UniqueConstraint(fields=["brand", "day", "tier_name", "kind", "shard"], name="dailypoints_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.points}"


class DailyEvents(models.Model):
    """Events a brand's processor decided on one brand day, by type, outcome and the member's tier then;
    with the purchase (or refunded) amounts, which is the spend the economics report divides by."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="The brand day the events were processed (its timezone).")
    type = models.SlugField(max_length=40)
    status = models.CharField(max_length=10)
    reason = models.CharField(max_length=40, blank=True)
    tier_name = models.CharField(max_length=60, blank=True)
    events = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0"))
    points = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "daily events"
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "day", "type", "status", "reason", "tier_name"], name="dailyevents_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.type} {self.status}: {self.events}"


class MemberWeek(models.Model):
    """That a membership earned or redeemed in a week (Monday, brand timezone): written once per member and
    week, so that WeeklyActive counts each active member once."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+", db_index=False)
    week = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["membership", "week"], name="memberweek_unique")]

    def __str__(self) -> str:
        return f"{self.membership_id} active in the week of {self.week}"


class WeeklyActive(models.Model):
    """How many of a brand's members earned or redeemed in a week (Monday, brand timezone)."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+")
    week = models.DateField()
    shard = models.PositiveSmallIntegerField(default=0)
    members = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "weekly active members"
        constraints = [models.UniqueConstraint(fields=["brand", "week", "shard"], name="weeklyactive_unique")]

    def __str__(self) -> str:
        return f"week of {self.week}: {self.members}"
