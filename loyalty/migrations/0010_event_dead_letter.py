"""Events whose processing keeps failing are counted and, past the limit, set aside (status failed)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0009_membership_name")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="attempts",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="event",
            name="last_error",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
        migrations.AlterField(
            model_name="event",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("awarded", "Awarded"),
                    ("rejected", "Rejected"),
                    ("failed", "Failed (set aside)"),
                ],
                db_default="pending",
                default="pending",
                max_length=10,
            ),
        ),
    ]
