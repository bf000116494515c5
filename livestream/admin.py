"""Partner portal: a brand's TV channels and their playlists (drag rows to reorder)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.html import format_html, format_html_join
from unfold.admin import TabularInline

from livestream import clock, selectors, services
from livestream.forms import PlaylistItemForm
from livestream.models import Channel, PlaylistItem
from livestream.youtube import format_duration
from loyalty.admin_site import BrandScopedAdmin, portal_brand_ids


class PlaylistItemInline(TabularInline):
    model = PlaylistItem
    form = PlaylistItemForm
    extra = 1
    # unfold's sortable inline: drag a row to move it; the numbers are editable too (keyboard users).
    ordering_field = "order"
    fields = ["video_id", "title", "duration_seconds", "enabled", "order"]

    # Brand staff manage their channels' playlists without per-model Django permissions, like every
    # BrandScopedAdmin; the channel admin has already scoped which channel this is.
    def _is_portal_user(self, request) -> bool:
        return request.user.is_active and (request.user.is_superuser or bool(portal_brand_ids(request)))

    def has_view_permission(self, request, obj=None):
        return self._is_portal_user(request)

    def has_add_permission(self, request, obj=None):
        return self._is_portal_user(request)

    def has_change_permission(self, request, obj=None):
        return self._is_portal_user(request)

    def has_delete_permission(self, request, obj=None):
        return self._is_portal_user(request)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # Left blank, the position puts a new video at the end of the playlist (see ChannelAdmin.save_formset).
        formset.form.base_fields["order"].required = False
        return formset


@admin.register(Channel)
class ChannelAdmin(BrandScopedAdmin):
    list_display = ["name", "brand", "slug", "is_active", "loop", "videos", "on_air"]
    list_filter = ["is_active", "brand"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["schedule"]
    inlines = [PlaylistItemInline]
    fieldsets = (
        (None, {"fields": ("brand", "name", "slug", "is_active", "loop")}),
        (
            "On air",
            {
                "fields": ("schedule",),
                "description": "Every fan sees the same video at the same moment. Playlist changes go on air when "
                "the video playing now ends, continuing with the video after it.",
            },
        ),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("brand")
            .annotate(video_count=Count("items", filter=Q(items__enabled=True)))
        )

    @admin.display(description="videos", ordering="video_count")
    def videos(self, channel: Channel) -> int:
        return channel.video_count

    @admin.display(description="on air now")
    def on_air(self, channel: Channel) -> str:
        current = selectors.channel_on_air(channel=channel).current
        return current.item.title if current else "—"

    @admin.display(description="schedule")
    def schedule(self, channel: Channel) -> str:
        if channel.pk is None:
            return "Save the channel with its videos to put it on air."
        on_air = selectors.channel_on_air(channel=channel)
        if on_air.current is None:
            return "Off the air: add enabled videos (or turn on loop) and save."
        rows = [
            (
                "Now",
                f"{on_air.current.item.title} ({format_duration(on_air.current.offset)} of "
                f"{format_duration(on_air.current.item.duration)})",
            ),
            ("Next", on_air.next.item.title if on_air.next else "— (the playlist ends)"),
        ]
        if on_air.pending_change_at:
            rows.append(("Your last change", f"goes on air at {on_air.pending_change_at:%H:%M:%S} UTC"))
        return format_html(
            "<dl>{}</dl><p><a href='{}' target='_blank' style='text-decoration: underline'>Open the TV page</a></p>",
            format_html_join("", "<dt><strong>{}</strong></dt><dd>{}</dd>", rows),
            channel.get_absolute_url(),
        )

    def save_formset(self, request, form, formset, change):
        if formset.model is PlaylistItem:
            changed = formset.save(commit=False)
            services.playlist_items_save(channel=form.instance, changed=changed, deleted=formset.deleted_objects)
            return
        super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        epoch = services.channel_schedule_publish(channel=form.instance)
        if epoch is not None and epoch.starts_at > clock.now():
            messages.info(
                request,
                f"Your playlist change goes on air at {epoch.starts_at:%H:%M:%S} UTC, when the video playing now ends.",
            )
