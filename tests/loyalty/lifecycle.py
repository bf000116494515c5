"""Helpers for tests of the points lifecycle: a calendar to travel, purchases, spends and the daily job."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import time_machine
from django.core.management import call_command

from loyalty.models import Brand, Event, Membership
from loyalty.selectors import membership_balance, membership_pending
from perks.services import perk_redeem
from tests.loyalty.events import accept, process
from tests.perks.factories import PerkFactory

EMAIL = "fan@example.com"
MEMBER = {"email": EMAIL}


def on(day: str, hour: int = 20):
    """Travel to `day` (YYYY-MM-DD) at `hour`:00 UTC (midday in Los Angeles, the coffee brand's zone)."""
    return time_machine.travel(dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00"), tick=True)


def buy(brand: Brand, order_id: str, amount: str, member: dict = MEMBER) -> Event:
    accept(brand, {"type": "purchase", "member": member, "order_id": order_id, "amount": amount, "currency": "USD"})
    process(brand)
    return Event.objects.get(brand=brand, type="purchase", order_id=order_id)


def refund(brand: Brand, order_id: str, amount: str, member: dict = MEMBER) -> Event:
    key = f"refund-{order_id}-{uuid.uuid4().hex[:8]}"
    accept(
        brand,
        {"type": "refund", "member": member, "order_id": order_id, "amount": amount, "idempotency_key": key},
    )
    process(brand)
    return Event.objects.get(brand=brand, idempotency_key=key)


def check_in(brand: Brand, member: dict = MEMBER) -> Event:
    key = uuid.uuid4().hex
    accept(brand, {"type": "check_in", "member": member, "idempotency_key": key})
    process(brand)
    return Event.objects.get(brand=brand, idempotency_key=key)


def spend(membership: Membership, points: int):
    perk = PerkFactory(brand=membership.brand, cost=points)
    return perk_redeem(membership=membership, perk=perk, request_key=uuid.uuid4().hex)


def run_lifecycle(brand: Brand, as_of: str) -> str:
    """The daily job as it runs on `as_of` (travelling there: a day after today is refused)."""
    out = io.StringIO()
    with on(as_of):
        call_command("run_lifecycle", "--brand", brand.slug, "--as-of", as_of, stdout=out)
    return out.getvalue()


def membership_of(brand: Brand, email: str = EMAIL) -> Membership:
    return Membership.objects.select_related("brand", "tier", "wallet", "pending_wallet").get(
        brand=brand, member__email=email
    )


def balance(brand: Brand, email: str = EMAIL) -> int:
    return membership_balance(membership_of(brand, email))


def pending(brand: Brand, email: str = EMAIL) -> int:
    return membership_pending(membership_of(brand, email))


def books_clean() -> None:
    """reconcile and verify_ledger exit non-zero (SystemExit) on any difference."""
    call_command("reconcile", stdout=io.StringIO())
    call_command("verify_ledger", stdout=io.StringIO())


def expiry_set(brand: Brand, months: int | None) -> Brand:
    """Set how many months the brand's points last, as if it had always been so (the portal's save would
    make points earned before today count from today: switching expiry on is not retroactive)."""
    Brand.objects.filter(pk=brand.pk).update(points_expire_months=months)
    brand.refresh_from_db()
    return brand
