"""manage.py rollups_rebuild [--brand SLUG]: rebuild the economics rollups from the ledger and the events."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from ledger.management.commands._progress import progress_bar
from loyalty.models import Brand
from loyalty.services.rollups import economics_rollups_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the economics rollups (points per day, events per day, active members per week) of one brand "
        "or all from the ledger and the events: for a history older than the rollups, or to check them. "
        "Postings wait while a brand's rebuild runs."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--brand", help="a brand's slug (default: every brand)")

    def handle(self, *args, brand: str | None = None, **options) -> None:
        brands = Brand.objects.order_by("slug")
        if brand:
            brands = brands.filter(slug=brand)
            if not brands.exists():
                raise CommandError(f"No brand with the slug {brand!r}.")
        brands = list(brands)
        with progress_bar(total=len(brands), unit="brand", desc="rebuilding") as bar:
            for one in brands:
                started = time.monotonic()
                written = economics_rollups_rebuild(brand=one)
                bar.update(1)
                self.stdout.write(
                    f"{one.slug}: {written['points']} daily points rows, {written['events']} daily events rows, "
                    f"{written['weeks']} weeks of active members ({time.monotonic() - started:.1f} s)"
                )
