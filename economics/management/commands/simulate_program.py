"""`manage.py simulate_program --brand SLUG --from ... --to ... [rules]`: a brand's history replayed under
another rule set, beside its own. Writes nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from economics.simulator import Alternative, comparison_rows, program_simulate, tiers_parse
from ledger.management.commands._progress import progress_bar
from loyalty.models import Brand
from loyalty.services.lifecycle import brand_today


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"A date is YYYY-MM-DD, not {value!r}.") from None


def _rate(value: str) -> Decimal:
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"--rate is points per currency unit (for example 10), not {value!r}.") from None
    if not rate.is_finite() or rate < 0:
        raise CommandError(f"--rate is 0 or more, not {value!r}.")
    return rate


class Command(BaseCommand):
    help = (
        "Replay a brand's events and redemptions of a range under its rules and under another rule set, and "
        "print both side by side (points issued, members per tier, return rate, cost % of revenue, "
        "liability). Reads only: nothing is written to the ledger."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--brand", required=True, help="The brand's slug.")
        parser.add_argument("--from", dest="start", type=_date, help="First day (YYYY-MM-DD); a year back by default.")
        parser.add_argument("--to", dest="end", type=_date, help="Last day (YYYY-MM-DD); the brand's today by default.")
        parser.add_argument("--rate", type=_rate, help="Purchase points per currency unit.")
        tiers = parser.add_mutually_exclusive_group()
        tiers.add_argument("--no-tiers", action="store_true", help="No tiers: every purchase at x1.")
        tiers.add_argument("--tiers", help='Other tiers, lowest first: "Green:0:1.0,Gold:500:1.2".')
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument("--expire-months", type=int, help="Points expire this many months after their month.")
        expiry.add_argument("--never-expire", action="store_true", help="Points never expire.")
        parser.add_argument(
            "--flat-network", action="store_true", help="The open network's flat rule: 10 per unit, no tiers."
        )

    def handle(self, *args, brand: str, start, end, **options) -> None:
        item = Brand.objects.filter(slug=brand).first()
        if item is None:
            raise CommandError(f"No brand with the slug {brand!r}.")
        end = end or brand_today(item)
        start = start or end - dt.timedelta(days=364)
        if start > end:
            raise CommandError("--from must not be after --to.")
        if options["expire_months"] is not None and options["expire_months"] < 1:
            raise CommandError("--expire-months is 1 or more (or --never-expire).")
        try:
            tiers = () if options["no_tiers"] else tiers_parse(options["tiers"]) if options["tiers"] else None
        except ValueError as error:
            raise CommandError(f"--tiers: {error}") from None
        alternative = Alternative(
            points_per_unit=options["rate"],
            tiers=tiers,
            expire_months=options["expire_months"],
            never_expire=options["never_expire"],
            flat_network=options["flat_network"],
        )
        bar = progress_bar(total=0, unit="event", desc=f"{item.slug} replay")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            comparison = program_simulate(item, start=start, end=end, alternative=alternative, progress=progress)
        finally:
            bar.close()
        self.stdout.write(
            f"{item.name} ({item.slug}), {start} to {end}: {comparison.events:,} events of {comparison.members:,} "
            f"members replayed, spend {comparison.spend:,.2f} {comparison.currency}"
        )
        if comparison.events_skipped:
            self.stdout.write(f"{comparison.events_skipped:,} refunds of purchases before the range left out")
        self.stdout.write(f"Alternative: {comparison.alternative_described}")
        rows = [("", "Current rules", "Alternative"), *comparison_rows(comparison)]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for name, current, other in rows:
            self.stdout.write(f"{name:<{widths[0]}}  {current:>{widths[1]}}  {other:>{widths[2]}}")
        self.stdout.write(self.style.SUCCESS("Nothing was written: the replay reads only."))
