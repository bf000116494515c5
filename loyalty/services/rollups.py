"""Rebuilding a brand's economics rollups from the ledger and the events.

The posting path keeps the rollups (loyalty.signals.memberships_roll_up, the processor's events write) in
the postings' own transactions, so they are always in step from the moment they exist. This rebuilds
them from scratch: for a database whose history predates them, and as a check (a rebuild must give the
same figures as the incremental path, tests/loyalty/test_rollups_rebuild.py).

It locks the rollup tables (EXCLUSIVE: reads go on, every posting's rollup statement waits) for the
length of a brand's rebuild, so no posting is counted twice or lost while it runs: a posting whose
rollup statement ran before the lock has committed by the time the lock is granted (its entries are
then read here), and one that waits for the lock commits after the rebuild, adding to the new rows.

What the incremental path knows and this cannot: the tier a member held when points moved. A rebuild
takes it from the event (earns and refunds record the tier they were processed at), else the member's
tier now.
"""

from __future__ import annotations

from django.db import connection, transaction

from ledger.models import Account, Entry
from ledger.models import Transaction as LedgerTransaction
from loyalty.models import Brand, DailyEvents, DailyPoints, Event, Membership, MemberWeek, Tier, WeeklyActive

_TABLES = [model._meta.db_table for model in (DailyPoints, DailyEvents, MemberWeek, WeeklyActive)]

# Each entry on one of the brand's own accounts, with the member leg of its transaction and the tier.
_MOVES = f"""
    SELECT e.amount, a.kind AS account_kind, t.created_at AT TIME ZONE %(tz)s AS local, t.metadata,
           o.metadata AS original_metadata, mem.id AS membership_id,
           COALESCE(NULLIF(ev.tier_name, ''), tr.name, '') AS tier_name
      FROM {Entry._meta.db_table} e
      JOIN {Account._meta.db_table} a ON a.id = e.account_id
      JOIN {LedgerTransaction._meta.db_table} t ON t.id = e.transaction_id
      LEFT JOIN {LedgerTransaction._meta.db_table} o ON o.id = t.reverses_id
      LEFT JOIN LATERAL (
            SELECT m.id, m.tier_id
              FROM {Entry._meta.db_table} me
              JOIN {Membership._meta.db_table} m ON m.wallet_id = me.account_id OR m.pending_wallet_id = me.account_id
             WHERE me.transaction_id = t.id
             LIMIT 1
      ) mem ON true
      LEFT JOIN {Tier._meta.db_table} tr ON tr.id = mem.tier_id
      LEFT JOIN {Event._meta.db_table} ev ON ev.ledger_transaction_id = t.id AND ev.type IN ('purchase', 'refund')
     WHERE e.account_id = ANY(%(accounts)s)
"""  # noqa: S608 - only table names are formatted in

_KIND = """CASE
    WHEN account_kind = 'issuance' AND amount < 0 THEN 'issued'
    WHEN account_kind = 'issuance' THEN 'refunded'
    WHEN account_kind = 'redemptions' AND amount > 0 THEN 'redeemed'
    WHEN account_kind = 'redemptions' THEN 'cancelled'
    WHEN account_kind = 'expired' THEN 'expired'
    ELSE 'adjusted' END"""

_POINTS_SQL = f"""
    INSERT INTO {DailyPoints._meta.db_table} (brand_id, day, tier_name, kind, shard, points, value, transactions)
    SELECT %(brand)s, local::date, tier_name, kind, 0,
           sum(CASE WHEN kind IN ('refunded', 'redeemed', 'expired') THEN amount ELSE -amount END),
           COALESCE(sum(CASE kind WHEN 'redeemed' THEN (metadata->>'value')::numeric
                                  WHEN 'cancelled' THEN (original_metadata->>'value')::numeric END), 0),
           count(*)
      FROM (SELECT *, {_KIND} AS kind FROM ({_MOVES}) moves) k
     GROUP BY 2, 3, 4
"""  # noqa: S608 - only table names and SQL fragments of this module are formatted in

_WEEKS_SQL = f"""
    WITH weeks AS (
        INSERT INTO {MemberWeek._meta.db_table} (membership_id, week)
        SELECT DISTINCT membership_id, date_trunc('week', local)::date
          FROM ({_MOVES}) moves
         WHERE membership_id IS NOT NULL
           AND ((account_kind = 'issuance' AND amount < 0) OR (account_kind = 'redemptions' AND amount > 0))
        RETURNING week
    )
    INSERT INTO {WeeklyActive._meta.db_table} (brand_id, week, shard, members)
    SELECT %(brand)s, week, 0, count(*) FROM weeks GROUP BY week
"""  # noqa: S608 - only table names and SQL fragments of this module are formatted in

_EVENTS_SQL = f"""
    INSERT INTO {DailyEvents._meta.db_table} (brand_id, day, type, status, reason, tier_name, events, amount, points)
    SELECT brand_id, (processed_at AT TIME ZONE %(tz)s)::date, type, status, reason, tier_name, count(*),
           COALESCE(sum(amount), 0), sum(points)
      FROM {Event._meta.db_table}
     WHERE brand_id = %(brand)s AND status <> 'pending' AND processed_at IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5, 6
"""  # noqa: S608 - only table names are formatted in


def economics_rollups_rebuild(*, brand: Brand) -> dict[str, int]:
    """Replace the brand's economics rollups with what its ledger entries and events say. Returns the rows
    written per table."""
    codes = [f"brand:{brand.pk}:{kind}" for kind in ("issuance", "redemptions", "expired", "adjustments")]
    accounts = list(Account.objects.filter(code__in=codes).values_list("pk", flat=True))
    params = {"brand": brand.pk, "tz": brand.timezone, "accounts": accounts}
    written = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(_TABLES)} IN EXCLUSIVE MODE")
        for model in (DailyPoints, DailyEvents, WeeklyActive):
            model.objects.filter(brand=brand).delete()
        MemberWeek.objects.filter(membership__brand=brand).delete()
        for name, sql in (("points", _POINTS_SQL), ("weeks", _WEEKS_SQL), ("events", _EVENTS_SQL)):
            cursor.execute(sql, params)
            written[name] = cursor.rowcount
    return written
