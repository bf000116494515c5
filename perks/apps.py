from django.apps import AppConfig


class PerksConfig(AppConfig):
    name = "perks"
    verbose_name = "Perks"

    def ready(self) -> None:
        from django.urls import reverse

        from loyalty.extensions import BrandLink, brand_link_provider

        @brand_link_provider
        def perks_link(brand) -> list[BrandLink]:
            return [BrandLink(f"Spend your {brand.points_name} on perks", reverse("perk_list", args=[brand.slug]), 20)]
