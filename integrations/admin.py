"""The integrations in the partner portal: a brand's analytics project, its webhook endpoints and every
delivery (status, attempts, the last answer), with a way to send one again."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import TabularInline

from integrations import services, sinks
from integrations.models import MESSAGE_TYPES, BrandIntegration, Delivery, WebhookEndpoint
from loyalty.admin_site import BrandScopedAdmin


@admin.register(BrandIntegration)
class BrandIntegrationAdmin(BrandScopedAdmin):
    list_display = ["brand", "analytics_on", "expiring_soon_days"]
    fields = ["brand", "analytics_token", "analytics_secret", "expiring_soon_days"]

    @admin.display(description="analytics", boolean=True)
    def analytics_on(self, row: BrandIntegration) -> bool:
        return bool(row.analytics_secret)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=[(name, name) for name in MESSAGE_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all of them.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["brand", "url", "events", "enabled"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        refusal = sinks.url_refusal(url)
        if refusal:
            raise forms.ValidationError(refusal)
        return url


class DeliveryInline(TabularInline):
    model = Delivery
    fields = ["message_type", "status", "attempts", "last_status", "last_error", "next_attempt_at", "delivered_at"]
    readonly_fields = fields
    ordering = ["-id"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "Latest deliveries (all under Deliveries)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("message")

    @admin.display(description="type")
    def message_type(self, delivery: Delivery) -> str:
        return delivery.message.type


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(BrandScopedAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "brand", "event_list", "enabled", "health"]
    list_filter = ["brand", "enabled"]
    readonly_fields = ["secret", "failing_since", "disabled_at", "disabled_reason"]
    actions = ["enable"]

    def get_fields(self, request, obj=None):
        fields = ["brand", "url", "events", "enabled"]
        return fields + self.readonly_fields if obj is not None else fields

    def get_inlines(self, request, obj):
        return [DeliveryInline] if obj is not None else []

    @admin.display(description="events")
    def event_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events) or "all"

    @admin.display(description="health")
    def health(self, endpoint: WebhookEndpoint) -> str:
        if not endpoint.enabled and endpoint.disabled_at:
            return f"disabled {endpoint.disabled_at:%Y-%m-%d}: {endpoint.disabled_reason}"
        if endpoint.failing_since:
            return f"failing since {endpoint.failing_since:%Y-%m-%d %H:%M}"
        return "ok"

    def changelist_view(self, request, extra_context=None):
        disabled = self.get_queryset(request).filter(enabled=False, disabled_at__isnull=False)
        for endpoint in disabled:
            messages.warning(request, f"{endpoint.url} was disabled: {endpoint.disabled_reason}.")
        return super().changelist_view(request, extra_context)

    @admin.action(description="Enable again (receives what happens from now on)")
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.endpoint_enable(endpoint=endpoint)
        messages.success(request, f"{queryset.count()} endpoint(s) enabled.")


@admin.register(Delivery)
class DeliveryAdmin(BrandScopedAdmin):
    list_display = ["message_type", "sink", "status", "attempts", "last_status", "last_error", "next_attempt_at"]
    list_filter = ["status", "brand"]
    search_fields = ["message__uid", "sink"]
    actions = ["send_again"]
    list_select_related = ["message"]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="type")
    def message_type(self, delivery: Delivery) -> str:
        return delivery.message.type

    @admin.action(description="Send again now (the same message id)")
    def send_again(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = services.deliveries_resend(delivery_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"{count} deliveries will be sent again within seconds.")
