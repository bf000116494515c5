"""Perks in the partner portal: the catalog, and redemptions with fulfil / cancel through the services."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from config.errors import ApplicationError
from loyalty.admin_site import BrandScopedAdmin
from perks.models import Perk, Redemption
from perks.services import perk_stock_check, perk_stock_set, redemption_cancel, redemption_fulfill


class PerkAdminForm(forms.ModelForm):
    """Checks a stock change against the stock as it is now (the admin saves in one transaction, and the
    check keeps the perk row locked until it commits): refused, nothing of the form is saved."""

    def stock_seen(self) -> int | None:
        return self.fields["stock"].to_python(self.data.get(self.add_initial_prefix("stock")))

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and "stock" in self.changed_data and "stock" not in self.errors:
            try:
                perk_stock_check(perk=self.instance, seen=self.stock_seen(), wanted=cleaned.get("stock"))
            except ApplicationError as error:
                self.add_error("stock", error.message)
        return cleaned


@admin.register(Perk)
class PerkAdmin(BrandScopedAdmin):
    list_display = [
        "thumbnail",
        "name",
        "brand",
        "category",
        "cost",
        "stock_left",
        "minimum_tier",
        "is_active",
        "redeemed",
    ]
    list_display_links = ["thumbnail", "name"]
    list_filter = ["is_active", "category", "fulfillment", "brand"]
    search_fields = ["name", "description"]
    fieldsets = (
        (None, {"fields": ("brand", "name", "description", "category", "image", "is_active")}),
        ("Price", {"fields": ("cost", "cash_value", "cash_currency")}),
        (
            "Stock and limits",
            {"fields": ("stock", "limit_total", "limit_per_day", "limit_per_week", "limit_per_month", "minimum_tier")},
        ),
        ("Availability", {"fields": ("available_from", "available_until", "fulfillment")}),
    )

    @admin.display(description="")
    def thumbnail(self, perk: Perk) -> str:
        if perk.image:
            return format_html('<img src="{}" alt="" style="height:36px;border-radius:6px">', perk.image.url)
        return "—"

    @admin.display(description="stock")
    def stock_left(self, perk: Perk) -> str:
        return "unlimited" if perk.stock is None else str(perk.stock)

    def get_queryset(self, request):
        live = Count("redemptions", filter=~Q(redemptions__status=Redemption.Status.CANCELLED))
        return super().get_queryset(request).select_related("minimum_tier", "brand").annotate(redeemed_total=live)

    @admin.display(description="redeemed", ordering="redeemed_total")
    def redeemed(self, perk: Perk) -> int:
        return perk.redeemed_total

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs.setdefault("form", PerkAdminForm)
        form = super().get_form(request, obj, change=change, **kwargs)
        if "stock" in form.base_fields:
            # The form carries the stock staff saw, so that saving applies their change as a difference.
            form.base_fields["stock"].show_hidden_initial = True
        return form

    def save_model(self, request, obj, form, change):
        if change and "stock" in form.changed_data:
            # Fans redeem while the form is open: apply the staff's change relative to what they saw.
            # PerkAdminForm checked it under the perk's row lock, held until this request commits, so it
            # applies now; if it could not, the error would roll every field of the save back with it.
            form.changed_data.remove("stock")
            super().save_model(request, obj, form, change)
            perk_stock_set(perk=obj, seen=form.stock_seen(), wanted=form.cleaned_data["stock"])
            return
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        # A perk with redemptions is history; deactivate it instead.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.redemptions.exists())


@admin.register(Redemption)
class RedemptionAdmin(BrandScopedAdmin):
    list_display = ["created_at", "code", "perk", "membership", "cost", "status", "fulfilled_at", "cancelled_at"]
    list_filter = ["status", "perk__category", "brand", "perk"]
    search_fields = ["code", "membership__member__email", "perk__name"]
    list_select_related = ["perk", "membership__member"]
    readonly_fields = [
        "brand",
        "membership",
        "perk",
        "cost",
        "code",
        "status",
        "created_at",
        "fulfilled_at",
        "cancelled_at",
        "note",
    ]
    actions = ["mark_fulfilled", "cancel_and_refund"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request, *args):
        return False  # redemptions are made by fans and tills, through perk_redeem

    def has_delete_permission(self, request, obj=None):
        return False

    def _apply(self, request: HttpRequest, queryset: QuerySet, service, verb: str) -> None:
        done, refused = 0, []
        for redemption in queryset:
            try:
                service(redemption=redemption, note=f"{verb} by {request.user}")
                done += 1
            except ApplicationError as error:
                refused.append(f"{redemption.code}: {error.message}")
        if done:
            self.message_user(request, f"{done} redemption(s) {verb}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Mark fulfilled")
    def mark_fulfilled(self, request, queryset):
        self._apply(request, queryset, redemption_fulfill, "fulfilled")

    @admin.action(description="Cancel and refund the points")
    def cancel_and_refund(self, request, queryset):
        self._apply(request, queryset, redemption_cancel, "cancelled")
