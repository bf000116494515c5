"""`manage.py create_api_key --brand SLUG --name NAME`: prints the new key alone on its last line."""

from django.core.management.base import BaseCommand, CommandError

from loyalty.models import Brand
from loyalty.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a brand. The key is shown once; only its hash is stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--brand", required=True, help="the brand's slug")
        parser.add_argument("--name", required=True, help="what the key is for, e.g. 'Till 3'")

    def handle(self, *args, brand: str, name: str, **options) -> None:
        found = Brand.objects.filter(slug=brand).first()
        if found is None:
            known = ", ".join(Brand.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"No brand with slug {brand!r} (known: {known}).")
        _, key = api_key_create(brand=found, name=name)
        self.stderr.write(f"API key {name!r} for {found.name}. Store it now: it cannot be shown again.")
        self.stdout.write(key)
