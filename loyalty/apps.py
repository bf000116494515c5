from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty"

    def ready(self) -> None:
        from loyalty import checks, signals  # noqa: F401 - registers the checks, connects the receivers
