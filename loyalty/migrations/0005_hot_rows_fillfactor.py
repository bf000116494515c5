"""Rows the event processor rewrites in every batch (a membership's lifetime figures and tier, qualifying
buckets, award counters): leave room on each page (fillfactor 70) so that PostgreSQL can update them in
place (HOT updates: none of these columns is indexed), instead of adding an entry to every index of the
table for each new version. Applies to pages written from now on."""

from django.db import migrations

TABLES = ("loyalty_membership", "loyalty_qualifyingbucket", "loyalty_awardcounter")


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0004_batched_ingest")]

    operations = [
        migrations.RunSQL(
            [f"ALTER TABLE {table} SET (fillfactor = 70)" for table in TABLES],
            [f"ALTER TABLE {table} RESET (fillfactor)" for table in TABLES],
        )
    ]
