"""Partner portal for brands, staff, members, memberships and API keys."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from config.errors import ApplicationError
from config.forms import form_nonce, form_nonce_from
from loyalty import selectors
from loyalty.admin_site import BrandScopedAdmin, SuperuserWritesMixin, portal_brand_ids, scope_to_brands
from loyalty.models import (
    Adjustment,
    Brand,
    BrandApiKey,
    BrandStaff,
    EarnRule,
    Event,
    Member,
    Membership,
    Tier,
    User,
)
from loyalty.serializers import statement_entry_out
from loyalty.services.earning import adjustment_create

admin.site.unregister(APIKey)  # Tally's keys are BrandApiKey: every key belongs to a brand


@admin.register(User)
class UserAdmin(DjangoUserAdmin, ModelAdmin):
    """Logins are an operator's concern: brand staff never see this list."""

    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    ordering = ["email"]
    list_display = ["email", "first_name", "is_staff", "is_superuser", "is_active", "date_joined"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class BrandStaffInline(TabularInline):
    model = BrandStaff
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Brand)
class BrandAdmin(BrandScopedAdmin):
    list_display = ["name", "slug", "points_name", "timezone", "is_active", "member_count"]
    search_fields = ["name", "slug"]
    list_filter = ["is_active"]
    inlines = [BrandStaffInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("memberships"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj: Brand) -> int:
        return obj.member_total

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        # A brand's slug is in its fans' bookmarks and its integrators' URLs: only an operator moves it.
        return readonly if request.user.is_superuser else [*readonly, "slug"]

    def get_prepopulated_fields(self, request, obj=None):
        return {"slug": ["name"]} if request.user.is_superuser else {}

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(BrandStaff)
class BrandStaffAdmin(SuperuserWritesMixin, BrandScopedAdmin):
    list_display = ["user", "brand", "role", "created_at"]
    list_filter = ["role", "brand"]
    search_fields = ["user__email"]
    autocomplete_fields = ["user"]


class MembershipInline(TabularInline):
    model = Membership
    extra = 0
    fields = ["brand", "status", "external_id", "joined_at"]
    readonly_fields = ["brand", "joined_at"]
    can_delete = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else scope_to_brands(queryset, portal_brand_ids(request))

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(BrandScopedAdmin):
    list_display = ["__str__", "email", "name", "created_at"]
    search_fields = ["email", "name", "memberships__external_id"]
    inlines = [MembershipInline]
    readonly_fields = ["created_at"]

    def has_delete_permission(self, request, obj=None):
        return False  # members carry points history; they leave clubs, they are not deleted


class AdjustPointsForm(forms.Form):
    points = forms.IntegerField(
        help_text="Positive to add, negative to remove.", min_value=-10_000_000, max_value=10_000_000
    )
    reason = forms.CharField(max_length=500, help_text="Shown in the member's history.")

    def clean_points(self) -> int:
        if self.cleaned_data["points"] == 0:
            raise forms.ValidationError("Must not be zero.")
        return self.cleaned_data["points"]


@admin.register(Membership)
class MembershipAdmin(BrandScopedAdmin):
    list_display = ["member", "brand", "status", "tier", "points_balance", "external_id", "joined_at"]
    list_filter = ["status", "brand", "tier"]
    search_fields = ["member__email", "member__name", "external_id"]
    list_select_related = ["member", "brand", "tier", "wallet__balance"]
    autocomplete_fields = ["member"]
    readonly_fields = ["joined_at", "points_summary", "history"]
    # The engine owns the tier (qualifying points); member and brand are the membership's identity,
    # and its wallet holds that brand's points.
    readonly_on_change = ["member", "brand", "tier"]
    fieldsets = (
        (None, {"fields": ("member", "brand", "status", "external_id", "tier", "joined_at")}),
        ("Points", {"fields": ("points_summary", "history")}),
    )

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return [*readonly, *self.readonly_on_change] if obj is not None else readonly

    @admin.display(description="balance", ordering="wallet__balance__balance")
    def points_balance(self, membership: Membership) -> int:
        # The rolled-up balance row, joined by list_select_related: no query per row.
        return membership.wallet.balance.balance if membership.wallet_id else 0

    @admin.display(description="points")
    def points_summary(self, membership: Membership) -> str:
        if membership.pk is None:
            return "—"
        qualifying = selectors.qualifying_points(membership)
        upcoming = selectors.next_tier(membership, qualifying)
        progress = None
        if upcoming:
            tier, needed = upcoming
            progress = {
                "tier": tier,
                "needed": needed,
                "percent": 100 if not tier.threshold else min(100, qualifying * 100 // tier.threshold),
            }
        return render_to_string(
            "admin/loyalty/membership_points.html",
            {
                "membership": membership,
                "balance": selectors.membership_balance(membership),
                "qualifying": qualifying,
                "progress": progress,
                "adjust_url": reverse("admin:loyalty_membership_adjust", args=[membership.pk]),
            },
        )

    @admin.display(description="history (latest 20)")
    def history(self, membership: Membership) -> str:
        page = selectors.membership_statement(membership=membership, limit=20) if membership.pk else None
        rows = [statement_entry_out(entry) for entry in page.entries] if page else []
        return render_to_string("admin/loyalty/membership_history.html", {"rows": rows})

    def get_urls(self):
        return [
            path(
                "<path:object_id>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="loyalty_membership_adjust",
            ),
            *super().get_urls(),
        ]

    def adjust_view(self, request, object_id):
        membership = self.get_object(request, unquote(object_id))
        if membership is None or not self.has_change_permission(request, membership):
            raise Http404("No such membership.")
        form = AdjustPointsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                adjustment = adjustment_create(
                    membership=membership,
                    points=form.cleaned_data["points"],
                    reason=form.cleaned_data["reason"],
                    idempotency_key=form_nonce_from(request.POST),
                    user=request.user,
                )
            except ApplicationError as error:
                form.add_error("points", error.message)
            else:
                messages.success(request, f"Adjusted {adjustment.points:+d} points: {adjustment.reason}")
                return redirect("admin:loyalty_membership_change", membership.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust points of {membership.member}",
            "form": form,
            "membership": membership,
            "opts": self.opts,
            "nonce": form_nonce(),
            "balance": selectors.membership_balance(membership),
        }
        return TemplateResponse(request, "admin/loyalty/membership_adjust.html", context)


@admin.register(BrandApiKey)
class BrandApiKeyAdmin(BrandScopedAdmin, APIKeyModelAdmin):
    list_display = ["prefix", "name", "brand", "created", "expiry_date", "_has_expired", "revoked"]
    list_filter = ["revoked", "brand"]
    search_fields = ["name", "prefix"]


# --- earning ---------------------------------------------------------------------------------------


@admin.register(EarnRule)
class EarnRuleAdmin(BrandScopedAdmin):
    list_display = [
        "__str__",
        "brand",
        "event_type",
        "rate",
        "cap_summary",
        "enabled",
        "active_from",
        "active_until",
    ]
    list_filter = ["enabled", "brand"]
    search_fields = ["event_type", "name"]
    fieldsets = (
        (None, {"fields": ("brand", "event_type", "name", "enabled")}),
        (
            "Purchases",
            {
                "fields": ("points_per_unit", "currency", "minimum_amount"),
                "description": "For event type “purchase”: points = floor(amount x rate x tier multiplier).",
            },
        ),
        (
            "Custom events",
            {"fields": ("points",), "description": "Fixed points per event (check_in, review, ...)."},
        ),
        ("Caps per member (brand timezone)", {"fields": ("cap_per_day", "cap_per_week", "cap_per_month")}),
        ("Active window", {"fields": ("active_from", "active_until")}),
    )

    @admin.display(description="earns")
    def rate(self, rule: EarnRule) -> str:
        if rule.is_purchase:
            return f"{rule.points_per_unit.normalize()} per 1 {rule.currency}"
        return f"{rule.points} per event"

    @admin.display(description="caps")
    def cap_summary(self, rule: EarnRule) -> str:
        caps = [
            f"{n}/{p}"
            for n, p in (
                (rule.cap_per_day, "day"),
                (rule.cap_per_week, "week"),
                (rule.cap_per_month, "month"),
            )
            if n
        ]
        return ", ".join(caps) or "—"


@admin.register(Tier)
class TierAdmin(BrandScopedAdmin):
    list_display = ["name", "brand", "rank", "threshold", "multiplier"]
    list_filter = ["brand"]
    ordering = ["brand", "rank"]


class ReadOnlyBrandScopedAdmin(BrandScopedAdmin):
    """Facts (events, adjustments) are corrected by new facts, never edited."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyBrandScopedAdmin):
    list_display = [
        "id",
        "type",
        "status",
        "membership",
        "points",
        "reason",
        "order_id",
        "amount",
        "currency",
        "unrecovered_points",
        "created_at",
    ]
    list_filter = ["status", "type", "reason", "brand"]
    search_fields = ["order_id", "membership__member__email", "membership__external_id"]
    list_select_related = ["membership__member", "brand"]
    date_hierarchy = "created_at"


@admin.register(Adjustment)
class AdjustmentAdmin(ReadOnlyBrandScopedAdmin):
    list_display = ["created_at", "membership", "points", "reason", "created_by"]
    list_filter = ["brand"]
    search_fields = ["reason", "membership__member__email"]
    list_select_related = ["membership__member", "created_by_user", "created_by_api_key"]
