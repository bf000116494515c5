"""The fan page of a club's leaderboard: the top 100 of the week, month or all time, the viewer's own rank,
and how the viewer appears on it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from engagement import leaderboards
from engagement.forms import FanProfileForm
from engagement.models import FanProfile
from engagement.services import fan_profile_update
from loyalty.models import Brand
from loyalty.selectors import membership_for_user

TABS = (("week", "This week"), ("month", "This month"), ("all", "All time"))


def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug, is_active=True)
    kind = request.GET.get("period", "week")
    kind = kind if kind in leaderboards.PERIODS else "week"
    membership = membership_for_user(user=request.user, brand=brand) if request.user.is_authenticated else None
    board = leaderboards.board(brand, kind, viewer_id=membership.pk if membership else None)
    profile = FanProfile.objects.filter(membership=membership).first() if membership else None
    context = {
        "brand": brand,
        "board": board,
        "kind": kind,
        "tabs": TABS,
        "membership": membership,
        "form": FanProfileForm(instance=profile) if membership else None,
        "hidden": bool(profile and profile.hidden),
    }
    return render(request, "engagement/leaderboard.html", context)


@login_required
@require_POST
def leaderboard_profile(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug, is_active=True)
    membership = membership_for_user(user=request.user, brand=brand)
    if membership is None:
        messages.info(request, f"Join the {brand.name} fan club to be on its leaderboard.")
        return redirect("brand_detail", slug=brand.slug)
    form = FanProfileForm(request.POST)
    if form.is_valid():
        fan_profile_update(membership=membership, **form.cleaned_data)
        messages.success(request, "Saved: this is how you appear on the leaderboard.")
    else:
        messages.error(request, " ".join(" ".join(errors) for errors in form.errors.values()))
    return redirect("leaderboard", slug=brand.slug)
