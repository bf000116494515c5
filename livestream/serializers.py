"""Input validation and output shapes of the livestream API."""

from __future__ import annotations

import datetime as dt

from rest_framework import serializers

from livestream import clock
from livestream.models import Channel
from livestream.schedule import Slot
from livestream.selectors import OnAir, WatchSummary
from livestream.services import HeartbeatResult, LeaseGrant, Timing

PLAYER_STATES = ["playing", "paused", "buffering", "ended", "unstarted", "cued", "error"]


class HeartbeatInputSerializer(serializers.Serializer):
    lease = serializers.CharField(max_length=2000)
    state = serializers.ChoiceField(choices=PLAYER_STATES)
    video_id = serializers.CharField(max_length=20, allow_blank=True)
    position = serializers.FloatField(min_value=0, max_value=7 * 24 * 3600)
    visible = serializers.BooleanField()


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
