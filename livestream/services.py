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
  twice; loyalty's event processor credits it in its next batch. (The heartbeat queues the minute in
  Redis; a flush records all minutes queued within MINUTES_FLUSH_SECONDS in one transaction.)
- Points come from the brand's `watch_minute` earn rule (points per minute, `cap_per_day` the daily
  allotment in minutes, counted in the brand's day). A heartbeat once the day's allotment is reached is
  a 422 `cap_reached`; loyalty's cap check under the membership row lock is the final fence.

How a heartbeat stays cheap (thousands a second) without bending any rule above:

- Who: the signed lease names its membership, member, channel, login (user id) and session (a keyed
  digest of the session key). A heartbeat sent with the cookie of the session the lease was issued to
  needs neither the session nor the login loaded; with another session of the same login it loads the
  session (Redis) and compares user ids; anything else (no login, another login, a lease signed before
  these claims) takes the exact path: Django's full session check and the membership, which refuses
  with the right reason. The session (still there, same login, auth hash still the login's: a new
  password or a logout ends it), the login (active) and the membership (active, of this brand, still
  this login's) are checked, in one statement to PostgreSQL, on a lease's first heartbeat, at least
  every MEMBER_CHECK_SECONDS after, and before every minute is recorded. So no minute is ever recorded
  for a member suspended or logged out at that moment, and a suspended member's (or logged-out
  session's) page is refused within MEMBER_CHECK_SECONDS (loyalty's processor also rejects minutes of an
  inactive membership). A check that fails also drops the time the lease counted since its last good
  check: time is only ever counted for a member who passed a check at most MEMBER_CHECK_SECONDS before.
- The honest-watching rules (live lease, server-timed gaps, both heartbeats good, carry, minute
  numbers) are decided in Redis by one Lua script per heartbeat, never from a cache, and so is the daily
  allotment: it is checked against the minutes *recorded* today, which are never fewer than the minutes
  awarded, so a cache can only make a member stop earlier, never later.
- The channel, its schedule epochs and the watch_minute rule are cached in this process for
  selectors.CACHE_SECONDS. A judgement that refuses a player (off the air, wrong video, off schedule) is
  made again from epochs read just then before it stands. A rule edit reaches heartbeats within
  CACHE_SECONDS; the processor credits each minute by the rule in force when it processes it.
