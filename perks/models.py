"""The perks catalog and the redemptions that spend points on it."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models

from loyalty.models import Brand, Membership, Tier

# No 0/O, 1/I/L, 5/S, 2/Z, 8/B: a code read aloud at a counter or typed from a phone is unambiguous.
VOUCHER_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
VOUCHER_LENGTH = 12  # 25^12 ~ 6e16 codes: guessing one is hopeless, and the API is throttled


def voucher_code_generate() -> str:
    """A random code of VOUCHER_LENGTH letters of VOUCHER_ALPHABET, every one equally likely.

    One read of the OS's random source per code (secrets.choice reads it once per letter, a system
    call each, which in a busy threaded web worker also hands the GIL around). A byte below 250, ten
    times the alphabet's 25 letters, picks a letter without bias; a byte above is drawn again.
    """
    letters = len(VOUCHER_ALPHABET)
    usable = 256 - 256 % letters
    code: list[str] = []
    while len(code) < VOUCHER_LENGTH:
        code += [VOUCHER_ALPHABET[byte % letters] for byte in secrets.token_bytes(2 * VOUCHER_LENGTH) if byte < usable]
    return "".join(code[:VOUCHER_LENGTH])


class Perk(models.Model):
    class Category(models.TextChoices):
        DISCOUNT = "discount", "Discount"
        FREEBIE = "freebie", "Freebie"
        MERCH = "merch", "Merch"
        PRESALE = "presale", "Ticket pre-sale"
        EXPERIENCE = "experience", "Experience"
        SHOUTOUT = "shoutout", "Shout-out"
        OTHER = "other", "Other"

    class Fulfillment(models.TextChoices):
        VOUCHER = "voucher", "Instant voucher code"
        SHIPPED = "shipped", "Shipped"
        STAFF = "staff", "Handled by staff"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="perks")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=12, choices=Category.choices, default=Category.OTHER)
    cost = models.PositiveIntegerField(help_text="Points a member pays.")
    cash_value = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text="For reports: what it is worth."
    )
    cash_currency = models.CharField(max_length=3, blank=True)
    image = models.ImageField(upload_to="perks/", blank=True)
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    limit_total = models.PositiveIntegerField(null=True, blank=True, help_text="Per member, ever.")
    limit_per_day = models.PositiveIntegerField(null=True, blank=True, help_text="Per member, brand day.")
    limit_per_week = models.PositiveIntegerField(null=True, blank=True)
    limit_per_month = models.PositiveIntegerField(null=True, blank=True)
    minimum_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField("active", default=True)
    fulfillment = models.CharField(max_length=10, choices=Fulfillment.choices, default=Fulfillment.VOUCHER)
    is_network_perk = models.BooleanField(
        "network perk",
        default=False,
        help_text="Priced in the points of the brand's open network: any member of any brand in the network may "
        "redeem it, and the network settles what it cost with the brands that issued the points.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "brand"

    class Meta:
        ordering = ["brand", "cost", "name"]
        constraints = [
            # Defense in depth: stock is only ever taken by a conditional update, and never below zero.
            models.CheckConstraint(
                condition=models.Q(stock__isnull=True) | models.Q(stock__gte=0), name="perk_stock_not_negative"
            ),
            models.CheckConstraint(condition=models.Q(cost__gt=0), name="perk_cost_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cost})"

    def clean(self) -> None:
        super().clean()
        if self.minimum_tier_id and self.brand_id and self.minimum_tier.brand_id != self.brand_id:
            raise ValidationError({"minimum_tier": "Choose a tier of this perk's brand."})
        if self.available_from and self.available_until and self.available_until <= self.available_from:
            raise ValidationError({"available_until": "Must be after 'available from'."})
        if self.is_network_perk and self.brand_id and self.brand.network_id is None:
            raise ValidationError({"is_network_perk": "This brand is in no open network."})
        if self.is_network_perk and self.minimum_tier_id:
            raise ValidationError({"minimum_tier": "A network perk is open to every member of the network: no tier."})


class Redemption(models.Model):
    class Status(models.TextChoices):
        ISSUED = "issued", "Issued"
        FULFILLED = "fulfilled", "Fulfilled"
        CANCELLED = "cancelled", "Cancelled"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="redemptions")
    # No index of its own: the unique (membership, request_key) and the limits index lead with it, and a
    # third one on the membership alone only costs every redemption, and could be picked for a lookup by key.
    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="redemptions", db_index=False)
    perk = models.ForeignKey(Perk, on_delete=models.PROTECT, related_name="redemptions")
    cost = models.PositiveIntegerField(help_text="Points paid (the perk's cost at the time).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ISSUED)
    code = models.CharField(max_length=VOUCHER_LENGTH, unique=True, default=voucher_code_generate, editable=False)
    request_key = models.CharField(
        max_length=255, help_text="The request that made it (API idempotency key or a form's nonce)."
    )
    ledger_transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, related_name="+", editable=False
    )
    refund_transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, related_name="+", null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True, help_text="Who fulfilled or cancelled it, and why.")

    brand_path = "brand"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "request_key"], name="redemption_request_unique"),
            models.CheckConstraint(
                condition=~models.Q(status="cancelled") | models.Q(refund_transaction__isnull=False),
                name="redemption_cancelled_has_refund",
            ),
        ]
        indexes = [models.Index(fields=["membership", "perk", "status", "created_at"], name="redemption_limits_idx")]

    def __str__(self) -> str:
        return f"{self.perk.name} for {self.membership.member} ({self.status})"

    @property
    def code_display(self) -> str:
        """The code in groups of four, easier to read out; tills may type it with or without spaces."""
        return " ".join(self.code[i : i + 4] for i in range(0, len(self.code), 4))
