"""The name a brand knows a member by lives on the membership, not on the member shared by every brand.

Memberships of members who joined a club themselves (they have a login) take the member's name, which
they gave when signing up; those a till made stay blank: a till never sends a name, and copying one
given to another brand is exactly the leak this closes.
"""

from django.db import migrations, models

FILL = """
    UPDATE loyalty_membership AS ms SET name = m.name
      FROM loyalty_member AS m
     WHERE ms.member_id = m.id AND m.user_id IS NOT NULL AND ms.name = ''
"""


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0008_user_email_verified_at")]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="name",
            field=models.CharField(blank=True, max_length=120, default=""),
            preserve_default=False,
        ),
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop),
    ]
