from django.urls import path

from integrations import api

urlpatterns = [
    path("webhooks", api.Webhooks.as_view(), name="api_webhooks"),
    path("webhooks/<int:endpoint_id>", api.WebhookDetail.as_view(), name="api_webhook"),
]
