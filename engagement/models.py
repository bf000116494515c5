"""What fans show of themselves, and the points they earned per period: the leaderboards' own records
(Redis holds the ranking; these rows are what it is rebuilt from)."""

from __future__ import annotations

from django.db import models

from loyalty.models import Brand, Membership

ALL_TIME = "all"


class FanProfile(models.Model):
    """How a fan appears on their club's leaderboard: the name they chose (else "Fan #<id>", never an
    email), or not at all."""

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="fan_profile")
    display_name = models.CharField(max_length=40, blank=True)
    hidden = models.BooleanField(default=False, help_text="Left off the leaderboard (the fan still sees their rank).")
    updated_at = models.DateTimeField(auto_now=True)

    brand_path = "membership__brand"

    def __str__(self) -> str:
        return self.display_name or f"Fan #{self.membership_id}"


class FanScore(models.Model):
    """Points a membership earned (net of refunds) in a period: "all", an ISO week ("2026-W49") or a month
    ("2026-12") of the brand's calendar. Kept by the posting path (engagement.receivers) in the posting's
    transaction; `version` goes up with every change, so that Redis keeps the newest value whatever order
    the updates reach it in."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", db_index=False)
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+", db_index=False)
    period = models.CharField(max_length=10)
    points = models.BigIntegerField(default=0)
    reached_at = models.DateTimeField(help_text="When the points became what they are (ties: the earlier first).")
    version = models.BigIntegerField(default=1)

    class Meta:
        # One index serves both the posting path's upsert (its conflict target) and a board's rebuild (a
        # brand's period); the table leaves room in its pages (migration 0001: fillfactor 70) so that the
        # upserts' updates are HOT and touch no index at all.
        constraints = [
            models.UniqueConstraint(fields=["brand", "period", "membership"], name="fanscore_brand_period_member_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.period}: {self.points}"
