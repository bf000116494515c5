"""Helpers for Tally's own HTML forms."""

from __future__ import annotations

import re
import uuid

from django import forms
from django.core.exceptions import BadRequest

from config.errors import ApplicationError

_NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def form_nonce() -> str:
    """A fresh nonce for a form that spends or grants points: its submission's idempotency key."""
    return uuid.uuid4().hex


def form_nonce_from(post) -> str:
    """The nonce a submitted form carried (as form_nonce made it). Anything else is a tampered or broken
    form: 400, before it reaches a key column (a NUL cannot be stored)."""
    nonce = post.get("nonce", "")
    if not _NONCE.fullmatch(nonce):
        raise BadRequest("This form is missing its nonce or it was changed: reload the page and try again.")
    return nonce


def form_errors_add(form: forms.Form, error: ApplicationError) -> None:
    """Show a service's refusal on the form: each field error on its field (or the form, for a field it
    does not have), the message itself when the error names no field."""
    for field, messages in error.fields.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
    if not error.fields:
        form.add_error(None, error.message)
