from django.contrib.auth import views as auth_views
from django.urls import path

from loyalty import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.sign_up, name="signup"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("me/clubs/", views.my_clubs, name="my_clubs"),
    path("b/<slug:slug>/", views.brand_detail, name="brand_detail"),
    path("b/<slug:slug>/join/", views.brand_join, name="brand_join"),
]
