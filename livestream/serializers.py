"""Input validation and output shapes of the livestream API."""

from __future__ import annotations

import datetime as dt
import math

from rest_framework import serializers

from livestream import clock
from livestream.models import Channel
from livestream.schedule import Slot
from livestream.selectors import OnAir, WatchSummary
from livestream.services import HeartbeatResult, LeaseGrant, Timing

PLAYER_STATES = ["playing", "paused", "buffering", "ended", "unstarted", "cued", "error"]
_STATES = frozenset(PLAYER_STATES)
LEASE_MAX_LENGTH = 2000
VIDEO_ID_MAX_LENGTH = 20
POSITION_MAX = 7 * 24 * 3600


class HeartbeatInputSerializer(serializers.Serializer):
    lease = serializers.CharField(min_length=1, max_length=LEASE_MAX_LENGTH)
    state = serializers.ChoiceField(choices=PLAYER_STATES)
    video_id = serializers.CharField(max_length=VIDEO_ID_MAX_LENGTH, allow_blank=True)
    position = serializers.FloatField(min_value=0, max_value=POSITION_MAX)
    visible = serializers.BooleanField()


def _plain(value: object, max_length: int) -> bool:
    """A string HeartbeatInputSerializer's CharField returns unchanged (nothing to trim or refuse)."""
    return (
        type(value) is str
        and len(value) <= max_length
        and value.isascii()
        and value.isprintable()
        and value == value.strip()
    )


def heartbeat_input(data: object) -> dict:
    """The validated fields of a heartbeat (HeartbeatInputSerializer's validated_data).

    What the TV page sends (a JSON object of plain strings, a number and a boolean, all in range) is
    taken as it is: exactly what the serializer would return, for a fraction of its cost (heartbeats
    come by the thousand a second). Anything else goes through the serializer, for its answers.
    """
    fields = heartbeat_input_plain(data)
    if fields is not None:
        return fields
    serializer = HeartbeatInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def heartbeat_input_plain(data: object) -> dict | None:
    """heartbeat_input for what the TV page sends; None for anything else (the serializer's to judge)."""
    if isinstance(data, dict):
        lease, state, video_id = data.get("lease"), data.get("state"), data.get("video_id")
        position, visible = data.get("position"), data.get("visible")
        if (
            _plain(lease, LEASE_MAX_LENGTH)
            and lease
            and type(state) is str
            and state in _STATES
            and _plain(video_id, VIDEO_ID_MAX_LENGTH)
            and type(position) in (int, float)
            and math.isfinite(position)
            and 0 <= position <= POSITION_MAX
            and type(visible) is bool
        ):
            return {
                "lease": lease,
                "state": state,
                "video_id": video_id,
                "position": float(position),
                "visible": visible,
            }
    return None


def slot_out(slot: Slot | None) -> dict | None:
    if slot is None:
        return None
    return {
        "video_id": slot.item.video_id,
        "title": slot.item.title,
        "duration": slot.item.duration,
        "starts_at": clock.to_ms(slot.starts_at),
        "ends_at": clock.to_ms(slot.ends_at),
    }


def on_air_out(channel: Channel, on_air: OnAir) -> dict:
    return {
        "channel": {"slug": channel.slug, "name": channel.name, "brand": channel.brand.slug, "loop": channel.loop},
        "on_air": on_air.current is not None,
        "item": slot_out(on_air.current),
        "offset": round(on_air.current.offset, 3) if on_air.current else None,
        "next": slot_out(on_air.next),
        "server_time": clock.to_ms(on_air.at),
    }


def summary_out(summary: WatchSummary) -> dict:
    return summary.as_dict()


def timing_out(timing: Timing) -> dict:
    return {"minute_seconds": timing.minute, "heartbeat_seconds": timing.heartbeat}


def lease_out(grant: LeaseGrant) -> dict:
    return {
        "lease": grant.token,
        "lease_id": grant.claims.lease_id,
        **timing_out(grant.timing),
        **summary_out(grant.summary),
    }


def heartbeat_out(result: HeartbeatResult, now: dt.datetime) -> dict:
    return {
        "counted": result.counted,
        "reason": result.reason,
        "counted_seconds": round(result.counted_seconds, 3),
        "progress_seconds": round(result.progress_seconds, 3),
        "minutes_completed": result.minutes_completed,
        **timing_out(result.timing),
        **summary_out(result.summary),
        "server_time": clock.to_ms(now),
    }
