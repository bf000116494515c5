"""`manage.py run_lifecycle [--brand SLUG] [--as-of YYYY-MM-DD]`: everything the calendar makes due."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from ledger.management.commands._progress import progress_bar
from loyalty.models import Brand
from loyalty.services.lifecycle import lifecycle_run


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of is a date as YYYY-MM-DD, not {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Run the points lifecycle as of a day (each brand's today by default): release pending points whose "
        "return window ended, expire points past their date, move members between tiers. Idempotent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--brand", help="Only this brand (its slug); every active brand by default.")
        parser.add_argument("--as-of", type=_date, help="Run as of this day (YYYY-MM-DD), in each brand's timezone.")
        parser.add_argument(
            "--ahead",
            action="store_true",
            help="Allow a day after the brand's today: a rehearsal that expires and releases points early "
            "(for a copy of the data, not for production).",
        )

    def handle(
        self, *args, brand: str | None = None, as_of: dt.date | None = None, ahead: bool = False, **options
    ) -> None:
        brands = Brand.objects.filter(is_active=True).order_by("slug")
        if brand:
            brands = Brand.objects.filter(slug=brand)
            if not brands.exists():
                raise CommandError(f"No brand with the slug {brand!r}.")
        for item in brands:
            bars: dict[str, object] = {}

            def progress(step: str, done: int, total: int | None, bars=bars, item=item) -> None:
                bar = bars.get(step)
                if bar is None:
                    bar = bars[step] = progress_bar(total=total or 0, unit="member", desc=f"{item.slug} {step}")
                bar.update(done - bar.n)

            try:
                report = lifecycle_run(brand=item, as_of=as_of, progress=progress, ahead=ahead)
            except ApplicationError as error:
                raise CommandError(error.message) from None
            finally:
                for bar in bars.values():
                    bar.close()
            for line in report.lines():
                self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Lifecycle done."))
