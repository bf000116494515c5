"""Reads: channels, their schedule now, and what a member has earned from watching today."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet

from livestream import clock
from livestream.models import Channel, PlaylistItem, ScheduleEpoch
from livestream.schedule import Epoch, Item, Slot, slot_after, slot_at
from loyalty.models import Brand, EarnRule, Membership
from loyalty.selectors import awarded_in_period, membership_balance

WATCH_MINUTE = "watch_minute"


# --- channels ----------------------------------------------------------------------------------------


def channel_list_active(*, brand: Brand) -> QuerySet[Channel]:
    return Channel.objects.filter(brand=brand, is_active=True).order_by("id")


def channel_for_page(*, brand: Brand, slug: str | None = None) -> Channel | None:
    """The channel a brand's TV page shows: the one named, or the brand's first active channel."""
    channels = channel_list_active(brand=brand)
    return channels.filter(slug=slug).first() if slug else channels.first()


def channel_get_active(*, slug: str) -> Channel | None:
    return Channel.objects.filter(slug=slug, is_active=True, brand__is_active=True).select_related("brand").first()


def channel_playlist(*, channel: Channel) -> tuple[Item, ...]:
    """The enabled items in playlist order, as the schedule sees them."""
    items = PlaylistItem.objects.filter(channel=channel, enabled=True).order_by("order", "id")
    return tuple(
        Item(video_id=item.video_id, title=item.title, duration=item.duration_seconds, item_id=item.pk)
        for item in items
    )


# --- the schedule --------------------------------------------------------------------------------------


def epoch_from_row(row: ScheduleEpoch) -> Epoch:
    return Epoch(
        starts_at=row.starts_at,
        playlist=tuple(
            Item(video_id=i["video_id"], title=i["title"], duration=i["duration"], item_id=i.get("id"))
            for i in row.playlist
        ),
        loop=row.loop,
        start=row.start_index,
        epoch_id=row.pk,
    )


def channel_epochs(*, channel: Channel, since: dt.datetime) -> list[Epoch]:
    """The epoch in force at `since` and every later one: all the schedule needs to answer for any moment
    from `since` on (for an earlier moment it answers "off the air").

    Older epochs are history; reading only these keeps the query small however long a channel has run.
    """
    rows = ScheduleEpoch.objects.filter(channel=channel)
    in_force = rows.filter(starts_at__lte=since).order_by("-starts_at", "-id").first()
    later = list(rows.filter(starts_at__gt=since).order_by("starts_at", "id"))
    return [epoch_from_row(row) for row in ([in_force] if in_force else []) + later]


@dataclass(frozen=True)
class OnAir:
    at: dt.datetime
    current: Slot | None
    next: Slot | None
    pending_change_at: dt.datetime | None  # a published edit that waits for the item on air to end


def channel_on_air(*, channel: Channel, at: dt.datetime | None = None) -> OnAir:
    at = at or clock.now()
    epochs = channel_epochs(channel=channel, since=at)
    current = slot_at(epochs, at)
    following = slot_after(epochs, current) if current is not None else None
    pending = next((epoch.starts_at for epoch in epochs if epoch.starts_at > at), None)
    return OnAir(at=at, current=current, next=following, pending_change_at=pending)


# --- earning from watching ------------------------------------------------------------------------------


def watch_rule(*, brand: Brand) -> EarnRule | None:
    return EarnRule.objects.filter(brand=brand, event_type=WATCH_MINUTE).first()


def watch_rule_reason(rule: EarnRule | None, at: dt.datetime) -> str | None:
    """Why watching earns nothing right now (the reasons loyalty would reject the event with), or None."""
    if rule is None:
        return "no_rule"
    started = rule.active_from is None or rule.active_from <= at
    ended = rule.active_until is not None and at >= rule.active_until
    if not rule.enabled or not started or ended:
        return "rule_inactive"
    return None


@dataclass(frozen=True)
class WatchSummary:
    points_today: int
    allotment: int | None  # points a member may earn by watching per brand day; None: no daily limit
    balance: int
    minutes_today: int
    cap_per_day: int | None
    points_per_minute: int
    earning: bool  # a usable watch_minute rule exists
    reason: str | None  # why not earning

    @property
    def cap_reached(self) -> bool:
        return self.cap_per_day is not None and self.minutes_today >= self.cap_per_day

    def as_dict(self) -> dict:
        return {
            "points_today": self.points_today,
            "allotment": self.allotment,
            "balance": self.balance,
            "points_per_minute": self.points_per_minute,
            "earning": self.earning,
        }


def watch_summary(*, membership: Membership, at: dt.datetime | None = None) -> WatchSummary:
    at = at or clock.now()
    rule = watch_rule(brand=membership.brand)
    reason = watch_rule_reason(rule, at)
    points = (rule.points or 0) if rule else 0
    cap = rule.cap_per_day if rule else None
    minutes, points_today = awarded_in_period(membership=membership, event_type=WATCH_MINUTE, period="day", now=at)
    return WatchSummary(
        points_today=points_today,
        allotment=cap * points if cap else None,
        balance=membership_balance(membership),
        minutes_today=minutes,
        cap_per_day=cap,
        points_per_minute=points,
        earning=reason is None,
        reason=reason,
    )
