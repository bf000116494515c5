"""The portal's economics pages, behind the admin site's login (admin.site.admin_view)."""

from django.contrib import admin
from django.urls import path

from economics import portal

urlpatterns = [
    path("report/", admin.site.admin_view(portal.report_view), name="economics_report"),
    path("simulator/", admin.site.admin_view(portal.simulator_view), name="economics_simulator"),
]
