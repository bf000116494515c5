"""Balance rows are rewritten by every posting: leave room on each page (fillfactor 70) so that PostgreSQL
can update them in place (HOT updates: no new index entries), instead of moving each new version to
another page. Applies to pages written from now on; VACUUM FULL rewrites the old ones."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_entries_checked_per_statement")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE ledger_balance SET (fillfactor = 70)", "ALTER TABLE ledger_balance RESET (fillfactor)"
        )
    ]
