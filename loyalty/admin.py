"""Partner portal for brands, staff, members, memberships and API keys."""

import csv

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import BadRequest, PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from config.errors import ApplicationError
from config.forms import form_errors_add, form_nonce, form_nonce_from
from loyalty import exports, selectors
from loyalty.admin_site import BrandScopedAdmin, SuperuserWritesMixin, portal_brand_ids, scope_to_brands
from loyalty.forms import ThrottledAdminAuthenticationForm
from loyalty.models import (
    Adjustment,
    Brand,
    BrandApiKey,
    BrandStaff,
    EarnRule,
    Event,
    Member,
    Membership,
    Network,
    Tier,
    User,
)
from loyalty.periods import month_parse, months_add
from loyalty.serializers import statement_entry_out
from loyalty.services import brand_staff_add, brand_staff_remove, membership_enroll
from loyalty.services.earning import adjustment_create
from loyalty.services.imports import COLUMNS, PORTAL_MAX_BYTES, members_import, upload_keep, upload_take
from loyalty.services.lifecycle import tiers_reevaluate_queue
from loyalty.services.network import network_statement, settlement_month
from loyalty.services.processing import events_retry

admin.site.unregister(APIKey)  # Tally's keys are BrandApiKey: every key belongs to a brand
admin.site.login_form = ThrottledAdminAuthenticationForm  # failed portal logins count (loyalty.login_throttle)
_admin_login = admin.site.login


def _throttled_admin_login(request, extra_context=None):
    response = _admin_login(request, extra_context)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if getattr(form, "throttled", False):
        response.status_code = 429
    return response


admin.site.login = _throttled_admin_login


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


def _statement_csv(brand: Brand, statement: dict) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{brand.slug}-settlement-{statement["month"]}.csv"'
    writer = csv.writer(response)
    writer.writerow(["month", "unit", "issued", "redeemed", "net_points", "net_amount", "currency", "closed"])
    writer.writerow(
        [
            statement[key]
            for key in ("month", "unit", "issued", "redeemed", "net_points", "net_amount", "currency", "closed")
        ]
    )
    writer.writerow([])
    writer.writerow(["brand", "issued_here_spent_there", "issued_there_spent_here", "amount"])
    for row in statement["counterparties"]:
        writer.writerow([row["brand"], row["issued_here_spent_there"], row["issued_there_spent_here"], row["amount"]])
    return response


@admin.register(Brand)
class BrandAdmin(BrandScopedAdmin):
    list_display = ["name", "slug", "points_name", "timezone", "is_active", "member_count"]
    search_fields = ["name", "slug"]
    list_filter = ["is_active"]
    inlines = [BrandStaffInline]

    readonly_fields = ["network_page"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("memberships"))

    @admin.display(description="open network")
    def network_page(self, brand: Brand) -> str:
        if brand.pk is None or brand.network_id is None:
            return "—"
        url = reverse("admin:loyalty_brand_network", args=[brand.pk])
        return format_html('<a href="{}">Settlement statements and acquisition in {}</a>', url, brand.network)

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj: Brand) -> int:
        return obj.member_total

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        # A brand's slug is in its fans' bookmarks and its integrators' URLs: only an operator moves it. The
        # network a brand issues and honors points of is the operator's decision too.
        return readonly if request.user.is_superuser else [*readonly, "slug", "network"]

    def get_prepopulated_fields(self, request, obj=None):
        return {"slug": ["name"]} if request.user.is_superuser else {}

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_urls(self):
        return [
            path(
                "<path:object_id>/network/",
                self.admin_site.admin_view(self.network_view),
                name="loyalty_brand_network",
            ),
            *super().get_urls(),
        ]

    def network_view(self, request, object_id):
        """The brand's open-network page: a month's settlement statement (and its CSV), and what the network
        brought the brand."""
        brand = self.get_object(request, unquote(object_id))
        if brand is None or brand.network_id is None:
            raise Http404("No such brand in an open network.")
        month = month_parse(request.GET.get("month", "")) or settlement_month(timezone.now())
        statement = network_statement(brand=brand, month=month)
        if request.GET.get("format") == "csv":
            return _statement_csv(brand, statement)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{brand.name} in {brand.network.name}",
            "opts": self.opts,
            "brand": brand,
            "statement": statement,
            "month": f"{month:%Y-%m}",
            "previous": f"{months_add(month, -1):%Y-%m}",
            "next": f"{months_add(month, 1):%Y-%m}",
            "acquisition": selectors.network_acquisition(brand=brand),
        }
        return TemplateResponse(request, "admin/loyalty/brand_network.html", context)

    def save_formset(self, request, form, formset, change):
        if formset.model is not BrandStaff:
            return super().save_formset(request, form, formset, change)
        # Through the services: adding staff also opens the portal to the login (is_staff).
        for staff in formset.save(commit=False):
            if staff.pk is not None:  # a row whose login was swapped: the old login loses its access
                before = BrandStaff.objects.select_related("user").get(pk=staff.pk)
                if before.user_id != staff.user_id:
                    brand_staff_remove(staff=before)
            brand_staff_add(user=staff.user, brand=form.instance, role=staff.role)
        for staff in formset.deleted_objects:
            brand_staff_remove(staff=staff)


