"""Row locks of the perks app. Callers hold the membership's locks first (loyalty.locks order):
membership Redis lock -> membership row -> redemption row / perk stock (conditional update) -> ledger balance rows.
"""

from __future__ import annotations

from perks.models import Redemption


def redemption_lock_row(redemption_id: int) -> Redemption:
    return Redemption.objects.select_for_update(of=("self",)).select_related("perk", "membership").get(pk=redemption_id)
