"""The books in the partner portal: read-only, and for operators (superusers) only.

The ledger knows nothing of brands, so it cannot scope these lists to one brand's staff; brand staff
see their members' history through loyalty's pages instead. Nothing here writes: corrections are
new transactions posted through ledger.services, never edits (the database would refuse them anyway).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline

from ledger.models import Account, Balance, Entry, ReconciliationFix, Transaction


def _is_operator(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


class ReadOnlyForOperatorsMixin:
    """No add, change or delete for anyone, no bulk actions; visible to superusers only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _is_operator(request)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        return {}


class LedgerAdmin(ReadOnlyForOperatorsMixin, ModelAdmin):
    # Counting a table of millions of entries on every page load is the slow part of a changelist.
    show_full_result_count = False
    list_per_page = 50
    # Django's own search wraps columns in UPPER(), which no index serves; on tables this size the
    # search box matches these lookups exactly instead (codes and keys are case-sensitive anyway).
    search_lookups: tuple[str, ...] = ()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term or not self.search_lookups:
            return queryset, False
        condition = Q()
        for lookup in self.search_lookups:
            condition |= Q(**{lookup: term})
        return queryset.filter(condition), False


class EntryInline(ReadOnlyForOperatorsMixin, TabularInline):
    model = Entry
    extra = 0
    fields = ["account", "amount", "seq", "hash"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Account)
class AccountAdmin(LedgerAdmin):
    list_display = ["code", "kind", "unit", "allow_negative", "current_balance", "created_at"]
    list_filter = ["kind", "allow_negative"]
    search_fields = ["code"]
    search_lookups = ("code__startswith",)  # "brand:3:" lists a brand's accounts, through the code's LIKE index
    list_select_related = ["balance"]

    @admin.display(description="balance")
    def current_balance(self, obj: Account) -> int | None:
        row = getattr(obj, "balance", None)
        return row.balance if row is not None else None


@admin.register(Transaction)
class TransactionAdmin(LedgerAdmin):
    list_display = ["idempotency_key", "kind", "memo", "reverses", "created_at"]
    list_filter = ["kind"]
    search_fields = ["idempotency_key"]
    search_lookups = ("idempotency_key",)
    list_select_related = ["reverses"]
    ordering = ["-id"]
    inlines = [EntryInline]


@admin.register(Entry)
class EntryAdmin(LedgerAdmin):
    list_display = ["id", "account", "amount", "seq", "transaction", "created_at"]
    search_fields = ["account__code", "transaction__idempotency_key"]
    search_lookups = ("account__code", "transaction__idempotency_key")
    list_select_related = ["account", "transaction"]
    ordering = ["-id"]


@admin.register(Balance)
class BalanceAdmin(LedgerAdmin):
    list_display = ["account", "balance", "total_credited", "total_debited", "entry_count", "updated_at"]
    list_filter = ["allow_negative"]
    search_fields = ["account__code"]
    search_lookups = ("account__code__startswith",)
    list_select_related = ["account"]
    ordering = ["account__code"]


@admin.register(ReconciliationFix)
class ReconciliationFixAdmin(LedgerAdmin):
    list_display = ["account", "performed_by", "reason", "created_at"]
    search_fields = ["account__code", "performed_by"]
    search_lookups = ("account__code__startswith", "performed_by")
    list_select_related = ["account"]
