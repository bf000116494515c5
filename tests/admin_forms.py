"""Submit a partner-portal change form as a browser would: every field as the page rendered it, then edits."""

from __future__ import annotations

from typing import Any


def _field_value(bound) -> Any:
    value = bound.value()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else None
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return str(value) if not hasattr(value, "pk") else str(value.pk)


def form_data(response, **changes: Any) -> dict[str, Any]:
    """The POST data of the admin change (or add) page in `response`, with `changes` applied on top."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for form in forms:
        for name in form.fields:
            value = _field_value(form[name])
            if value is not None:
                data[form.add_prefix(name)] = value
    for form in forms:  # the formsets' hidden initials (show_hidden_initial fields)
        for name, field in form.fields.items():
            if field.show_hidden_initial:
                data[form.add_initial_prefix(name)] = _field_value(form[name]) or ""
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}
