"""Partner portal: a brand's TV channels and their playlists (drag rows to reorder, or import from YouTube)."""

from __future__ import annotations

import dataclasses
import uuid

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core import signing
from django.core.cache import cache
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import TabularInline

from livestream import clock, selectors, services, youtube
from livestream.forms import PlaylistItemForm, YouTubeImportForm
from livestream.models import Channel, PlaylistItem
from livestream.youtube import format_duration
from loyalty.admin_site import BrandScopedAdmin, portal_brand_ids

# A preview can be confirmed for this long; its nonce is remembered (Redis) a little longer, so that a
# confirmation sent twice (a double click, a reload) adds the videos once.
IMPORT_PREVIEW_MAX_AGE = 3600


class PlaylistItemInline(TabularInline):
    model = PlaylistItem
    form = PlaylistItemForm
    extra = 1
    # unfold's sortable inline: drag a row to move it; the numbers are editable too (keyboard users).
    ordering_field = "order"
    fields = ["video_id", "title", "duration_seconds", "enabled", "on_youtube", "order"]
    readonly_fields = ["on_youtube"]

    @admin.display(description="on YouTube")
    def on_youtube(self, item: PlaylistItem) -> str:
        if item.pk is not None and item.duration_corrected_at is not None and item.embeddable:
            return format_html(
                "<span style='color:#b45309' title='{}'>Length corrected from {} s on {}</span>",
                "Several viewers' players reported another length than the one stored; the schedule uses theirs "
                "from the next programme on.",
                item.duration_corrected_from,
                f"{item.duration_corrected_at:%Y-%m-%d}",
            )
        if item.pk is not None and not item.embeddable:
            return format_html(
                "<span style='color:#b91c1c;font-weight:600' title='{}'>⚠ Refuses embedding: never on air</span>",
                "When it was imported, YouTube said its owner does not let other sites play it. The schedule "
                "skips it; delete it, or import it again once the owner allows embedding.",
            )
        return ""

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
            .annotate(video_count=Count("items", filter=Q(items__enabled=True, items__embeddable=True)))
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
            return "Off the air: add enabled, embeddable videos (or turn on loop) and save."
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
        refused = channel.items.filter(enabled=True, embeddable=False).count()
        if refused:
            rows.append(("Skipped", f"{refused} video(s) whose owner refuses embedding (flagged below)"))
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

    # --- Import from YouTube: paste addresses, see what would be added, confirm ------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/youtube/",
                self.admin_site.admin_view(self.youtube_import_view),
                name="livestream_channel_youtube_import",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        if youtube.import_available():
            extra_context["youtube_import_url"] = reverse(
                "admin:livestream_channel_youtube_import", args=[unquote(object_id)]
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _import_salt(channel: Channel, request) -> str:
        # A preview confirms only into the channel it was made for, by the login that made it.
        return f"livestream.youtube-import:{channel.pk}:{request.user.pk}"

    def youtube_import_view(self, request, object_id):
        """GET: the form. POST `preview`: ask YouTube, show what would be added (nothing is written). POST
        `confirm`: append the previewed videos (carried signed in the page, so YouTube is not asked twice
        and what is added is what staff saw) and publish."""
        channel = self.get_object(request, unquote(object_id))
        if channel is None or not self.has_change_permission(request, channel):
            raise Http404("No such channel.")
        if not youtube.import_available():
            raise Http404("The YouTube import is not set up (YOUTUBE_API_KEY).")
        change_url = reverse("admin:livestream_channel_change", args=[channel.pk])
        preview = payload = None
        if request.method == "POST" and "confirm" in request.POST:
            form = YouTubeImportForm(initial={"sources": request.POST.get("sources", "")})
            try:
                data = signing.loads(
                    request.POST.get("payload", ""),
                    salt=self._import_salt(channel, request),
                    max_age=IMPORT_PREVIEW_MAX_AGE,
                )
                videos = [youtube.Video(**row) for row in data["videos"]]
                nonce = str(data["nonce"])
            except (signing.BadSignature, KeyError, TypeError, ValueError):
                messages.error(request, "This preview is too old or was changed: preview the import again.")
            else:
                return self._youtube_import_confirm(request, channel, videos, nonce, change_url)
        elif request.method == "POST":
            form = YouTubeImportForm(request.POST)
            if form.is_valid():
                try:
                    preview = youtube.YouTubeClient.from_settings().preview(form.cleaned_data["sources"])
                except youtube.YouTubeError as error:
                    form.add_error("sources", error.message)
                else:
                    if preview.videos:
                        payload = signing.dumps(
                            {"nonce": uuid.uuid4().hex, "videos": [dataclasses.asdict(v) for v in preview.videos]},
                            salt=self._import_salt(channel, request),
                            compress=True,
                        )
        else:
            form = YouTubeImportForm()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import from YouTube into {channel.name}",
            "opts": self.opts,
            "original": channel,
            "channel": channel,
            "change_url": change_url,
            "form": form,
            "preview": preview,
            "payload": payload,
            "max_videos": youtube.MAX_VIDEOS,
            "flagged": sum(1 for video in preview.videos if not video.embeddable) if preview else 0,
            "total": format_duration(sum(video.duration_seconds for video in preview.videos)) if preview else "",
        }
        return TemplateResponse(request, "admin/livestream/channel_youtube_import.html", context)

    def _youtube_import_confirm(self, request, channel, videos, nonce, change_url):
        key = f"livestream:youtube-import:{nonce}"
        if not cache.add(key, 1, timeout=IMPORT_PREVIEW_MAX_AGE + 60):
            messages.warning(request, "These videos were already added (the confirmation was sent twice).")
            return redirect(change_url)
        try:
            epoch = services.playlist_videos_import(channel=channel, videos=videos)
        except Exception:
            cache.delete(key)  # nothing was added: the same preview may be confirmed again
            raise
        flagged = sum(1 for video in videos if not video.embeddable)
        self.log_change(request, channel, f"Imported {len(videos)} video(s) from YouTube.")
        text = f"Added {len(videos)} video(s) from YouTube at the end of the playlist."
        if flagged:
            text += f" {flagged} refuse embedding on other sites: they are flagged and never go on air."
        messages.success(request, text)
        if epoch is not None and epoch.starts_at > clock.now():
            messages.info(
                request,
                f"Your playlist change goes on air at {epoch.starts_at:%H:%M:%S} UTC, when the video playing now ends.",
            )
        return redirect(change_url)
