"""The partner portal's brand scoping, in one place.

Every admin of a brand-owned model inherits BrandScopedAdmin. A model declares how to reach its
brand in `brand_path` ("brand", "membership__brand", or "pk" for Brand itself); from that alone
the portal scopes, for staff of a brand:

- changelists, search and actions (get_queryset),
- detail, delete and history URLs of another brand's object (404, not a redirect),
- foreign-key and many-to-many choices, and the choices of related-field list filters,
- foreign keys to models with no brand (logins, for example) become read-only, so no choice list
  can reveal another brand's people.

Superusers see and choose everything.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from unfold.admin import ModelAdmin

from loyalty.models import Brand
from loyalty.selectors import brand_ids_for_staff

_CACHE_ATTR = "_tally_portal_brand_ids"


def portal_brand_ids(request: HttpRequest) -> set[int]:
    """Brands the logged-in portal user works for, cached on the request."""
    if not hasattr(request, _CACHE_ATTR):
        setattr(request, _CACHE_ATTR, brand_ids_for_staff(request.user))
    return getattr(request, _CACHE_ATTR)


def is_brand_scoped(model: type[Model]) -> bool:
    return getattr(model, "brand_path", None) is not None


def scope_to_brands(queryset: QuerySet, brand_ids: set[int]) -> QuerySet:
    """Only the rows of `queryset` that belong to one of `brand_ids`."""
    path = queryset.model.brand_path
    if path == "pk":
        return queryset.filter(pk__in=brand_ids)
    scoped = queryset.filter(**{f"{path}__in": brand_ids})
    # A path through a many-valued relation (a member of two clubs) would repeat rows.
    return scoped.distinct() if _crosses_many(queryset.model, path) else scoped


def _crosses_many(model: type[Model], path: str) -> bool:
    for name in path.split("__"):
        field = model._meta.get_field(name)
        if field.one_to_many or field.many_to_many:
            return True
        model = field.related_model
    return False


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-field filter whose choices are only the user's brands' rows."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        if request.user.is_superuser or not is_brand_scoped(related):
            return super().field_choices(field, request, model_admin)
        rows = scope_to_brands(related._default_manager.all(), portal_brand_ids(request))
        return [(row.pk, str(row)) for row in rows]


class BrandScopedAdmin(ModelAdmin):
    """Base admin for every brand-owned model: see the module docstring."""

    def is_portal_user(self, request: HttpRequest) -> bool:
        return request.user.is_active and (request.user.is_superuser or bool(portal_brand_ids(request)))

    # --- rows -----------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return scope_to_brands(queryset, portal_brand_ids(request))

    def _raise_404_unless_visible(self, request: HttpRequest, object_id: str | None) -> None:
        # Before any permission check: another brand's object must look absent, never forbidden.
        if object_id is not None and self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._raise_404_unless_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._raise_404_unless_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._raise_404_unless_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index with a warning; for another brand's object the honest
        # answer is that, for this user, it does not exist at all.
        raise Http404(f"No {opts.verbose_name} with id {object_id!r}.")

    # --- choices --------------------------------------------------------------------------------

    def _scoped_choices(self, db_field, request: HttpRequest, kwargs: dict[str, Any]) -> dict[str, Any]:
        related = db_field.related_model
        if not request.user.is_superuser and is_brand_scoped(related):
            kwargs["queryset"] = scope_to_brands(related._default_manager.all(), portal_brand_ids(request))
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(db_field, request, **self._scoped_choices(db_field, request, kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(db_field, request, **self._scoped_choices(db_field, request, kwargs))

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        unscoped = [
            field.name
            for field in self.model._meta.get_fields()
            if field.is_relation
            and field.concrete
            and (field.many_to_one or field.one_to_one)
            and field.related_model is not None
            and not is_brand_scoped(field.related_model)
            and field.name not in readonly
            and field.editable
        ]
        return readonly + unscoped

    def get_list_filter(self, request: HttpRequest):
        filters = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                field = self.model._meta.get_field(entry)
                if field.is_relation and field.related_model is not None:
                    entry = (entry, ScopedRelatedFieldListFilter)
            filters.append(entry)
        return filters

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        brand_ids = portal_brand_ids(request)
        if "brand" in {f.name for f in self.model._meta.get_fields()} and len(brand_ids) == 1:
            initial.setdefault("brand", next(iter(brand_ids)))
        return initial

    # --- writes ----------------------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Model, form, change: bool) -> None:
        """On change, write only the fields the form changed (Zulip's rule: save(update_fields=...)).

        A whole-row save would put back values read when the form was opened, undoing what workers
        changed meanwhile (a tier upgrade, a counter).
        """
        if not change:
            return super().save_model(request, obj, form, change)
        concrete = {field.name for field in obj._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in concrete]
        if changed:
            obj.save(update_fields=changed)

    # --- permissions: brand staff manage their brand's rows without per-model Django perms -------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.is_portal_user(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.is_portal_user(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.is_portal_user(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.is_portal_user(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.is_portal_user(request)


class SuperuserWritesMixin:
    """For rows brand staff may look at but only an operator may create, change or delete."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser


def portal_subheader(request: HttpRequest) -> str:
    return "Partner portal"


def portal_brand_label(request: HttpRequest) -> list[str] | None:
    """The brand(s) a portal user is working on, shown as a badge in the portal's header."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return ["All brands (operator)", "warning"]
    names = list(Brand.objects.filter(pk__in=portal_brand_ids(request)).values_list("name", flat=True))
    return [", ".join(names), "info"] if names else None
