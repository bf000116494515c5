from django.urls import path

from loyalty import api, compat

urlpatterns = [
    path("events", api.EventCollection.as_view(), name="api_events"),
    path("events/batch", api.EventBatch.as_view(), name="api_events_batch"),
    path("events/simulate", api.EventSimulate.as_view(), name="api_events_simulate"),
    path("events/<int:event_id>", api.EventDetail.as_view(), name="api_event_detail"),
    path("members", api.MemberCollection.as_view(), name="api_members"),
    path("members/<int:member_id>", api.MemberDetail.as_view(), name="api_member_detail"),
    path(
        "members/<int:member_id>/transactions",
        api.MemberTransactions.as_view(),
        name="api_member_transactions",
    ),
    path("adjustments", api.AdjustmentCollection.as_view(), name="api_adjustments"),
    path("network/settlement", api.NetworkSettlementView.as_view(), name="api_network_settlement"),
    path("compat/loyalteez/manual-event", compat.LoyalteezManualEvent.as_view(), name="api_compat_loyalteez"),
]
