"""The livestream API under /api/v1/ (time sync, channel now, lease, heartbeat). Included by config/urls.py."""

from django.urls import path

from livestream import api

urlpatterns = [
    path("time", api.ServerTime.as_view(), name="api_live_time"),
    path("live/<slug:slug>/now", api.ChannelNow.as_view(), name="api_live_now"),
    path("live/<slug:slug>/lease", api.ChannelLease.as_view(), name="api_live_lease"),
    path("live/<slug:slug>/heartbeat", api.ChannelHeartbeat.as_view(), name="api_live_heartbeat"),
    path("live/<slug:slug>/duration", api.ChannelDuration.as_view(), name="api_live_duration"),
]