- A completed minute is queued in Redis (after the member's check) and recorded by a flush within
  MINUTES_FLUSH_SECONDS, together with every minute queued meanwhile: one transaction, one commit and
  one wake of loyalty's worker for all of them, instead of an INSERT, a commit and a wake per minute on
  the heartbeat's path (a page completes a minute every other heartbeat).
- The figures answered (points today, balance) are what PostgreSQL said at the last check, kept in
  Redis per member and day: read at every check, so at least whenever a minute is completed (before
  it is recorded: the worker credits it asynchronously, so the page shows a minute's points at a later
  heartbeat, typically with the next minute).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django_redis import get_redis_connection

from config.errors import ApplicationError
from livestream import clock, leases, locks, selectors
from livestream.models import Channel, PlaylistItem, ScheduleEpoch
from livestream.schedule import next_epoch, slot_at, slots_overlapping
from livestream.selectors import WATCH_MINUTE, WatchSummary
from livestream.youtube import Video
from loyalty.models import Membership
from loyalty.services.ingest import events_record

logger = logging.getLogger(__name__)

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


class WatchThrottledError(ApplicationError):
    status_code = 429
    code = "throttled"
    transient = True


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
def playlist_items_save(
    *, channel: Channel, changed: Sequence[PlaylistItem], deleted: Sequence[PlaylistItem] = ()
) -> None:
    """Save staff's edits of a channel's playlist: `changed` items (new or edited), `deleted` ones.

    An item without a position (None) goes at the end, after every item the channel keeps. Locks the
    channel row first, as publishing does, so that two staff adding videos at once get one position
    each, one after the other, instead of both reading the same "last position" and sharing it.
    Publishing (channel_schedule_publish) is the caller's next step, in the same transaction.
    """
    locks.channel_lock_row(channel.pk)
    deleted_ids = [item.pk for item in deleted if item.pk is not None]
    changed_ids = [item.pk for item in changed if item.pk is not None]
    untouched = PlaylistItem.objects.filter(channel=channel).exclude(pk__in=deleted_ids + changed_ids)
    positions = [untouched.aggregate(last=Max("order"))["last"]]
    positions += [item.order for item in changed if item.order is not None]
    position = max((p for p in positions if p is not None), default=-1)
    for item in changed:
        item.channel = channel
        if item.order is None:
            position += 1
            item.order = position
        item.save()
    PlaylistItem.objects.filter(pk__in=deleted_ids).delete()


@transaction.atomic
def playlist_videos_import(*, channel: Channel, videos: Sequence[Video]) -> ScheduleEpoch | None:
    """Append `videos` (a YouTube import's preview, livestream.youtube) to the channel's playlist in their
    order, and publish it (returns the new epoch, as channel_schedule_publish). A video YouTube will not
    let other sites embed is added flagged (embeddable=False): the portal shows it, the schedule skips it.
    The videos' ids and lengths were checked by the import; the table's constraints are the last fence."""
    items = [
        PlaylistItem(
            channel=channel,
            video_id=video.video_id,
            title=video.title,
            duration_seconds=video.duration_seconds,
            embeddable=video.embeddable,
            order=None,
        )
        for video in videos
    ]
    playlist_items_save(channel=channel, changed=items)
    return channel_schedule_publish(channel=channel)


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


def lease_issue(
    *,
    channel: Channel,
    membership: Membership | None,
    user_id: int | None = None,
    session_key: str | None = None,
    address: str | None = None,
    now: dt.datetime | None = None,
) -> LeaseGrant:
    """A new viewing lease for this page, which becomes the member's only live one (takes over).

    `user_id`: the login asking (default: the member's login); `session_key`: its session, whose cookie
    lets heartbeats skip loading the session (see heartbeat_record); `address`: the client's, for the
    per-address limit (LIVESTREAM_LEASES_PER_MEMBER / _PER_ADDRESS per watch minute; None: a caller that
    is not a client over HTTP, counted per member only).
    """
    now = now or clock.now()
    membership = _require_member(membership, channel)
    user = membership.member.user
    if user is None or not user.email_verified:
        raise NotAMemberError(message="Confirm your email address to earn points by watching.")
    window_ms, now_ms = int(Timing.current().minute * 1000), clock.to_ms(now)
    if leases.rate_count(
        what="lease", who=f"member:{membership.member_id}", window_ms=window_ms, now_ms=now_ms
    ) > settings.LIVESTREAM_LEASES_PER_MEMBER or (
        address is not None
        and leases.rate_count(what="lease", who=f"address:{address}", window_ms=window_ms, now_ms=now_ms)
        > settings.LIVESTREAM_LEASES_PER_ADDRESS
    ):
        raise WatchThrottledError(message="Too many pages opened at once: wait a minute, then reload this one.")
    claims = leases.LeaseClaims(
        lease_id=leases.new_lease_id(),
        membership_id=membership.pk,
        channel_id=channel.pk,
        issued_at=now,
        user_id=user_id if user_id is not None else membership.member.user_id,
        member_id=membership.member_id,
        session=leases.session_digest(session_key) if session_key else None,
    )
    leases.viewer_claim(member_id=membership.member_id, lease_id=claims.lease_id)
    return LeaseGrant(
        token=leases.token_sign(claims),
        claims=claims,
        summary=selectors.watch_summary(membership=membership, at=now),
        timing=Timing.current(),
    )


# --- heartbeats -----------------------------------------------------------------------------------------

# How long a heartbeat trusts the last check of the member, the login and the session in PostgreSQL
# (every minute is checked right before it is recorded, regardless): how soon a suspended member's page
# is refused. A page sends a heartbeat every 30 s and records a minute every other one: with 45 s, those
# checks are all it ever needs, while 30 s or less would have every heartbeat read PostgreSQL.
MEMBER_CHECK_SECONDS = 45.0
# Each lease checks a little sooner than that, by a fixed amount of its own (from its random id): pages
# opened together (after a deploy or a network blip) then do not all check in the same second.
MEMBER_CHECK_SPREAD = 0.25


def member_check_ms(lease_id: str) -> int:
    """This lease's interval between checks: between (1 - MEMBER_CHECK_SPREAD) and 1 x MEMBER_CHECK_SECONDS."""
    try:
        share = int(lease_id[:4], 16) / 0xFFFF
    except ValueError:
        share = 1.0
    return int(MEMBER_CHECK_SECONDS * 1000 * (1 - MEMBER_CHECK_SPREAD * share))


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


class Viewer(Protocol):
    """Who sends a heartbeat: a session, looked at no more than needed (livestream.api.SessionViewer)."""

    def issued_to(self, claims: leases.LeaseClaims) -> bool:
        """Is this the session the lease was issued to? (Its cookie against the lease's digest: no I/O.)"""

    @property
    def address(self) -> str:
        """The client's address (config.http.client_ip), for the per-address heartbeat limit."""

    @property
    def user_id(self) -> int | None:
        """The session's login id (loads the session, not the login)."""

    def session_valid(self, *, password: str) -> bool:
        """Does the session still hold for a login whose password (hash) is this? (Django's session check.)"""

    def membership(self, channel: Channel) -> Membership | None:
        """The exact check: the login as Django's authentication loads it (NotAuthenticatedError when the
        session no longer holds) and its membership of the channel's brand."""


def player_reason(
    *, channel: Channel, report: PlayerReport, now: dt.datetime, tolerance: float, fresh: bool = True
) -> str | None:
    """Why this player state does not count as watching the channel now, or None when it does.

    `fresh=False` judges from the epochs cached in this process; a refusal is then judged again from
    epochs read now, so a cache can delay a refusal by a few seconds but never make one."""
    if report.state != "playing":
        return "not_playing"
    if not report.visible:
        return "hidden"
    margin = dt.timedelta(seconds=tolerance)
    epochs = selectors.channel_epochs_cached(channel=channel, since=now - margin, fresh=fresh)
    on_air = slots_overlapping(epochs, now - margin, now + margin)
    if not on_air:
        reason = "off_air"
    else:
        same_video = [slot for slot in on_air if slot.item.video_id == report.video_id]
        position = dt.timedelta(seconds=report.position)
        if not same_video:
            reason = "wrong_video"
        elif not any(abs(slot.starts_at + position - now) <= margin for slot in same_video):
            reason = "off_schedule"
        else:
            return None
    if not fresh:
        return player_reason(channel=channel, report=report, now=now, tolerance=tolerance, fresh=True)
    return reason


def _lease_claims(token: str, channel: Channel) -> leases.LeaseClaims:
    try:
        claims = leases.token_read(token)
    except leases.LeaseTokenError as error:
        raise LeaseInvalidError(message="This viewing lease is not valid. Reload the page.") from error
    if claims.channel_id != channel.pk:
        raise LeaseInvalidError(message="This viewing lease is for another channel.")
    return claims


def _exact_member(viewer: Viewer, channel: Channel, claims: leases.LeaseClaims) -> Membership:
    """The slow, exact checks (the login as Django loads it, its membership, the lease's owner), which
    refuse with the right reason."""
    membership = _require_member(viewer.membership(channel), channel)
    if claims.membership_id != membership.pk:
        raise LeaseInvalidError(message="This viewing lease belongs to someone else.")
    return membership


def _state_holds(state: selectors.ViewerState | None, viewer: Viewer, channel: Channel) -> bool:
    return (
        state is not None
        and state.status == Membership.Status.ACTIVE
        and state.brand_id == channel.brand_id
        and state.user_id == viewer.user_id
        and state.user_active
        and viewer.session_valid(password=state.user_password)
    )


def heartbeat_record(
    *,
    channel: Channel,
    viewer: Viewer,
    token: str,
    report: PlayerReport,
    now: dt.datetime | None = None,
) -> HeartbeatResult:
    """Check the lease, judge the player state, count the time since the previous heartbeat and have a
    worker credit every minute completed (see the module docstring for the rules and what is cached).

    Typically one round trip to Redis and none to PostgreSQL; PostgreSQL is read when the member is due a
    check or a minute is completed (one statement; the minute is then queued for watch_minutes_flush).

    Raises LeaseInvalidError, LeaseExpiredError, LeaseSupersededError, NotAuthenticatedError,
    NotAMemberError, CapReachedError.
    """
    now = now or clock.now()
    timing = Timing.current()
    claims = _lease_claims(token, channel)
    checked = False
    member_id = claims.member_id
    if (
        member_id is None
        or claims.user_id is None
        or (not viewer.issued_to(claims) and viewer.user_id != claims.user_id)
    ):
        # Another login's lease, a visitor or non-member, or a token signed before these claims.
        member_id = _exact_member(viewer, channel, claims).member_id
        checked = True
    if now - claims.issued_at > leases.LEASE_MAX_AGE:
        raise LeaseExpiredError(message="This viewing lease has expired: the page asks for a new one.")

    rule = selectors.watch_rule_cached(brand_id=channel.brand_id)
    rule_reason = selectors.watch_rule_reason(rule, now)
    reason = None
    if rule_reason is None:
        reason = player_reason(channel=channel, report=report, now=now, tolerance=timing.tolerance, fresh=False)
    day = now.astimezone(channel.brand.zone).date()
    now_ms = clock.to_ms(now)

    def beat() -> leases.Accrual:
        return leases.heartbeat(
            member_id=member_id,
            membership_id=claims.membership_id,
            lease_id=claims.lease_id,
            day=day.isoformat(),
            now_ms=now_ms,
            accrue=rule_reason is None,
            good=reason is None,
            max_gap_ms=int(timing.max_gap * 1000),
            minute_ms=int(timing.minute * 1000),
            allotted_minutes=rule.cap_per_day if rule is not None else None,
            check_ms=member_check_ms(claims.lease_id),
            address=viewer.address,
            rate_window_ms=int(timing.minute * 1000),
            per_member=settings.LIVESTREAM_HEARTBEATS_PER_MEMBER,
            per_address=settings.LIVESTREAM_HEARTBEATS_PER_ADDRESS,
        )

    accrual = beat()
    if accrual.outcome == "counter_missing":
        # The member's first heartbeat of the day, or Redis lost the counter: on from the last minute
        # PostgreSQL has (re-numbering recorded minutes would credit nothing: their keys are taken).
        recorded = selectors.watch_minutes_recorded(membership_id=claims.membership_id, brand=channel.brand, day=day)
        leases.minutes_counter_restore(membership_id=claims.membership_id, day=day.isoformat(), recorded=recorded)
        accrual = beat()
    if accrual.outcome == "throttled":
        raise WatchThrottledError(message="Too many heartbeats: this page is sending more than a player does.")
    if accrual.outcome == "superseded":
        raise LeaseSupersededError(
            message="You are watching in another tab or on another device: this one stopped earning.",
        )

    figures = accrual.summary
    if accrual.check_due or accrual.minutes or figures is None:
        try:
            state = selectors.viewer_state(membership_id=claims.membership_id, day=day)
            if not checked and not _state_holds(state, viewer, channel):
                _exact_member(viewer, channel, claims)  # refuses, unless it was fixed meanwhile
        except Exception:
            leases.check_failed(lease_id=claims.lease_id)
            raise
        read = state.figures if state is not None else leases.SummaryFigures(0, 0, 0)
        if read != figures:
            leases.figures_store(membership_id=claims.membership_id, day=day.isoformat(), figures=read)
        figures = read
    summary = selectors.watch_summary_of(
        rule=rule, at=now, points_today=figures.points, balance=figures.balance, minutes_today=accrual.recorded
    )
    if accrual.outcome == "cap_reached":
        raise CapReachedError(
            message="You reached today's watch allotment. Keep watching; earning starts again tomorrow.",
            extra=summary.as_dict(),
        )
    if accrual.outcome == "not_earning":
        return HeartbeatResult(False, rule_reason, 0.0, 0.0, 0, summary, timing)
    if accrual.minutes:  # the member was checked just above
        numbers = accrual.minute_numbers
        completed = leases.CompletedMinutes(
            brand_id=channel.brand_id,
            membership_id=claims.membership_id,
            channel_id=channel.pk,
            day=day.isoformat(),
            first=numbers.start,
            last=numbers.stop - 1,
            occurred_ms=now_ms,
        )
        if leases.minutes_queue(completed):
            _minutes_flush_schedule()
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


# --- recording completed minutes -------------------------------------------------------------------------

# A heartbeat queues the minutes it completed (in Redis); a flush records everything queued within this
# many seconds in one transaction: one commit and one wake of loyalty's worker for all of them, instead
# of one per minute (a page completes a minute every other heartbeat).
MINUTES_FLUSH_SECONDS = 1.0
MINUTES_FLUSH_BATCH = 2000


def _minutes_flush_schedule() -> None:
    from livestream.tasks import watch_minutes_flush_task

    try:
        watch_minutes_flush_task.apply_async(countdown=MINUTES_FLUSH_SECONDS)
    except Exception:  # the broker is away: the next minute queued tries again
        logger.warning("could not schedule the flush of watch minutes", exc_info=True)
        leases.minutes_flush_due_clear()


def watch_minutes_flush(*, limit: int = MINUTES_FLUSH_BATCH) -> int:
    """Record the minutes heartbeats completed and queued, as pending `watch_minute` events through
    loyalty's `events_record`, `limit` at a time, each batch in one transaction. Returns how many events
    were new.

    Keyed by the member's minute number of the brand day (`watch:<membership>:<day>:<n>`): a retried
    heartbeat, a second device or a flush that runs twice never records the same minute twice. The
    event processor credits them with all other events, in batches, through the brand's watch_minute
    rule. Minutes a flush took but could not record are queued again (and the task retries).
    """
    leases.minutes_flush_due_clear()  # minutes queued from now on schedule the next flush
    recorded = 0
    while taken := leases.minutes_take(limit=limit):
        try:
            with transaction.atomic():
                for minutes in taken:
                    recorded += events_record(
                        brand_id=minutes.brand_id,
                        membership_id=minutes.membership_id,
                        type=WATCH_MINUTE,
                        keys=[
                            f"watch:{minutes.membership_id}:{minutes.day}:{number}"
                            for number in range(minutes.first, minutes.last + 1)
                        ],
                        occurred_at=dt.datetime.fromtimestamp(minutes.occurred_ms / 1000, tz=dt.UTC),
                        metadata={"channel_id": minutes.channel_id},
                    )
        except Exception:
            leases.minutes_give_back(taken)
            raise
    return recorded


# --- lengths the players report ---------------------------------------------------------------------------

# A stored length is replaced once this many viewers' players agree (within the tolerance of each other)
# on another one, more than the tolerance away from it: one odd player (an advert, a half-loaded video)
# changes nothing, and the stored length is only distrusted when several say the same.
DURATION_REPORTS_NEEDED = 3
DURATION_TOLERANCE_SECONDS = 2
DURATION_REPORTS_TTL_SECONDS = 7 * 24 * 3600


class VideoNotOnChannelError(ApplicationError):
    status_code = 404
    code = "not_found"


@dataclass(frozen=True)
class DurationOutcome:
    recorded: bool  # a first report of this viewer for this video
    corrected: bool  # the item's length was replaced (a new programme was published)
    duration: int  # the length the schedule has for it now


def duration_report(
    *, channel: Channel, membership: Membership | None, token: str, video_id: str, seconds: float
) -> DurationOutcome:
    """A viewer's player says how long `video_id` is. Each viewer counts once per video (a Redis hash of
    their reports, for a week); once DURATION_REPORTS_NEEDED agree on a length more than
    DURATION_TOLERANCE_SECONDS from the stored one, the item takes their median and the channel publishes
    its programme again (from the next video on: channel_schedule_publish never cuts the one on air)."""
    membership = _require_member(membership, channel)
    if _lease_claims(token, channel).membership_id != membership.pk:
        raise LeaseInvalidError(message="This viewing lease belongs to someone else.")
    item = PlaylistItem.objects.filter(channel=channel, video_id=video_id, enabled=True).order_by("order").first()
    if item is None:
        raise VideoNotOnChannelError(message=f"{video_id} is not in this channel's playlist.")
    reported = round(seconds)
    key = f"tally:live:durations:{item.pk}"
    client = get_redis_connection("default")
    if not client.hsetnx(key, membership.pk, reported):
        return DurationOutcome(False, False, item.duration_seconds)
    client.expire(key, DURATION_REPORTS_TTL_SECONDS)
    lengths = sorted(int(value) for value in client.hvals(key))
    if len(lengths) < DURATION_REPORTS_NEEDED:
        return DurationOutcome(True, False, item.duration_seconds)
    median = lengths[len(lengths) // 2]
    agreeing = [length for length in lengths if abs(length - median) <= DURATION_TOLERANCE_SECONDS]
    if len(agreeing) < DURATION_REPORTS_NEEDED or abs(median - item.duration_seconds) <= DURATION_TOLERANCE_SECONDS:
        return DurationOutcome(True, False, item.duration_seconds)
    with transaction.atomic():
        locks.channel_lock_row(channel.pk)
        updated = PlaylistItem.objects.filter(pk=item.pk, duration_seconds=item.duration_seconds).update(
            duration_seconds=median, duration_corrected_from=item.duration_seconds, duration_corrected_at=clock.now()
        )
        if updated:
            channel_schedule_publish(channel=channel)
    client.delete(key)
    logger.info("channel %s: %s is %s s long by its viewers' players, not %s", channel.slug, video_id, median,
                item.duration_seconds)  # fmt: skip
    return DurationOutcome(True, bool(updated), median)
