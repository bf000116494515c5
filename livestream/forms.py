"""Partner-portal form fields: staff paste a YouTube address and type a length as they read it, or paste
addresses to import from YouTube."""

from __future__ import annotations

from django import forms
from unfold.widgets import UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from livestream.models import PlaylistItem
from livestream.youtube import Source, format_duration, parse_duration, parse_sources, parse_video_id


class YouTubeVideoField(forms.CharField):
    """Accepts an 11-character id or a YouTube address (watch?v=, youtu.be/, /embed/, /shorts/); cleans to the id."""

    def __init__(self, **kwargs) -> None:
        kwargs["max_length"] = 500  # a pasted address is longer than the 11-character id it holds
        kwargs.setdefault("widget", UnfoldAdminTextInputWidget(attrs={"placeholder": "https://youtu.be/…"}))
        super().__init__(**kwargs)

    def clean(self, value: str) -> str:
        return parse_video_id(super().clean(value))


class DurationSecondsField(forms.CharField):
    """Whole seconds from "213" or "3:33"."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("widget", UnfoldAdminTextInputWidget(attrs={"placeholder": "3:33"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return format_duration(value) if isinstance(value, int) else value

    def clean(self, value: str) -> int:
        return parse_duration(super().clean(value))


class PlaylistItemForm(forms.ModelForm):
    video_id = YouTubeVideoField(label="YouTube video", help_text="Paste the video's address or its id.")
    duration_seconds = DurationSecondsField(label="Duration", help_text="3:33 or 213 (seconds).")

    class Meta:
        model = PlaylistItem
        fields = ["video_id", "title", "duration_seconds", "enabled", "order"]
        help_texts = {"order": "Drag the rows, or type positions. Left blank: at the end."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            # A new video goes to the end of the playlist unless staff say otherwise (not to the top, as the
            # model default 0 would put it).
            self.initial["order"] = None


class YouTubeImportForm(forms.Form):
    """The portal's "Import from YouTube": addresses or ids, one per line; cleans to youtube.Source's."""

    sources = forms.CharField(
        label="YouTube playlists or videos",
        max_length=20_000,
        widget=UnfoldAdminTextareaWidget(
            attrs={"rows": 6, "placeholder": "https://www.youtube.com/playlist?list=PL…\nhttps://youtu.be/…"}
        ),
        help_text="One per line: a playlist's address (its videos are added in its order), a video's address "
        "(watch?v=, youtu.be/, /shorts/, /embed/) or an id. You see what would be added before anything is.",
    )

    def clean_sources(self) -> list[Source]:
        return parse_sources(self.cleaned_data["sources"])
