"""Partner portal for brands, staff, members, memberships and API keys."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from loyalty.admin_site import BrandScopedAdmin, SuperuserWritesMixin, portal_brand_ids, scope_to_brands
from loyalty.models import Brand, BrandApiKey, BrandStaff, Member, Membership, User

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

    @admin.display(description="members")
    def member_count(self, obj: Brand) -> int:
        return obj.memberships.count()

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


@admin.register(Membership)
class MembershipAdmin(BrandScopedAdmin):
    list_display = ["member", "brand", "status", "external_id", "joined_at"]
    list_filter = ["status", "brand"]
    search_fields = ["member__email", "member__name", "external_id"]
    list_select_related = ["member", "brand"]
    autocomplete_fields = ["member"]
    readonly_fields = ["joined_at"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BrandApiKey)
class BrandApiKeyAdmin(BrandScopedAdmin, APIKeyModelAdmin):
    list_display = ["prefix", "name", "brand", "created", "expiry_date", "_has_expired", "revoked"]
    list_filter = ["revoked", "brand"]
    search_fields = ["name", "prefix"]
