from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.metrics import collector_register
        from integrations import metrics, receivers  # noqa: F401 - receivers: the outbox hears the ledger

        collector_register("integrations", metrics.collect)
