"""manage.py verify_ledger: walk every account's hash chain; exit 1 naming the first entry that does not match.

Catches what the append-only triggers cannot: a row changed or removed by someone who switched the
triggers off (ALTER TABLE ... DISABLE TRIGGER) or edited the data files. Each entry's hash covers its
transaction's idempotency key, its account code, amount, seq and time, and the previous entry's hash,
and each balance row's head must be its account's last entry.

Exit status: 0 when every chain is intact, 1 when one is not, 2 for a bad argument.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Sum

from ledger.audit import chains_verify
from ledger.models import Account, Balance

from ._progress import progress_bar


class Command(BaseCommand):
    help = "Recompute every entry hash along each account's chain; exit 1 naming the first entry that does not match."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", metavar="CODE", help="Verify only the account with this code.")
        parser.add_argument("--chunk-size", type=int, default=500, help="Accounts per query.")
        parser.add_argument("--progress", action="store_true", default=None, help="Always show the progress bar.")
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="Never show it.")

    def handle(self, *args, **options) -> None:
        account_id = None
        heads = Balance.objects.all()
        if options["account"]:
            account = Account.objects.filter(code=options["account"]).first()
            if account is None:
                raise CommandError(f"No account with code {options['account']!r}.", returncode=2)
            account_id = account.pk
            heads = heads.filter(account_id=account_id)
        # The rollup's entry counts size the bar without counting the entries table.
        total = heads.aggregate(total=Sum("entry_count"))["total"] or 0
        with progress_bar(total=total, unit="entry", desc="verify_ledger", enabled=options["progress"]) as bar:
            report = chains_verify(chunk_size=options["chunk_size"], account_id=account_id, progress=bar.update)

        for chain_break in report.breaks:
            self.stdout.write(f"BROKEN {chain_break.describe()}")
        if not report.breaks:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Verified {report.entries} entries in {report.accounts} accounts: every chain is intact."
                )
            )
            return
        raise CommandError(
            f"{len(report.breaks)} of {report.accounts} account chains do not verify; "
            f"the first bad entry: {report.breaks[0].describe()}",
            returncode=1,
        )
