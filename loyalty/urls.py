from django.contrib.auth import views as auth_views
from django.urls import path

from loyalty import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.sign_up, name="signup"),
    path("verify-email/resend/", views.email_verification_resend, name="email_verification_resend"),
    path("verify-email/<str:token>/", views.email_verify, name="email_verify"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("me/clubs/", views.my_clubs, name="my_clubs"),
    path("me/profile/", views.profile, name="profile"),
    path("b/<slug:slug>/", views.brand_detail, name="brand_detail"),
    path("b/<slug:slug>/join/", views.brand_join, name="brand_join"),
    path("b/<slug:slug>/wallet/", views.wallet, name="wallet"),
]
