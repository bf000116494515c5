"""Memberships without a tier get their brand's entry tier (the one that asks for no points), as new
memberships now do on joining."""

from django.db import migrations

FILL = """
    UPDATE loyalty_membership AS m
       SET tier_id = (SELECT t.id FROM loyalty_tier AS t
                       WHERE t.brand_id = m.brand_id AND t.threshold = 0 ORDER BY t.rank LIMIT 1)
     WHERE m.tier_id IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0006_event_ledger_transaction_unconstrained")]

    operations = [migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop)]
