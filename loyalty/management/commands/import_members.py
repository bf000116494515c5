"""`manage.py import_members --brand SLUG FILE.csv [--dry-run]`: a brand's members and balances from a CSV."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from ledger.management.commands._progress import progress_bar
from loyalty.models import Brand
from loyalty.services.imports import COLUMNS, members_import


class Command(BaseCommand):
    help = (
        f"Import a brand's members from a CSV file with a header row naming some of {', '.join(COLUMNS)} "
        "(email or external_id at least). Bad rows are reported by line and skipped. Each balance is posted "
        "once per member, ever: importing the file again posts nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="The CSV file (UTF-8; Excel's byte order mark is fine).")
        parser.add_argument("--brand", required=True, help="The brand's slug.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check everything and say what would happen; write nothing."
        )

    def handle(self, *args, file: str, brand: str, dry_run: bool = False, **options) -> None:
        target = Brand.objects.filter(slug=brand).first()
        if target is None:
            raise CommandError(f"No brand with the slug {brand!r}.")
        path = Path(file)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise CommandError(f"No such file: {file}.") from None
        except OSError as error:  # a directory, no permission
            raise CommandError(f"Cannot read {file}: {error.strerror or error}.") from None

        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = progress_bar(total=total, unit="row", desc=f"{target.slug} {'check' if dry_run else 'import'}")
            bar.update(done - bar.n)

        try:
            report = members_import(
                brand=target, content=content, dry_run=dry_run, by=f"manage.py import_members {path.name}",
                progress=progress,
            )  # fmt: skip
        except ApplicationError as error:
            raise CommandError(f"{file}: {error.message}") from None
        finally:
            if bar is not None:
                bar.close()
        for line in report.lines():
            self.stdout.write(line)
        if dry_run:
            self.stdout.write(self.style.WARNING("Dry run: nothing was written."))
        else:
            self.stdout.write(self.style.SUCCESS("Import done."))
