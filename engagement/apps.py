from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "engagement"
    verbose_name = "Fan engagement"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from engagement import receivers  # noqa: F401 - the leaderboards hear the ledger's postings
