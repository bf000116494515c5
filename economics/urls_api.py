from django.urls import path

from economics import api

urlpatterns = [
    path("reports/economics", api.EconomicsReport.as_view(), name="api_reports_economics"),
]
