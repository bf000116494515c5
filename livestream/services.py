"""Writes of the livestream: publish a playlist, issue a viewing lease, record a heartbeat, credit a minute.

Honest watch minutes (the exact rules; M = settings.LIVESTREAM_MINUTE_SECONDS, 60 in production):

- A page holds a signed viewing lease. A member has at most one live lease (kept in Redis): opening the
  TV page in a new tab or on another device takes over, and the old page is told it stopped earning
  (409 `lease_superseded`). YouTube's own rule is the anchor: many devices, windows or tabs playing the
  same video do not count as more watching.
- The page sends a heartbeat every M/2 seconds. A heartbeat is *good* when the player is playing, the
  page is visible, and the video and position are the scheduled ones: the reported video is on air
  within ±T of the server's now, and `item start + position` is within T of now, where
  T = max(2 s, 10 s x M/60).
- Time counts only between two consecutive heartbeats of the same live lease, both good, at most
  0.75 x M apart, measured on the server's clock (livestream.clock), never the client's. Every heartbeat
  moves the lease's "previous heartbeat" forward, so the counted time of a lease is at most the wall-clock
  time it was open, however often a page sends.
- Counted time accumulates per lease in Redis (atomically, livestream.leases); each whole M seconds is
  one watch minute. Its number is the member's per-brand-day minute counter, and the minute is
  recorded as a pending `watch_minute` event through loyalty's `events_record`, keyed
  `watch:<membership>:<day>:<n>`, so a retried request or a second device never records the same minute
  twice; loyalty's event processor credits it in its next batch.
- Points come from the brand's `watch_minute` earn rule (points per minute, `cap_per_day` the daily
  allotment in minutes, counted in the brand's day). A heartbeat once the day's allotment is reached is
  a 422 `cap_reached`; loyalty's cap check under the membership row lock is the final fence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from config.errors import ApplicationError
from livestream import clock, leases, locks, selectors
from livestream.models import Channel, ScheduleEpoch
from livestream.schedule import next_epoch, slot_at, slots_overlapping
from livestream.selectors import WATCH_MINUTE, WatchSummary
from loyalty.models import Membership
from loyalty.services.ingest import events_record

# --- errors: the API's error shape, with codes the page acts on ------------------------------------------


class NotAuthenticatedError(ApplicationError):
    status_code = 403
    code = "not_authenticated"


class NotAMemberError(ApplicationError):
    status_code = 403
    code = "not_a_member"


class LeaseInvalidError(ApplicationError):
    status_code = 403
    code = "lease_invalid"


class LeaseExpiredError(ApplicationError):
    status_code = 403
    code = "lease_expired"


class LeaseSupersededError(ApplicationError):
    status_code = 409
    code = "lease_superseded"


class CapReachedError(ApplicationError):
    code = "cap_reached"


# --- timing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Every duration of the accrual rules, scaled from one setting so that tests can compress time."""

    minute: float
    heartbeat: float
    max_gap: float
    tolerance: float

    @classmethod
    def current(cls) -> Timing:
        minute = float(settings.LIVESTREAM_MINUTE_SECONDS)
        # 30 s / 45 s / 10 s for a 60 s minute. The tolerance never drops below 2 s: a player that is
        # corrected when more than 2 s off must never be refused for being 2 s off.
        return cls(minute=minute, heartbeat=minute / 2, max_gap=minute * 0.75, tolerance=max(2.0, minute / 6))


# --- playlists ------------------------------------------------------------------------------------------


@transaction.atomic
def channel_schedule_publish(*, channel: Channel, now: dt.datetime | None = None) -> ScheduleEpoch | None:
    """Put the channel's current playlist (enabled items, in order) and loop setting on air.

    Never cuts the video on air: the new epoch starts when it ends, with the item that follows it (see
    schedule.continuation_start); with nothing on air it starts now, from the top. An edit that is still
    waiting for its start is replaced by this one; an edit that restores what is on air cancels it.
    Returns the new epoch, or None when nothing changed.

    Locks: the channel row, so that concurrent saves publish one after the other.
    """
    now = now or clock.now()
    channel = locks.channel_lock_row(channel.pk)
    playlist = selectors.channel_playlist(channel=channel)
    epochs = selectors.channel_epochs(channel=channel, since=now)
    latest = epochs[-1] if epochs else None
    if latest is None and not playlist:
        return None
    if latest is not None and latest.same_programme(playlist, channel.loop):
        return None
    in_force = [epoch for epoch in epochs if epoch.starts_at <= now]
    # A pending edit never took effect (its start is still ahead): this one replaces it.
    ScheduleEpoch.objects.filter(channel=channel, starts_at__gt=now).delete()
    if in_force and in_force[-1].same_programme(playlist, channel.loop):
        return None
    epoch = next_epoch(slot_at(in_force, now), playlist, channel.loop, now)
    return ScheduleEpoch.objects.create(
        channel=channel,
        starts_at=epoch.starts_at,
        playlist=[
            {"id": item.item_id, "video_id": item.video_id, "title": item.title, "duration": item.duration}
            for item in epoch.playlist
        ],
        start_index=epoch.start,
        loop=epoch.loop,
    )


# --- leases ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseGrant:
    token: str
    claims: leases.LeaseClaims
    summary: WatchSummary
    timing: Timing


def _require_member(membership: Membership | None, channel: Channel) -> Membership:
    if membership is None or membership.brand_id != channel.brand_id:
        raise NotAMemberError(message=f"Join the {channel.brand.name} fan club to earn points by watching.")
    if membership.status != Membership.Status.ACTIVE:
        raise NotAMemberError(message="Your membership of this fan club is suspended: watching earns nothing.")
    return membership