@admin.register(BrandStaff)
class BrandStaffAdmin(SuperuserWritesMixin, BrandScopedAdmin):
    list_display = ["user", "brand", "role", "created_at"]
    list_filter = ["role", "brand"]
    search_fields = ["user__email"]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return [*readonly, "user", "brand"] if obj is not None else readonly  # a new login is a new row

    def save_model(self, request, obj, form, change):
        # update_or_create by (user, brand) in the service: the saved row is the one it made or changed.
        saved = brand_staff_add(user=obj.user, brand=obj.brand, role=obj.role)
        obj.pk, obj.created_at = saved.pk, saved.created_at

    def delete_model(self, request, obj):
        brand_staff_remove(staff=obj)

    def delete_queryset(self, request, queryset):
        for staff in queryset.select_related("user"):
            brand_staff_remove(staff=staff)


class MembershipInline(TabularInline):
    model = Membership
    extra = 0
    fields = ["brand", "name", "status", "external_id", "joined_at"]
    readonly_fields = ["brand", "joined_at"]
    can_delete = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else scope_to_brands(queryset, portal_brand_ids(request))

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(BrandScopedAdmin):
    """A person across brands. Their email and name are theirs: brand staff look at the members who joined
    their club, by email and by the brand's own data (the memberships inline); only an operator edits
    the person, and only an operator sees the name they gave."""

    list_display = ["__str__", "email", "name", "created_at"]
    search_fields = ["email", "name", "memberships__external_id"]
    inlines = [MembershipInline]
    readonly_fields = ["created_at"]

    def get_list_display(self, request):
        return super().get_list_display(request) if request.user.is_superuser else ["__str__", "created_at"]

    def get_fields(self, request, obj=None):
        return super().get_fields(request, obj) if request.user.is_superuser else ["email", "created_at"]

    def get_search_fields(self, request):
        return super().get_search_fields(request) if request.user.is_superuser else ["email"]

    def get_search_results(self, request, queryset, search_term):
        if request.user.is_superuser or not search_term.strip():
            return super().get_search_results(request, queryset, search_term)
        # Staff find a member by email or by their own brand's external id, never by another brand's.
        term = search_term.strip()
        own_ids = Membership.objects.filter(brand_id__in=portal_brand_ids(request), external_id=term)
        return queryset.filter(Q(email__icontains=term) | Q(pk__in=own_ids.values("member_id"))), False

    def get_paginator(self, request, queryset, per_page, *args, **kwargs):
        if queryset.model is LogEntry and not request.user.is_superuser:
            # The history page of a person shared by several brands: staff see their own brand's changes
            # (and an operator's), never what another brand's staff did.
            own = BrandStaff.objects.filter(brand_id__in=portal_brand_ids(request)).values("user_id")
            queryset = queryset.filter(Q(user__in=own) | Q(user__is_superuser=True))
        return super().get_paginator(request, queryset, per_page, *args, **kwargs)

    def has_add_permission(self, request, *args):
        return request.user.is_superuser  # staff enroll people under Memberships

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False  # members carry points history; they leave clubs, they are not deleted


