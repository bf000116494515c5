"""`manage.py leaderboard_rebuild [--brand SLUG]`: the leaderboards of now, rebuilt in Redis from the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from engagement.leaderboards import brand_rebuild
from loyalty.models import Brand


class Command(BaseCommand):
    help = "Rebuild the leaderboards (this week, this month, all time) of every brand, or one, from the database."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--brand", help="Only this brand (its slug).")

    def handle(self, *args, brand: str | None = None, **options) -> None:
        brands = Brand.objects.order_by("slug")
        if brand:
            brands = brands.filter(slug=brand)
            if not brands.exists():
                raise CommandError(f"No brand with the slug {brand!r}.")
        for item in brands:
            counts = brand_rebuild(item)
            self.stdout.write(f"{item.slug}: " + ", ".join(f"{period} {n:,}" for period, n in counts.items()))
        self.stdout.write(self.style.SUCCESS("Leaderboards rebuilt."))
