"""Row locks of the perks app. The order, everywhere: the membership rows (loyalty.locks; a cancellation
takes the membership's Redis lock before, a redemption does not) -> the redemption row -> the perk rows
(a redemption locks them with SELECT ... FOR NO KEY UPDATE before deciding on their stock, a
cancellation by its stock update) -> the ledger's balance rows. Redemptions and cancellations of the
same perk both touch the perk row before the ledger, so they cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.db import bulk_cursor
from perks.models import Perk, Redemption

# A scan of the perk table alone: a locking join (with unnest or a CTE) can lose rows that were updated
# meanwhile when PostgreSQL re-checks them (see loyalty.locks.memberships_lock_rows_by_ref).
_STOCK_SQL = f"""
    SELECT id, stock FROM {Perk._meta.db_table} WHERE id = ANY(%b::bigint[]) ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608 - only the table name is formatted in


def redemption_lock_row(redemption_id: int) -> Redemption:
    return Redemption.objects.select_for_update(of=("self",)).select_related("perk", "membership").get(pk=redemption_id)


def perks_lock_stock(perk_ids: Iterable[int]) -> dict[int, int | None]:
    """The perks' rows locked (in id order) until the end of the current transaction: perk id -> its
    stock as it is now (None: unlimited). NO KEY: redemptions inserted meanwhile may still reference it."""
    with bulk_cursor() as cursor:
        cursor.execute(_STOCK_SQL, [sorted(set(perk_ids))], prepare=True)
        return dict(cursor.fetchall())
