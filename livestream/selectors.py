"""Reads: channels, their schedule now, and what a member has earned from watching today.

Heartbeats (thousands a second) read what changes rarely from caches in this process, for at most
CACHE_SECONDS: the channel, its schedule epochs and the brand's watch_minute rule (see
livestream.services.heartbeat_record for what that means for each rule of honest watch minutes).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet, Sum

from ledger.models import Balance
from livestream import clock
from livestream.leases import SummaryFigures
from livestream.models import Channel, PlaylistItem, ScheduleEpoch
from livestream.schedule import Epoch, Item, Slot, slot_after, slot_at
from loyalty.models import AwardCounter, Brand, DailyEvents, EarnRule, Event, Member, Membership, User
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


# --- what heartbeats read, cached in this process ---------------------------------------------------

CACHE_SECONDS = 5.0
_cache_lock = threading.Lock()
_channels: dict[str, tuple[float, Channel]] = {}
_rules: dict[int, tuple[float, EarnRule | None]] = {}
_epochs: dict[int, tuple[float, dt.datetime, list[Epoch]]] = {}


def caches_clear() -> None:
    """Forget everything cached in this process (tests: every test starts from the database)."""
    with _cache_lock:
        _channels.clear()
        _rules.clear()
        _epochs.clear()


def channel_get_active_cached(*, slug: str) -> Channel | None:
    """channel_get_active, cached for CACHE_SECONDS: a deactivated channel (or brand) may still take
    heartbeats for that long. Unknown slugs are not cached (anyone can make up a slug)."""
    cached = _channels.get(slug)
    if cached is not None and time.monotonic() - cached[0] <= CACHE_SECONDS:
        return cached[1]
    channel = channel_get_active(slug=slug)
    with _cache_lock:
        if channel is None:
            _channels.pop(slug, None)
        else:
            channel.brand.zone  # noqa: B018 - resolve the timezone once, not per heartbeat
            _channels[slug] = (time.monotonic(), channel)
    return channel


def watch_rule_cached(*, brand_id: int) -> EarnRule | None:
    """The brand's watch_minute rule, cached for CACHE_SECONDS: an edit (points, allotment, enabled, window)
    reaches heartbeats within that time. Loyalty's event processor applies the rule as it is when it
    credits a minute, so no cached rule ever credits more than the rule in force allows."""
    cached = _rules.get(brand_id)
    if cached is not None and time.monotonic() - cached[0] <= CACHE_SECONDS:
        return cached[1]
    rule = watch_rule(brand=brand_id)
    with _cache_lock:
        _rules[brand_id] = (time.monotonic(), rule)
    return rule


def channel_epochs_cached(*, channel: Channel, since: dt.datetime, fresh: bool = False) -> list[Epoch]:
    """channel_epochs, cached for CACHE_SECONDS (`fresh`: read now, and cache that).

    A cached list answers any later `since`: it holds the epoch in force at the `since` it was read for and
    every later one. A playlist edit only takes effect when the video on air ends, so a list a few seconds
    old is wrong only about an edit published in those seconds that starts within the tolerance of now:
    the heartbeat reads the epochs again (`fresh`) before it refuses a player as off the air, on the wrong
    video or off schedule.
    """
    cached = _epochs.get(channel.pk)
    if not fresh and cached is not None and time.monotonic() - cached[0] <= CACHE_SECONDS and cached[1] <= since:
        return cached[2]
    read_at = time.monotonic()
    epochs = channel_epochs(channel=channel, since=since)
    with _cache_lock:
        _epochs[channel.pk] = (read_at, since, epochs)
    return epochs


def channel_playlist(*, channel: Channel) -> tuple[Item, ...]:
    """The enabled items in playlist order, as the schedule sees them: without the videos YouTube refuses
    to let the TV page embed (flagged at import), which would only stall every viewer's player."""
    items = PlaylistItem.objects.filter(channel=channel, enabled=True, embeddable=True).order_by("order", "id")
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


def watch_rule(*, brand: Brand | int) -> EarnRule | None:
    """The brand's (or brand id's) watch_minute rule, if it has one."""
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


def watch_summary_of(
    *, rule: EarnRule | None, at: dt.datetime, points_today: int, balance: int, minutes_today: int
) -> WatchSummary:
    reason = watch_rule_reason(rule, at)
    points = (rule.points or 0) if rule else 0
    cap = rule.cap_per_day if rule else None
    return WatchSummary(
        points_today=points_today,
        allotment=cap * points if cap else None,
        balance=balance,
        minutes_today=minutes_today,
        cap_per_day=cap,
        points_per_minute=points,
        earning=reason is None,
        reason=reason,
    )


