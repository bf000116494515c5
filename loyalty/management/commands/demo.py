"""`manage.py demo`: load the demo brands, logins and configuration. Safe to run again."""

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from loyalty.demo import LOGINS


class Command(BaseCommand):
    help = "Load the demo: the coffee brand, the artist fan club, staff logins and a fan. Idempotent."

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "The demo creates logins with a published password: it never runs in production "
                "(TALLY_ENV=production). Create the first operator with `manage.py createsuperuser`."
            )
        with transaction.atomic():
            for config in apps.get_app_configs():
                module_name = f"{config.name}.demo"
                if find_spec(module_name) is None:
                    continue
                for line in import_module(module_name).load() or []:
                    self.stdout.write(f"  {config.label}: {line}")
        self.stdout.write(self.style.SUCCESS("Demo loaded. Logins:"))
        for login in LOGINS:
            self.stdout.write(f"  {login.who:<36} {login.email:<24} password: {login.password}")
