"""Fan pages: a brand's perks, redeem with a confirmation step, the voucher, "my rewards", and the open
network's page (the network wallet and catalog, redeemed the same way)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from config.errors import ApplicationError
from config.forms import form_nonce, form_nonce_from
from loyalty.models import Brand, Member
from loyalty.selectors import membership_balance, membership_for_user, network_balance
from loyalty.services.members import membership_join
from perks.models import Perk, Redemption
from perks.selectors import (
    network_perk_list_active,
    network_perk_refusal,
    networks_for_member,
    perk_list_active,
    perk_refusal,
    redemption_list_for_user,
)
from perks.services import perk_redeem


def perk_list(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug, is_active=True)
    membership = membership_for_user(user=request.user, brand=brand)
    balance = membership_balance(membership) if membership else None
    rows = [
        {
            "perk": perk,
            "refusal": perk_refusal(membership=membership, perk=perk, balance=balance) if membership else None,
        }
        for perk in perk_list_active(brand=brand)
    ]
    return render(
        request, "perks/perk_list.html", {"brand": brand, "membership": membership, "balance": balance, "rows": rows}
    )


@login_required
def perk_redeem_confirm(request: HttpRequest, slug: str, perk_id: int) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug, is_active=True)
    perk = get_object_or_404(Perk, pk=perk_id, brand=brand)
    membership = membership_for_user(user=request.user, brand=brand)
    if membership is None:
        messages.error(request, f"Join the {brand.name} fan club to redeem perks.")
        return redirect("brand_detail", slug=brand.slug)
    if request.method == "POST":
        # The form's nonce is the redemption's request key: a double click or a resubmitted form
        # finds the redemption it already made instead of spending twice.
        nonce = form_nonce_from(request.POST)
        try:
            result = perk_redeem(membership=membership, perk=perk, request_key=f"web:{nonce}")
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("perk_list", slug=brand.slug)
        return redirect("my_reward", redemption_id=result.redemption.pk)
    balance = membership_balance(membership)
    refusal = perk_refusal(membership=membership, perk=perk, balance=balance)
    return render(
        request,
        "perks/perk_confirm.html",
        {
            "brand": brand,
            "perk": perk,
            "balance": balance,
            "after": balance - perk.cost,
            "refusal": refusal,
            "nonce": form_nonce(),
        },
    )


@login_required
def my_rewards(request: HttpRequest) -> HttpResponse:
    return render(request, "perks/my_rewards.html", {"redemptions": redemption_list_for_user(request.user)})


@login_required
def my_reward(request: HttpRequest, redemption_id: int) -> HttpResponse:
    redemption = get_object_or_404(
        Redemption.objects.select_related("perk", "brand", "membership"),
        pk=redemption_id,
        membership__member__user=request.user,
    )
    if redemption.perk.is_network_perk:
        network = redemption.brand.network
        balance = network_balance(member_id=redemption.membership.member_id, network_id=network.pk)
        unit = network.unit
    else:
        balance, unit = membership_balance(redemption.membership), redemption.brand.points_name
    return render(request, "perks/my_reward.html", {"redemption": redemption, "balance": balance, "unit": unit})


def _member(request: HttpRequest) -> Member | None:
    return Member.objects.filter(user=request.user).first() if request.user.is_authenticated else None


@login_required
def network_page(request: HttpRequest) -> HttpResponse:
    """The fan's open networks: their network points and every brand's network perks, each with what keeps
    them from redeeming it (if anything)."""
    member = _member(request)
    networks = []
    for network in networks_for_member(member):
        balance = network_balance(member_id=member.pk, network_id=network.pk)
        rows = [
            {"perk": perk, "refusal": network_perk_refusal(member=member, perk=perk, balance=balance)}
            for perk in network_perk_list_active(network_id=network.pk)
        ]
        networks.append({"network": network, "balance": balance, "rows": rows})
    return render(request, "perks/network.html", {"networks": networks})


@login_required
def network_perk_redeem(request: HttpRequest, perk_id: int) -> HttpResponse:
    """Confirm, then redeem a network perk: the fan joins the honoring brand's club on their first one."""
    perk = get_object_or_404(
        Perk.objects.select_related("brand__network"),
        pk=perk_id,
        is_network_perk=True,
        is_active=True,
        brand__network__isnull=False,
    )
    network = perk.brand.network
    member = _member(request)
    if member is None or network not in networks_for_member(member):
        messages.error(request, f"Join a club of the {network.name} to spend {network.unit}.")
        return redirect("network")
    balance = network_balance(member_id=member.pk, network_id=network.pk)
    if request.method == "POST":
        nonce = form_nonce_from(request.POST)
        try:
            membership = membership_join(member=member, brand=perk.brand)
            result = perk_redeem(membership=membership, perk=perk, request_key=f"web:{nonce}")
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("network")
        return redirect("my_reward", redemption_id=result.redemption.pk)
    return render(
        request,
        "perks/network_confirm.html",
        {
            "perk": perk,
            "network": network,
            "balance": balance,
            "after": balance - perk.cost,
            "refusal": network_perk_refusal(member=member, perk=perk, balance=balance),
            "nonce": form_nonce(),
        },
    )