def watch_summary(*, membership: Membership, at: dt.datetime | None = None) -> WatchSummary:
    at = at or clock.now()
    minutes, points_today = awarded_in_period(membership=membership, event_type=WATCH_MINUTE, period="day", now=at)
    return watch_summary_of(
        rule=watch_rule(brand=membership.brand),
        at=at,
        points_today=points_today,
        balance=membership_balance(membership),
        minutes_today=minutes,
    )


@dataclass(frozen=True)
class ViewerState:
    """One read of everything a heartbeat checks about a member, and their watch figures of the day."""

    status: str
    brand_id: int
    user_id: int | None  # the member's login (None: a member without one)
    user_active: bool
    user_password: str  # what the session's auth hash is made from: a new password logs sessions out
    figures: SummaryFigures


# Scalar subqueries rather than joins: the same index lookups, planned in a fraction of the time.
_VIEWER_STATE_SQL = """
    SELECT m.status, m.brand_id, u.id, u.is_active, u.password,
           (SELECT c.awarded FROM {counter} c WHERE c.membership_id = m.id AND c.event_type = %(type)s
                                                AND c.day = %(day)s),
           (SELECT c.points FROM {counter} c WHERE c.membership_id = m.id AND c.event_type = %(type)s
                                               AND c.day = %(day)s),
           (SELECT b.balance FROM {balance} b WHERE b.account_id = m.wallet_id)
      FROM {membership} m
      JOIN {member} p ON p.id = m.member_id
      LEFT JOIN {user} u ON u.id = p.user_id
     WHERE m.id = %(membership)s
"""


@functools.cache
def _viewer_state_sql() -> str:
    return _VIEWER_STATE_SQL.format(
        membership=Membership._meta.db_table,
        member=Member._meta.db_table,
        user=User._meta.db_table,
        counter=AwardCounter._meta.db_table,
        balance=Balance._meta.db_table,
    )


def viewer_state(*, membership_id: int, day: dt.date) -> ViewerState | None:
    """The membership, its member's login, the watch_minute points and minutes awarded on brand day `day`
    (loyalty's award counter of that day, as loyalty.selectors.awarded_in_period reads it) and the wallet
    balance (its ledger balance row): one statement, written out because building it with the ORM costs
    several times more than running it, on a path taken thousands of times a minute."""
    with connection.cursor() as cursor:
        cursor.execute(_viewer_state_sql(), {"type": WATCH_MINUTE, "day": day, "membership": membership_id})
        row = cursor.fetchone()
    if row is None:
        return None
    status, brand_id, user_id, user_active, password, awarded, points, balance = row
    return ViewerState(
        status=status,
        brand_id=brand_id,
        user_id=user_id,
        user_active=bool(user_active),
        user_password=password or "",
        figures=SummaryFigures(points=points or 0, awarded=awarded or 0, balance=balance or 0),
    )


def watch_minutes_recorded(*, membership_id: int, brand: Brand, day: dt.date) -> int:
    """The highest watch-minute number recorded for the member on brand day `day` (0: none), from the
    events' own keys (`tally:watch:<membership>:<day>:<n>`, livestream.services.watch_minutes_flush):
    what the day's minute counter in Redis is rebuilt from. Not a count: minutes lost on their way to
    PostgreSQL leave gaps, and the counter must go on after the highest number, never reuse one.

    Only events stored since the brand day began (an hour's margin) are looked at: a long-time
    watcher's history is not read, and this runs for each member's first heartbeat of every day."""
    prefix = f"{Event.INTERNAL_KEY_PREFIX}watch:{membership_id}:{day.isoformat()}:"
    day_start = dt.datetime.combine(day, dt.time(), tzinfo=brand.zone) - dt.timedelta(hours=1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT COALESCE(max(split_part(substr(idempotency_key, %s), ':', 1)::int), 0)
              FROM {Event._meta.db_table}
             WHERE brand_id = %s AND created_at >= %s AND membership_id = %s AND type = %s
               AND starts_with(idempotency_key, %s)
            """,  # noqa: S608 - only the table name is formatted in
            [len(prefix) + 1, brand.pk, day_start, membership_id, WATCH_MINUTE, prefix],
        )
        return cursor.fetchone()[0]


def watch_minutes_credited() -> list[tuple[str, int]]:
    """(brand slug, watched minutes ever credited): each minute is one watch_minute event, credited when
    awarded; added up from the DailyEvents rollups in one grouped query (GET /metrics)."""
    rows = (
        DailyEvents.objects.filter(type=WATCH_MINUTE, status=Event.Status.AWARDED)
        .values_list("brand__slug")
        .annotate(minutes=Sum("events"))
        .order_by("brand__slug")
    )
    return [(slug, int(minutes)) for slug, minutes in rows]
