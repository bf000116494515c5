from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ledger.models import Transaction
        from ledger.signals import balances_roll_up, transaction_posted

        # Connected here, first of all receivers (ledger precedes the apps built on it in INSTALLED_APPS),
        # so that receivers of higher apps read balances that already include the new entries.
        transaction_posted.connect(balances_roll_up, sender=Transaction, dispatch_uid="ledger.balances_roll_up")
