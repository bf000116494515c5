from django.urls import path

from perks import views

urlpatterns = [
    path("b/<slug:slug>/perks/", views.perk_list, name="perk_list"),
    path("b/<slug:slug>/perks/<int:perk_id>/redeem/", views.perk_redeem_confirm, name="perk_redeem"),
    path("me/rewards/", views.my_rewards, name="my_rewards"),
    path("network/", views.network_page, name="network"),
    path("network/perks/<int:perk_id>/redeem/", views.network_perk_redeem, name="network_perk_redeem"),
    path("me/rewards/<int:redemption_id>/", views.my_reward, name="my_reward"),
]