def lease_issue(*, channel: Channel, membership: Membership | None, now: dt.datetime | None = None) -> LeaseGrant:
    """A new viewing lease for this page, which becomes the member's only live one (takes over)."""
    now = now or clock.now()
    membership = _require_member(membership, channel)
    claims = leases.LeaseClaims(
        lease_id=leases.new_lease_id(), membership_id=membership.pk, channel_id=channel.pk, issued_at=now
    )
    leases.viewer_claim(member_id=membership.member_id, lease_id=claims.lease_id)
    return LeaseGrant(
        token=leases.token_sign(claims),
        claims=claims,
        summary=selectors.watch_summary(membership=membership, at=now),
        timing=Timing.current(),
    )


# --- heartbeats -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayerReport:
    """What the page says its player is doing. Only ever compared with the server's schedule."""

    state: str  # playing, paused, buffering, ended, unstarted, cued, error
    video_id: str
    position: float  # seconds into the video
    visible: bool


@dataclass(frozen=True)
class HeartbeatResult:
    counted: bool
    reason: str | None  # why this heartbeat did not count
    counted_seconds: float
    progress_seconds: float  # counted time toward the next minute
    minutes_completed: int
    summary: WatchSummary
    timing: Timing


def player_reason(*, channel: Channel, report: PlayerReport, now: dt.datetime, tolerance: float) -> str | None:
    """Why this player state does not count as watching the channel now, or None when it does."""
    if report.state != "playing":
        return "not_playing"
    if not report.visible:
        return "hidden"
    margin = dt.timedelta(seconds=tolerance)
    epochs = selectors.channel_epochs(channel=channel, since=now - margin)
    on_air = slots_overlapping(epochs, now - margin, now + margin)
    if not on_air:
        return "off_air"
    same_video = [slot for slot in on_air if slot.item.video_id == report.video_id]
    if not same_video:
        return "wrong_video"
    position = dt.timedelta(seconds=report.position)
    if not any(abs(slot.starts_at + position - now) <= margin for slot in same_video):
        return "off_schedule"
    return None


def heartbeat_record(
    *,
    channel: Channel,
    membership: Membership | None,
    token: str,
    report: PlayerReport,
    now: dt.datetime | None = None,
) -> HeartbeatResult:
    """Check the lease, judge the player state, count the time since the previous heartbeat and have a
    worker credit every minute completed (see the module docstring for the rules).

    Raises LeaseInvalidError, LeaseExpiredError, LeaseSupersededError, NotAMemberError, CapReachedError.
    """
    now = now or clock.now()
    timing = Timing.current()
    try:
        claims = leases.token_read(token)
    except leases.LeaseTokenError as error:
        raise LeaseInvalidError(message="This viewing lease is not valid. Reload the page.") from error
    if claims.channel_id != channel.pk:
        raise LeaseInvalidError(message="This viewing lease is for another channel.")
    membership = _require_member(membership, channel)
    if claims.membership_id != membership.pk:
        raise LeaseInvalidError(message="This viewing lease belongs to someone else.")
    if now - claims.issued_at > leases.LEASE_MAX_AGE:
        raise LeaseExpiredError(message="This viewing lease has expired: the page asks for a new one.")
    superseded = LeaseSupersededError(
        message="You are watching in another tab or on another device: this one stopped earning.",
    )
    if leases.viewer_lease_id(member_id=membership.member_id) != claims.lease_id:
        raise superseded
    summary = selectors.watch_summary(membership=membership, at=now)
    if summary.cap_reached:
        raise CapReachedError(
            message="You reached today's watch allotment. Keep watching; earning starts again tomorrow.",
            extra=summary.as_dict(),
        )
    if not summary.earning:
        return HeartbeatResult(False, summary.reason, 0.0, 0.0, 0, summary, timing)
    reason = player_reason(channel=channel, report=report, now=now, tolerance=timing.tolerance)
    day = now.astimezone(channel.brand.zone).date().isoformat()
    accrual = leases.accrue(
        member_id=membership.member_id,
        membership_id=membership.pk,
        lease_id=claims.lease_id,
        day=day,
        now_ms=clock.to_ms(now),
        good=reason is None,
        max_gap_ms=int(timing.max_gap * 1000),
        minute_ms=int(timing.minute * 1000),
    )
    if accrual.outcome == "superseded":  # taken over between the check above and the script
        raise superseded
    if accrual.minutes:
        # Recorded as pending events, keyed by the member's minute number of the brand day: a retried
        # heartbeat or a second device never records the same minute twice. The event processor
        # credits them with all other events, in batches, through the brand's watch_minute rule.
        events_record(
            brand_id=channel.brand_id,
            membership_id=membership.pk,
            type=WATCH_MINUTE,
            keys=[f"watch:{membership.pk}:{day}:{number}" for number in accrual.minute_numbers],
            occurred_at=now,
            metadata={"channel_id": channel.pk},
        )
    if accrual.minutes:  # show the new points when the worker was quick (always, with eager tasks)
        summary = selectors.watch_summary(membership=membership, at=now)
    counted = accrual.outcome == "counted"
    return HeartbeatResult(
        counted=counted,
        reason=None if counted else (reason or accrual.outcome),
        counted_seconds=accrual.counted_ms / 1000,
        progress_seconds=accrual.carry_ms / 1000,
        minutes_completed=accrual.minutes,
        summary=summary,
        timing=timing,
    )
