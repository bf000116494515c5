"""Fan pages of the livestream app (the TV page). Included by config/urls.py."""

from django.urls import path

from livestream import views

urlpatterns = [
    path("b/<slug:slug>/tv/", views.tv, name="livestream_tv"),
    path("b/<slug:slug>/tv/<slug:channel_slug>/", views.tv, name="livestream_tv_channel"),
]
