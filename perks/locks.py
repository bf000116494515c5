"""Row locks of the perks app. The order, everywhere: the membership rows (loyalty.locks; a cancellation
takes the membership's Redis lock before, a redemption does not) -> the redemption row -> the perk rows
(a redemption locks them with SELECT ... FOR NO KEY UPDATE before deciding on their stock, a
cancellation by its stock update) -> the ledger's balance rows. Redemptions and cancellations of the
same perk both touch the perk row before the ledger, so they cannot deadlock.
"""

from __future__ import annotations

from perks.models import Redemption


def redemption_lock_row(redemption_id: int) -> Redemption:
    return Redemption.objects.select_for_update(of=("self",)).select_related("perk", "membership").get(pk=redemption_id)
