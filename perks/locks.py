"""Row locks of the perks app. Callers hold the membership's locks first (loyalty.locks order):
membership Redis lock -> membership row -> redemption row -> perk row (stock, by conditional update)
-> the ledger's balance rows. perk_redeem and redemption_cancel both touch the perk row before the
ledger, so a redemption and a cancellation of the same perk cannot deadlock.
"""

from __future__ import annotations

from perks.models import Redemption


def redemption_lock_row(redemption_id: int) -> Redemption:
    return Redemption.objects.select_for_update(of=("self",)).select_related("perk", "membership").get(pk=redemption_id)
