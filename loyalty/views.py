"""Fan pages: home, sign up and email verification, login and password reset, a brand's page with "join
the fan club", a member's wallet, and "my clubs"."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from config.errors import ApplicationError
from config.forms import form_errors_add
from config.http import client_ip
from ledger.errors import InvalidCursorError
from loyalty import login_throttle, selectors, services
from loyalty.extensions import brand_links
from loyalty.forms import ProfileForm, SignUpForm, ThrottledAuthenticationForm
from loyalty.models import Brand
from loyalty.tokens import user_for_email_verification_token


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
                site_url=request.build_absolute_uri("/"),
            )
        except ApplicationError as error:
            form_errors_add(form, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                f"Welcome to Tally! We sent a link to {user.email}: open it to confirm your address, "
                "then join a fan club to start earning.",
            )
            return redirect(_safe_next(request, reverse("home")))
    return render(request, "registration/signup.html", {"form": form})


def email_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The link mailed at sign-up. Opening it again, or while logged out, is harmless."""
    user = user_for_email_verification_token(token)
    if user is None:
        return render(request, "registration/email_verification_invalid.html", status=400)
    try:
        services.user_email_verify(user=user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Thank you: {user.email} is confirmed. You can join fan clubs now.")
    if request.user.is_authenticated and request.user.pk == user.pk:
        return redirect("my_clubs")
    return redirect(f"{reverse('login')}?next={reverse('my_clubs')}")


@login_required
@require_POST
def email_verification_resend(request: HttpRequest) -> HttpResponse:
    if request.user.email_verified:
        messages.info(request, "Your email address is already confirmed.")
    else:
        services.email_verification_send(user=request.user, site_url=request.build_absolute_uri("/"))
        messages.success(request, f"We sent a new link to {request.user.email}.")
    return redirect(_safe_next(request, reverse("my_clubs")))


class LoginView(auth_views.LoginView):
    """The fan login, throttled (loyalty.login_throttle): 429 while an email or address is locked out."""

    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if getattr(form, "throttled", False):
            response.status_code = 429
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Setting a new password through a link mailed to the address also proves the person reads it, and
    lifts the login throttle on that address."""

    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        # The one who reads the mail chose a new password: failed guesses of the old one lock them out no more.
        login_throttle.login_succeeded(email=form.user.email, ip=client_ip(self.request))
        if not form.user.email_verified:
            try:
                services.user_email_verify(user=form.user)
            except ApplicationError as error:
                messages.error(self.request, error.message)
        return response


def brand_detail(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug, is_active=True)
    membership = selectors.membership_for_user(user=request.user, brand=brand)
    balance = selectors.membership_balance(membership) if membership else None
    context = {"brand": brand, "membership": membership, "balance": balance, "links": brand_links(brand=brand)}
    return render(request, "loyalty/brand_detail.html", context)


@login_required
def wallet(request: HttpRequest, slug: str) -> HttpResponse:
    """A member's points in one club: balance, pending, expiring, tier progress and the history."""
    brand = get_object_or_404(Brand, slug=slug, is_active=True)
    membership = selectors.membership_for_user(user=request.user, brand=brand)
    if membership is None:
        messages.info(request, f"Join the {brand.name} fan club to have a wallet there.")
        return redirect("brand_detail", slug=brand.slug)
    balance = selectors.membership_balance(membership)
    qualifying = selectors.qualifying_points(membership)
    upcoming = selectors.next_tier(membership, qualifying)
    progress = None
    if upcoming:
        tier, needed = upcoming
        percent = 100 if not tier.threshold else min(100, qualifying * 100 // tier.threshold)
        progress = {"tier": tier, "needed": needed, "percent": percent}
    try:
        page = selectors.membership_statement(membership=membership, cursor=request.GET.get("after"), limit=20)
    except InvalidCursorError:
        return redirect("wallet", slug=brand.slug)
    history = [(entry, selectors.entry_reason(entry)) for entry in page.entries] if page else []
    context = {
        "brand": brand,
        "membership": membership,
        "balance": balance,
        "pending": selectors.membership_pending(membership),
        "pending_lots": selectors.membership_pending_lots(membership),
        "expiring": selectors.membership_expiring(membership, balance=balance)[:3],
        "qualifying": qualifying,
        "progress": progress,
        "history": history,
        "next_cursor": page.next_cursor if page else None,
        "first_page": not request.GET.get("after"),
    }
    return render(request, "loyalty/wallet.html", context)


@login_required
@require_POST
def brand_join(request: HttpRequest, slug: str) -> HttpResponse:
    brand = get_object_or_404(Brand, slug=slug)
    try:
        member = services.member_for_user(user=request.user)
        services.membership_join(member=member, brand=brand)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"You joined the {brand.name} fan club.")
    return redirect(_safe_next(request, reverse("brand_detail", args=[brand.slug])))


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """The person's own identity: their name (shared by every club they joined) and their email."""
    form = ProfileForm(request.POST or None, initial={"name": request.user.first_name})
    if request.method == "POST" and form.is_valid():
        services.user_profile_update(user=request.user, name=form.cleaned_data["name"])
        messages.success(request, "Your name is saved.")
        return redirect("profile")
    return render(request, "loyalty/profile.html", {"form": form})


@login_required
def my_clubs(request: HttpRequest) -> HttpResponse:
    return render(request, "loyalty/my_clubs.html", {"memberships": selectors.membership_list_for_user(request.user)})
