"""`manage.py network_settle --month YYYY-MM [--network SLUG]`: close a settlement month of the networks."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from loyalty.models import Network
from loyalty.periods import month_parse
from loyalty.services.network import network_month_close


class Command(BaseCommand):
    help = (
        "Close a month of network settlement: every brand's statement is stored as it is now and never changes; "
        "refunds and cancellations after that count in the month they happen. Closing a closed month changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--month", required=True, help="YYYY-MM, a month that has ended (UTC)")
        parser.add_argument("--network", help="Only this network (its slug); every network by default.")

    def handle(self, *args, month: str, network: str | None = None, **options) -> None:
        first = month_parse(month)
        if first is None:
            raise CommandError(f"--month is a month as YYYY-MM, not {month!r}.")
        networks = Network.objects.order_by("slug")
        if network:
            networks = networks.filter(slug=network)
            if not networks.exists():
                raise CommandError(f"No network with the slug {network!r}.")
        for item in networks:
            try:
                settlement = network_month_close(network=item, month=first)
            except ApplicationError as error:
                raise CommandError(error.message) from None
            self.stdout.write(f"{item.slug} {month}: closed {settlement.closed_at:%Y-%m-%d %H:%M} UTC")
            for slug, statement in settlement.statements.items():
                self.stdout.write(
                    f"  {slug:<20} issued {statement['issued']:>10}  redeemed {statement['redeemed']:>10}  "
                    f"net {statement['net_amount']:>10} {statement['currency']}"
                )
            if options["verbosity"] > 1:
                self.stdout.write(json.dumps(settlement.statements, indent=2))
