from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from config.http import client_ip
from loyalty import login_throttle


class SignUpForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, label="Your name")
    email = forms.EmailField(label="Email")
    password = forms.CharField(
        widget=forms.PasswordInput,
        label="Password",
        strip=False,
        help_text=password_validation.password_validators_help_text_html(),
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            try:
                password_validation.validate_password(password)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, label="Your name")  # NUL refused by Django


class ThrottledLoginMixin:
    """Refuses logins while loyalty.login_throttle locks the email or the address out, and counts failures.

    `throttled` tells the view to answer 429. A locked-out attempt is refused before the password is
    checked, so a guesser cannot tell a right password from a wrong one while locked out.
    """

    throttled = False

    def clean(self):
        email = (self.data.get("username") or "").strip().lower()
        ip = client_ip(self.request)
        if not login_throttle.login_allowed(email=email, ip=ip):
            self.throttled = True
            minutes = max(1, settings.LOGIN_THROTTLE_WINDOW_SECONDS // 60)
            raise forms.ValidationError(
                f"Too many failed attempts. Try again in {minutes} minutes, or reset your password.",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_throttle.login_failed(email=email, ip=ip)
            raise
        login_throttle.login_succeeded(email=email, ip=ip)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
