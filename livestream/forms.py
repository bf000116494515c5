"""Partner-portal form fields: staff paste a YouTube address and type a length as they read it."""

from __future__ import annotations

from django import forms
from unfold.widgets import UnfoldAdminTextInputWidget

from livestream.models import PlaylistItem
from livestream.youtube import format_duration, parse_duration, parse_video_id


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
