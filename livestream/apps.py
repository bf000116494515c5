from django.apps import AppConfig


class LivestreamConfig(AppConfig):
    name = "livestream"
    verbose_name = "Livestream"

    def ready(self) -> None:
        from django.urls import reverse

        from config.metrics import collector_register
        from livestream import metrics
        from loyalty.extensions import BrandLink, brand_link_provider

        collector_register("livestream", metrics.collect)

        @brand_link_provider
        def tv_link(brand) -> list[BrandLink]:
            from livestream.models import Channel

            if not Channel.objects.filter(brand=brand, is_active=True).exists():
                return []
            return [BrandLink(f"Watch {brand.name} TV and earn", reverse("livestream_tv", args=[brand.slug]), 10)]
