from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty"

    def ready(self) -> None:
        from config.metrics import collector_register
        from loyalty import checks, metrics, signals  # noqa: F401 - registers the checks, connects the receivers

        collector_register("loyalty", metrics.collect)
