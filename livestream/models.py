"""Channels, their playlists, and the schedule epochs that make a channel a broadcast.

A channel's schedule is never ticked forward by a process: it is computed (livestream.schedule) from
its epochs and the current time. An epoch is a snapshot of the playlist with the moment it went on
air; editing the playlist records a new epoch that starts when the video playing now ends, so viewers
never jump in the middle of a video and a restart loses nothing.
"""

from __future__ import annotations

from django.db import models

from livestream.youtube import VIDEO_ID_PATTERN, validate_video_id


class Channel(models.Model):
    brand = models.ForeignKey("loyalty.Brand", on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=120)
    # Unique across brands: the public API addresses a channel by its slug alone (/api/v1/live/<slug>/...).
    slug = models.SlugField(
        max_length=60, unique=True, help_text="In the TV page's address (/b/your-brand/tv/this-slug/) and the API's."
    )
    is_active = models.BooleanField("active", default=True, help_text="Inactive channels are not shown to fans.")
    loop = models.BooleanField(default=True, help_text="Start the playlist again when it ends.")
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "brand"

    class Meta:
        ordering = ["brand", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("livestream_tv_channel", args=[self.brand.slug, self.slug])


class PlaylistItem(models.Model):
    """One YouTube video of a channel's playlist. Only enabled, embeddable items are scheduled."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="items")
    video_id = models.CharField(
        "YouTube video",
        max_length=11,
        validators=[validate_video_id],
        help_text="The 11-character id, or paste the video's YouTube address.",
    )
    title = models.CharField(max_length=200)
    duration_seconds = models.PositiveIntegerField(
        "duration", help_text="Seconds, or minutes:seconds (3:33). The schedule trusts this length."
    )
    # PositiveIntegerField with an index: what unfold's sortable inlines need for drag-and-drop ordering.
    order = models.PositiveIntegerField(default=0, db_index=True)
    enabled = models.BooleanField(default=True)
    # False when YouTube said, at import, that the video's owner does not let other sites embed it: the
    # TV page could not play it, so the schedule leaves it out (as if disabled) and the portal flags it.
    embeddable = models.BooleanField(
        default=True, help_text="YouTube lets other sites play it. Not embeddable: kept, but never scheduled."
    )
    # Set when the viewers' players agreed on another length than the stored one (services.duration_report):
    # what the duration was before, and when the players' length replaced it.
    duration_corrected_from = models.PositiveIntegerField(null=True, blank=True, editable=False)
    duration_corrected_at = models.DateTimeField(null=True, blank=True, editable=False)

    brand_path = "channel__brand"

    class Meta:
        ordering = ["channel", "order", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(duration_seconds__gt=0), name="playlistitem_duration_positive"),
            models.CheckConstraint(
                condition=models.Q(video_id__regex=VIDEO_ID_PATTERN), name="playlistitem_video_id_format"
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.video_id


class ScheduleEpoch(models.Model):
    """The playlist as published at one moment: in force from `starts_at` until the next epoch starts.

    `playlist` is a snapshot (item id, video id, title, duration) so that later edits to the items do
    not rewrite what was on air; `start_index` is where in that playlist this epoch begins playing.
    """

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="epochs")
    starts_at = models.DateTimeField()
    playlist = models.JSONField(default=list)
    start_index = models.PositiveIntegerField(default=0)
    loop = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    brand_path = "channel__brand"

    class Meta:
        ordering = ["channel", "starts_at", "id"]
        indexes = [models.Index(fields=["channel", "starts_at"], name="scheduleepoch_channel_starts")]

    def __str__(self) -> str:
        return f"{self.channel} from {self.starts_at:%Y-%m-%d %H:%M:%S}"
