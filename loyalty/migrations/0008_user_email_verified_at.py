"""A login's email is verified before it is linked to a member. Logins made before verification existed
are taken as verified: they have been signing in with that address, and locking every existing fan out
of their clubs would be worse than the risk this closes for new sign-ups."""

from django.db import migrations, models

GRANDFATHER = "UPDATE loyalty_user SET email_verified_at = date_joined WHERE email_verified_at IS NULL"


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0007_memberships_base_tier")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_verified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(GRANDFATHER, reverse_sql=migrations.RunSQL.noop),
    ]