class MembershipEnrollForm(forms.Form):
    brand = forms.ModelChoiceField(queryset=Brand.objects.none())
    email = forms.EmailField(required=False, help_text="The person's email: found if known, else a new member.")
    external_id = forms.CharField(max_length=120, required=False, help_text="Your own id for them (POS, shop).")
    name = forms.CharField(max_length=120, required=False, help_text="The name your brand knows them by.")

    def __init__(self, *args, brands, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["brand"].queryset = brands
        if brands.count() == 1:
            self.fields["brand"].initial = brands.first()


class AdjustPointsForm(forms.Form):
    points = forms.IntegerField(
        help_text="Positive to add, negative to remove.", min_value=-10_000_000, max_value=10_000_000
    )
    reason = forms.CharField(max_length=500, help_text="Shown in the member's history.")

    def clean_points(self) -> int:
        if self.cleaned_data["points"] == 0:
            raise forms.ValidationError("Must not be zero.")
        return self.cleaned_data["points"]


class MemberImportForm(forms.Form):
    brand = forms.ModelChoiceField(queryset=Brand.objects.none())
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 (Excel: CSV UTF-8), a header row first; at most 5 MB (about 100,000 rows). "
        "Bigger files: manage.py import_members.",
    )

    def __init__(self, *args, brands, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["brand"].queryset = brands
        if brands.count() == 1:
            self.fields["brand"].initial = brands.first()

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > PORTAL_MAX_BYTES:
            raise forms.ValidationError("The file is bigger than 5 MB: import it with manage.py import_members.")
        return upload


@admin.register(Membership)
class MembershipAdmin(BrandScopedAdmin):
    list_display = ["member", "name", "brand", "status", "tier", "points_balance", "external_id", "joined_at"]
    list_filter = ["status", "brand", "tier"]
    # The brand's own data only: the member's email (the brand was given it), the brand's name and id for them.
    search_fields = ["member__email", "name", "external_id"]
    list_select_related = ["member", "brand", "tier", "wallet__balance"]
    readonly_fields = ["joined_at", "tier_since", "tier_valid_until", "points_summary", "tier_history", "history"]
    # The engine owns the tier (qualifying points); member and brand are the membership's identity,
    # and its wallet holds that brand's points.
    readonly_on_change = ["member", "brand", "tier"]
    actions = ["export_selected_csv"]
    fieldsets = (
        (None, {"fields": ("member", "brand", "name", "status", "external_id", "joined_at")}),
        ("Tier", {"fields": ("tier", "tier_since", "tier_valid_until", "tier_history")}),
        ("Points", {"fields": ("points_summary", "history")}),
    )

    @admin.display(description="tier changes (latest 20)")
    def tier_history(self, membership: Membership) -> str:
        if membership.pk is None:
            return "—"
        return render_to_string(
            "admin/loyalty/membership_tier_changes.html",
            {"changes": selectors.membership_tier_changes(membership, limit=20)},
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
        balance = selectors.membership_balance(membership)
        return render_to_string(
            "admin/loyalty/membership_points.html",
            {
                "membership": membership,
                "balance": balance,
                "pending": selectors.membership_pending(membership),
                "expiring": selectors.membership_expiring(membership, balance=balance)[:3],
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
            path("export.csv", self.admin_site.admin_view(self.export_view), name="loyalty_membership_export"),
            path("import/", self.admin_site.admin_view(self.import_view), name="loyalty_membership_import"),
            path(
                "<path:object_id>/statement.csv",
                self.admin_site.admin_view(self.statement_csv_view),
                name="loyalty_membership_statement_csv",
            ),
            *super().get_urls(),
        ]

    # --- CSV exports (loyalty.exports): the querysets come from this admin, so brand scoping applies ---

    @admin.action(description="Export selected to CSV", permissions=["view"])
    def export_selected_csv(self, request: HttpRequest, queryset) -> StreamingHttpResponse:
        return self._members_csv(request, queryset)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The changelist as it stands (its filters, search and order, the user's brands) as a CSV: the
        toolbar's "Export CSV" passes the changelist's query string on."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            raise BadRequest("Those are not filters of the members list.") from None
        return self._members_csv(request, changelist.get_queryset(request))

    def _members_csv(self, request: HttpRequest, queryset) -> StreamingHttpResponse:
        filename = f"{self._export_label(request)}-members-{timezone.localdate():%Y-%m-%d}.csv"
        return exports.csv_response(exports.member_rows(queryset), filename=filename)

    def _export_label(self, request: HttpRequest) -> str:
        """The brand a members export is of, for its file name: the staff's one brand, or the brand the
        changelist is filtered on (an action posts to the changelist's URL, filters included)."""
        brand_ids = set() if request.user.is_superuser else portal_brand_ids(request)
        chosen = request.GET.get("brand__id__exact", "")
        if len(brand_ids) == 1:
            brand_id = next(iter(brand_ids))
        elif chosen.isdigit() and (request.user.is_superuser or int(chosen) in brand_ids):
            brand_id = int(chosen)
        else:
            return "all-brands"
        return Brand.objects.filter(pk=brand_id).values_list("slug", flat=True).first() or "all-brands"

    def statement_csv_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        """Every entry of the member's wallet, oldest first; another brand's member is absent (404)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        membership = self.get_object(request, unquote(object_id))
        if membership is None:
            raise Http404("No such membership.")
        if not self.has_view_permission(request, membership):
            raise PermissionDenied
        filename = f"{membership.brand.slug}-member-{membership.pk}-statement-{timezone.localdate():%Y-%m-%d}.csv"
        return exports.csv_response(exports.statement_rows(membership), filename=filename)

    def add_view(self, request, form_url="", extra_context=None):
        """Enrolling someone goes through membership_enroll: base tier, no merge of another brand's ids."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        brands = Brand.objects.all()
        if not request.user.is_superuser:
            brands = brands.filter(pk__in=portal_brand_ids(request))
        form = MembershipEnrollForm(request.POST or None, brands=brands)
        if request.method == "POST" and form.is_valid():
            try:
                membership = membership_enroll(
                    brand=form.cleaned_data["brand"],
                    email=form.cleaned_data["email"],
                    external_id=form.cleaned_data["external_id"],
                    name=form.cleaned_data["name"],
                )
            except ApplicationError as error:
                form_errors_add(form, error)
            else:
                self.log_addition(request, membership, [{"added": {}}])
                messages.success(request, f"{membership.member} joined {membership.brand}.")
                return redirect("admin:loyalty_membership_change", membership.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Enroll a member",
            "form": form,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/loyalty/membership_enroll.html", context)

    # --- CSV import (loyalty.services.imports): upload -> preview (a dry run) -> confirm -> result ---

    def _import_brands(self, request: HttpRequest):
        brands = Brand.objects.order_by("name")
        return brands if request.user.is_superuser else brands.filter(pk__in=portal_brand_ids(request))

    def import_view(self, request: HttpRequest) -> TemplateResponse:
        """Upload a members CSV and see what importing it would do; the confirm button applies that very
        file (kept for it in the cache under a random token, see loyalty.services.imports.upload_keep)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        brands = self._import_brands(request)
        context = {**self.admin_site.each_context(request), "title": "Import members (CSV)", "opts": self.opts}
        if request.method == "POST" and request.POST.get("step") == "confirm":
            return self._import_confirm(request, brands, context)
        form = MemberImportForm(request.POST or None, request.FILES or None, brands=brands)
        if request.method == "POST" and form.is_valid():
            brand, upload = form.cleaned_data["brand"], form.cleaned_data["file"]
            content = upload.read()
            try:
                report = members_import(brand=brand, content=content, dry_run=True)
            except ApplicationError as error:
                form.add_error("file", error.message)
            else:
                token = upload_keep(user_id=request.user.pk, brand=brand, name=upload.name, content=content)
                context.update(step="preview", brand=brand, report=report, token=token, file_name=upload.name)
                return TemplateResponse(request, "admin/loyalty/membership_import.html", context)
        context.update(step="upload", form=form, columns=COLUMNS)
        return TemplateResponse(request, "admin/loyalty/membership_import.html", context)

    def _import_confirm(self, request: HttpRequest, brands, context: dict) -> TemplateResponse:
        upload = upload_take(
            token=request.POST.get("token", ""), user_id=request.user.pk, sha256=request.POST.get("sha256", "")
        )
        # The brand is checked again: the login may have lost the brand since the preview.
        brand = brands.filter(pk=upload.brand_id).first() if upload is not None else None
        if brand is None:
            messages.error(request, "That upload has expired or was imported already: upload the file again.")
            return redirect("admin:loyalty_membership_import")
        try:
            report = members_import(brand=brand, content=upload.content, by=str(request.user))
        except ApplicationError as error:  # pragma: no cover - the preview read the same file
            messages.error(request, error.message)
            return redirect("admin:loyalty_membership_import")
        context.update(step="result", brand=brand, report=report, file_name=upload.name)
        return TemplateResponse(request, "admin/loyalty/membership_import.html", context)

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
                "fields": ("points_per_unit", "currency", "minimum_amount", "pending_days", "network_points_per_unit"),
                "description": "For event type “purchase”: points = floor(amount x rate x tier multiplier). "
                "With a return window, the points are pending (not spendable) for that many days.",
            },
        ),
        (
            "Custom events",
            {"fields": ("points",), "description": "Fixed points per event (check_in, review, ...)."},
        ),
        (
            "Streak bonus (custom events)",
            {
                "fields": ("streak_length", "streak_period", "streak_bonus"),
                "description": "A bonus once a member has an awarded event this many days (or weeks) in a row, "
                "counted in the brand's timezone; paid once per streak.",
            },
        ),
        ("Caps per member (brand timezone)", {"fields": ("cap_per_day", "cap_per_week", "cap_per_month")}),
        ("Active window", {"fields": ("active_from", "active_until")}),
    )

    @admin.display(description="earns")
    def rate(self, rule: EarnRule) -> str:
        if rule.is_purchase:
            rates = []
            if rule.points_per_unit:
                rates.append(f"{rule.points_per_unit.normalize()} per 1 {rule.currency}")
            if rule.network_points_per_unit:
                unit = rule.brand.network.unit if rule.brand.network_id else "network points"
                rates.append(f"{rule.network_points_per_unit.normalize()} {unit} per 1 {rule.currency}")
            return " + ".join(rates)
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


@admin.register(Network)
class NetworkAdmin(ModelAdmin):
    """Open networks, the operator's alone (brand staff hold no model permissions outside their brand's
    admins): the operator creates them and decides which brands join (on the brand's page)."""

    list_display = ["name", "slug", "unit", "point_value", "currency", "brand_names"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("brands")

    @admin.display(description="brands")
    def brand_names(self, network: Network) -> str:
        return ", ".join(brand.name for brand in network.brands.all()) or "—"


@admin.register(Tier)
class TierAdmin(BrandScopedAdmin):
    list_display = ["name", "brand", "rank", "threshold", "multiplier", "points_never_expire"]
    list_filter = ["brand"]
    ordering = ["brand", "rank"]

    # Members are re-weighed against the edited tiers by a worker (a brand may have a million of them),
    # by the same rules as the daily lifecycle job.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change or {"threshold", "rank"} & set(form.changed_data):
            tiers_reevaluate_queue(brand_id=obj.brand_id)
            messages.info(request, f"The members of {obj.brand} are being re-evaluated against the new tiers.")

    def delete_model(self, request, obj):
        brand_id = obj.brand_id
        super().delete_model(request, obj)
        tiers_reevaluate_queue(brand_id=brand_id)


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
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "type", "reason", "brand"]
    search_fields = ["order_id", "membership__member__email", "membership__external_id"]
    list_select_related = ["membership__member", "brand"]
    date_hierarchy = "created_at"
    actions = ["retry_failed"]

    @admin.action(description="Process the selected failed events again")
    def retry_failed(self, request, queryset):
        failed = list(queryset.filter(status=Event.Status.FAILED).values_list("pk", flat=True))
        count = events_retry(event_ids=failed)
        if count:
            self.message_user(request, f"{count} event(s) sent back to be processed.", messages.SUCCESS)
        else:
            self.message_user(request, "None of the selected events had failed.", messages.WARNING)


@admin.register(Adjustment)
class AdjustmentAdmin(ReadOnlyBrandScopedAdmin):
    list_display = ["created_at", "membership", "points", "reason", "created_by"]
    list_filter = ["brand"]
    search_fields = ["reason", "membership__member__email"]
    list_select_related = ["membership__member", "created_by_user", "created_by_api_key"]
