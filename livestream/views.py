"""The brand's TV page: the synced player, what is on, and what watching has earned today."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from livestream import clock, selectors
from livestream.serializers import on_air_out
from livestream.services import Timing
from loyalty.models import Brand, Membership
from loyalty.selectors import membership_for_user


def points_label(count: int, points_name: str) -> str:
    """ "1 point", "5 points", "1 Star": brands name their points in the plural."""
    unit = points_name[:-1] if count == 1 and points_name.endswith("s") else points_name
    return f"{count} {unit}"


def tv(request: HttpRequest, slug: str, channel_slug: str | None = None) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug, is_active=True)
    channel = selectors.channel_for_page(brand=brand, slug=channel_slug)
    if channel is None:
        raise Http404("This brand has no TV channel.")
    membership = membership_for_user(user=request.user, brand=brand)
    is_member = membership is not None and membership.status == Membership.Status.ACTIVE
    rule = selectors.watch_rule(brand=brand)
    timing = Timing.current()
    config = {
        "channel": channel.slug,
        "fakePlayer": settings.LIVESTREAM_FAKE_PLAYER,
        "member": is_member,
        "minuteSeconds": timing.minute,
        "heartbeatSeconds": timing.heartbeat,
        "urls": {
            "time": reverse("api_live_time"),
            "now": reverse("api_live_now", args=[channel.slug]),
            "lease": reverse("api_live_lease", args=[channel.slug]),
            "heartbeat": reverse("api_live_heartbeat", args=[channel.slug]),
            "duration": reverse("api_live_duration", args=[channel.slug]),
        },
        "onAir": on_air_out(channel, selectors.channel_on_air(channel=channel)),
    }
    context = {
        "brand": brand,
        "channel": channel,
        "channels": selectors.channel_list_active(brand=brand),
        "membership": membership,
        "is_member": is_member,
        "summary": selectors.watch_summary(membership=membership) if is_member else None,
        "rule": rule if selectors.watch_rule_reason(rule, clock.now()) is None else None,
        "per_minute": points_label(rule.points, brand.points_name) if rule and rule.points else "",
        "config": config,
    }
    response = render(request, "livestream/tv.html", context)
    # The YouTube player refuses to play (error 153) without a Referer that names the embedding site;
    # Django's default policy ("same-origin") sends none to youtube.com. Send only the origin.
    response["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response
