"""The portal's front page is made of each app's part (Unfold's DASHBOARD_CALLBACK takes one callable)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    from economics.portal import dashboard_callback as economics
    from integrations.portal import dashboard_notices

    return dashboard_notices(request, economics(request, context))
