"""Fan pages: home, sign up, a brand's page with "join the fan club", and "my clubs"."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from config.errors import ApplicationError
from loyalty import selectors, services
from loyalty.extensions import brand_links
from loyalty.forms import SignUpForm
from loyalty.models import Brand


def _safe_next(request: HttpRequest, default: str) -> str:
    """The `next` the page asked for, if it stays on this site (no open redirect), else `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "loyalty/home.html", {"brands": selectors.brand_list_active()})


def sign_up(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("my_clubs")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_sign_up(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                name=form.cleaned_data["name"],
            )
        except ApplicationError as error:
            for field, field_errors in error.fields.items():
                for message in field_errors:
                    form.add_error(field, message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to Tally! Join a fan club to start earning.")
            return redirect(_safe_next(request, reverse("home")))
    return render(request, "registration/signup.html", {"form": form})


def brand_detail(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug, is_active=True)
    membership = selectors.membership_for_user(user=request.user, brand=brand)
    balance = selectors.membership_balance(membership) if membership else None
    context = {"brand": brand, "membership": membership, "balance": balance, "links": brand_links(brand=brand)}
    return render(request, "loyalty/brand_detail.html", context)


@login_required
@require_POST
def brand_join(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug)
    member = services.member_for_user(user=request.user)
    try:
        services.membership_join(member=member, brand=brand)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"You joined the {brand.name} fan club.")
    return redirect(_safe_next(request, reverse("brand_detail", args=[brand.slug])))


@login_required
def my_clubs(request: HttpRequest) -> HttpResponse:
    return render(request, "loyalty/my_clubs.html", {"memberships": selectors.membership_list_for_user(request.user)})
