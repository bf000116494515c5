"""`manage.py redeem_bench_setup`: members with points, API keys and a stocked perk for config/bench/redeem.lua.

Writes what the Lua script reads (one `key`, `member` and `perk` per line) to `--out`. Running it again
reuses the members, the perk and their funding (idempotent adjustments), and makes new API keys (a
key is shown only when it is created).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.embedded import data_dir
from loyalty.models import Brand, Membership
from loyalty.selectors import membership_balance
from loyalty.services.earning import adjustment_create
from loyalty.services.members import api_key_create, memberships_resolve
from perks.models import Perk


class Command(BaseCommand):
    help = "Prepare a redemption load test (see config/bench/redeem.lua)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--brand", default="coffee")
        parser.add_argument("--members", type=int, default=2000)
        parser.add_argument("--keys", type=int, default=24, help="API keys (the throttle is per key)")
        parser.add_argument("--points", type=int, default=1_000_000, help="each member's balance at least")
        parser.add_argument("--stock", type=int, default=1_000_000, help="the bench perk's stock")
        parser.add_argument("--cost", type=int, default=1)
        parser.add_argument("--perk-name", default="Bench perk")
        parser.add_argument("--out", default=str(data_dir() / "redeem-bench.txt"))

    def handle(self, *args, brand: str, members: int, keys: int, points: int, stock: int, cost: int, **options):
        found = Brand.objects.filter(slug=brand).first()
        if found is None:
            raise CommandError(f"No brand {brand!r}: run `manage.py demo` first.")
        emails = [f"bench-{n}@bench.example" for n in range(members)]
        resolved = memberships_resolve(brand=found, refs=[(email, "") for email in emails])
        memberships = Membership.objects.filter(pk__in=resolved.values()).select_related("wallet", "brand")
        for membership in memberships:
            short = points - membership_balance(membership)
            if short > 0:
                adjustment_create(
                    membership=membership,
                    points=short,
                    reason="redemption bench funds",
                    idempotency_key=f"redeem-bench:{membership.pk}:{uuid.uuid4().hex}",
                )
        perk, _ = Perk.objects.get_or_create(
            brand=found, name=options["perk_name"], defaults={"cost": cost, "stock": stock, "category": "other"}
        )
        Perk.objects.filter(pk=perk.pk).update(cost=cost, stock=stock, is_active=True)
        lines = [f"perk {perk.pk}"]
        lines += [f"key {api_key_create(brand=found, name=f'bench {n}')[1]}" for n in range(keys)]
        lines += [f"member {email}" for email in emails]
        Path(options["out"]).write_text("\n".join(lines) + "\n")
        self.stdout.write(f"{members} members, {keys} keys, perk {perk.pk} (stock {stock}): {options['out']}")
