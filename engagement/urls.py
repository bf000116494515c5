from django.urls import path

from engagement import views

urlpatterns = [
    path("b/<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("b/<slug:slug>/leaderboard/me/", views.leaderboard_profile, name="leaderboard_profile"),
]
