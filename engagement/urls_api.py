from django.urls import path

from engagement import api

urlpatterns = [path("leaderboard", api.Leaderboard.as_view(), name="api_leaderboard")]
