"""manage.py reconcile: recompute every balance row from the entries; exit 1 on any difference.

    manage.py reconcile                       check every account
    manage.py reconcile --account CODE        check one
    manage.py reconcile --fix --reason "..."  rebuild differing rows from the entries, recording each fix

Exit status: 0 when every row matches its entries (or, with --fix, when every difference was fixed),
1 when a difference remains, 2 for a bad argument.
"""

from __future__ import annotations

import getpass
import socket

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from ledger.audit import Rollup, rollups_recompute
from ledger.models import Account
from ledger.services import balance_rebuild

from ._progress import progress_bar


def _describe(differences: dict[str, tuple[object, object]]) -> str:
    return "; ".join(
        f"{name} stored {stored} != {computed} from entries" for name, (stored, computed) in differences.items()
    )


class Command(BaseCommand):
    help = "Recompute every balance row from the entries; print each difference and exit 1 if there is any."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", metavar="CODE", help="Check only the account with this code.")
        parser.add_argument("--fix", action="store_true", help="Rebuild differing rows from the entries.")
        parser.add_argument("--reason", default="", help="Why the fix is made; recorded with it.")
        parser.add_argument("--by", dest="performed_by", default="", help="Who makes the fix (default: OS user@host).")
        parser.add_argument("--chunk-size", type=int, default=1000, help="Accounts per aggregate query.")
        parser.add_argument("--progress", action="store_true", default=None, help="Always show the progress bar.")
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="Never show it.")

    def handle(self, *args, **options) -> None:
        account_id = None
        accounts = Account.objects.all()
        if options["account"]:
            account = Account.objects.filter(code=options["account"]).first()
            if account is None:
                raise CommandError(f"No account with code {options['account']!r}.", returncode=2)
            account_id = account.pk
            accounts = accounts.filter(pk=account_id)
        performed_by = options["performed_by"] or f"{getpass.getuser()}@{socket.gethostname()}"
        reason = options["reason"] or "manage.py reconcile --fix"

        checked, differing, unfixed = 0, [], []
        with progress_bar(total=accounts.count(), unit="account", desc="reconcile", enabled=options["progress"]) as bar:
            for rollups in rollups_recompute(chunk_size=options["chunk_size"], account_id=account_id):
                for rollup in rollups:
                    if rollup.differences:
                        differing.append(rollup)
                        self.stdout.write(f"DIFFERS {rollup.code}: {_describe(rollup.differences)}")
                        if options["fix"] and not self._fix(rollup, performed_by, reason):
                            unfixed.append(rollup)
                checked += len(rollups)
                bar.update(len(rollups))

        if not differing:
            self.stdout.write(self.style.SUCCESS(f"Checked {checked} accounts: every balance matches its entries."))
            return
        if options["fix"] and not unfixed:
            self.stdout.write(self.style.SUCCESS(f"Checked {checked} accounts: fixed {len(differing)}."))
            return
        remaining = unfixed if options["fix"] else differing
        raise CommandError(
            f"Checked {checked} accounts: {len(remaining)} balance row(s) differ from their entries"
            + ("" if options["fix"] else " (run with --fix to rebuild them from the entries)"),
            returncode=1,
        )

    def _fix(self, rollup: Rollup, performed_by: str, reason: str) -> bool:
        account = Account.objects.get(pk=rollup.account_id)
        try:
            fix = balance_rebuild(account=account, performed_by=performed_by, reason=reason)
        except IntegrityError as exc:
            self.stderr.write(f"CANNOT FIX {rollup.code}: {exc}".strip())
            return False
        if fix is None:
            self.stdout.write(f"ALREADY MATCHES {rollup.code}: nothing to fix any more")
        else:
            changed = {name: (fix.before or {}).get(name) for name in fix.after}
            summary = ", ".join(
                f"{name} {changed[name]} -> {value}" for name, value in fix.after.items() if changed[name] != value
            )
            self.stdout.write(f"FIXED {rollup.code} (fix #{fix.pk} by {fix.performed_by}): {summary}")
        return True
