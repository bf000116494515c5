from django.urls import path

from perks import api

urlpatterns = [
    path("perks", api.PerkCollection.as_view(), name="api_perks"),
    path("network/perks", api.NetworkPerkCollection.as_view(), name="api_network_perks"),
    path("redemptions", api.RedemptionCollection.as_view(), name="api_redemptions"),
    path("redemptions/<int:redemption_id>", api.RedemptionDetail.as_view(), name="api_redemption_detail"),
    path("redemptions/<int:redemption_id>/cancel", api.RedemptionCancel.as_view(), name="api_redemption_cancel"),
    path("vouchers/redeem", api.VoucherRedeem.as_view(), name="api_voucher_redeem"),
]
