"""Viewing leases: a signed token per page, one live lease per member in Redis, and the per-lease
accrual of watched time, done atomically in Redis by one Lua script, which is also the heartbeat's only
round trip to Redis (beside the session).

Keys (the cache database, next to loyalty's locks):

- `tally:live:viewer:<member id>`            the member's live lease id. A new tab or device SETs it
                                             (takes over); every other lease of the member stops earning.
- `tally:live:lease:<lease id>`              hash: last_ms / last_good (the previous heartbeat), carry_ms
                                             (counted time not yet a whole minute) and checked_ms (when the
                                             member, login and session were last checked in PostgreSQL).
- `tally:live:minutes:<membership id>:<day>` how many minutes were completed (recorded) on that brand day:
                                             the per-member minute number that makes each credit's key, and
                                             what the daily allotment is checked against.
- `tally:live:summary:<membership id>:<day>` hash: what PostgreSQL said when last read (points and
                                             minutes awarded today, balance), so that most heartbeats
                                             answer the figures without reading PostgreSQL.

Why Lua: "is this lease still the live one", "is the allotment used up", "how long since its previous
heartbeat", "add it to the carry" and "take a minute number" must be one step. Two heartbeats racing
(two tabs, a retried request) would otherwise both read the old state and count the same seconds
twice. Redis runs a script without interleaving any other command, which is exactly that.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.core import signing
from django.utils.crypto import salted_hmac
from django_redis import get_redis_connection
from redis.commands.core import Script

from livestream import clock

LEASE_SALT = "livestream.lease"
SESSION_SALT = "livestream.lease.session"
# A lease is good for one long viewing session; the page asks for a new one when told it expired.
LEASE_MAX_AGE = dt.timedelta(hours=12)
_VIEWER_KEY = "tally:live:viewer:{member_id}"
_LEASE_KEY = "tally:live:lease:{lease_id}"
_MINUTES_KEY = "tally:live:minutes:{membership_id}:{day}"
_SUMMARY_KEY = "tally:live:summary:{membership_id}:{day}"
_RATE_KEY = "tally:live:rate:{what}:{who}:{window}"
_MINUTES_TTL_SECONDS = 3 * 24 * 3600  # outlives the brand day in any timezone


@dataclass(frozen=True)
class LeaseClaims:
    lease_id: str
    membership_id: int
    channel_id: int
    issued_at: dt.datetime
    # The login and the session the lease was issued to, and the member (whose live lease is kept in
    # Redis): a heartbeat sent with that session's cookie needs to load neither the session nor the
    # login (see services.heartbeat_record). None in tokens signed before they were added: those take
    # the exact, slower checks.
    user_id: int | None = None
    member_id: int | None = None
    session: str | None = None  # session_digest() of the session's key, never the key itself


class LeaseTokenError(Exception):
    """The token is not one we signed (forged, truncated, or signed with another secret)."""


def token_sign(claims: LeaseClaims) -> str:
    payload = {
        "l": claims.lease_id,
        "m": claims.membership_id,
        "c": claims.channel_id,
        "i": clock.to_ms(claims.issued_at),
    }
    if claims.user_id is not None:
        payload["u"] = claims.user_id
    if claims.member_id is not None:
        payload["p"] = claims.member_id
    if claims.session is not None:
        payload["s"] = claims.session
    return signing.dumps(payload, salt=LEASE_SALT, compress=False)


def token_read(token: str) -> LeaseClaims:
    """The claims of a lease token we signed. Expiry is checked by the caller against livestream.clock,
    not here (signing's max_age reads the machine's clock, which tests cannot move)."""
    try:
        payload = signing.loads(token, salt=LEASE_SALT)
        return LeaseClaims(
            lease_id=str(payload["l"]),
            membership_id=int(payload["m"]),
            channel_id=int(payload["c"]),
            issued_at=dt.datetime.fromtimestamp(int(payload["i"]) / 1000, tz=dt.UTC),
            user_id=int(payload["u"]) if "u" in payload else None,
            member_id=int(payload["p"]) if "p" in payload else None,
            session=str(payload["s"]) if "s" in payload else None,
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError, AttributeError) as error:
        raise LeaseTokenError(str(error)) from error


def session_digest(session_key: str) -> str:
    """What a lease says about the session it was issued to: a keyed digest of the session key (the key
    is a login credential; the lease is readable by the page's JavaScript, the session cookie is not)."""
    return salted_hmac(SESSION_SALT, session_key, algorithm="sha256").hexdigest()[:32]


def new_lease_id() -> str:
    return uuid.uuid4().hex


def _redis():
    return get_redis_connection("default")


def viewer_claim(*, member_id: int, lease_id: str) -> None:
    """Make `lease_id` the member's live lease: any other tab or device of theirs stops earning."""
    _redis().set(_VIEWER_KEY.format(member_id=member_id), lease_id, ex=int(LEASE_MAX_AGE.total_seconds()))


def viewer_lease_id(*, member_id: int) -> str | None:
    value = _redis().get(_VIEWER_KEY.format(member_id=member_id))
    return value.decode() if isinstance(value, bytes) else value


_HEARTBEAT = """
-- KEYS: viewer key, lease hash, minutes counter, summary hash, member's rate counter, address's rate counter
-- ARGV: lease id, now ms, accrue (0/1), good (0/1), minutes allotted per day (-1: no limit),
--       check every (ms), heartbeats allowed per member and per address in a rate window
-- The other durations (ms) and lifetimes (s) are written in (see _heartbeat_script).
-- Returns one string: outcome, counted ms, carry ms, minutes completed, minutes recorded today,
-- check due (0/1), summary points, summary awarded minutes, summary balance ('-': none: read them)
local MAX_GAP, MINUTE, LEASE_TTL, COUNTER_TTL, RATE_TTL = {constants}
local CHECK_EVERY = tonumber(ARGV[6])
if redis.call('EXISTS', KEYS[3]) == 0 then
  -- The day's minute counter is missing (the day's first heartbeat, or Redis lost it): the caller
  -- rebuilds it from PostgreSQL and comes again, before anything here has changed.
  return 'counter_missing 0 0 0 0 0 - - -'
end
-- Heartbeats counted per member and per client address in a window: a script sending far more than
-- a page does is refused before anything else.
local by_member = redis.call('INCR', KEYS[5])
local by_address = redis.call('INCR', KEYS[6])
if by_member == 1 then redis.call('EXPIRE', KEYS[5], RATE_TTL) end
if by_address == 1 then redis.call('EXPIRE', KEYS[6], RATE_TTL) end
if by_member > tonumber(ARGV[7]) or by_address > tonumber(ARGV[8]) then
  return 'throttled 0 0 0 0 0 - - -'
end
local live = redis.call('GET', KEYS[1])
if live ~= ARGV[1] then
  return 'superseded 0 0 0 0 0 - - -'
end
local now = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[2], 'last_ms', 'last_good', 'carry_ms', 'checked_ms')
local recorded = tonumber(redis.call('GET', KEYS[3]) or '0')
local summary = redis.call('HMGET', KEYS[4], 'points', 'awarded', 'balance')
local last_ms = tonumber(state[1])
local last_good = tonumber(state[2])
local carry = tonumber(state[3]) or 0
local new_lease = not state[1] and not state[4]
-- The member, login and session are checked in PostgreSQL on a lease's first heartbeat and then at
-- least every CHECK_EVERY ms (and the caller checks before it records any minute). The check is claimed
-- here, so that racing heartbeats do not all make it; a check that fails resets it (check_failed).
local checked = tonumber(state[4])
local check_due = 0
if not checked or now - checked >= CHECK_EVERY or now < checked then
  check_due = 1
  redis.call('HSET', KEYS[2], 'checked_ms', now)
end
local function answer(outcome, counted, minutes)
  if new_lease then
    redis.call('EXPIRE', KEYS[2], LEASE_TTL)
  end
  return table.concat({outcome, counted, carry, minutes, recorded, check_due,
                       summary[1] or '-', summary[2] or '-', summary[3] or '-'}, ' ')
end
if ARGV[3] == '0' then
  -- no usable watch_minute rule: nothing accrues
  return answer('not_earning', 0, 0)
end
local allotted = tonumber(ARGV[5])
if allotted >= 0 and recorded >= allotted then
  if check_due == 0 and (tonumber(summary[2]) or 0) < recorded then
    -- the figures miss minutes recorded before the allotment ran out: check (and read them) once now
    check_due = 1
    redis.call('HSET', KEYS[2], 'checked_ms', now)
  end
  return answer('cap_reached', 0, 0)
end
local good = tonumber(ARGV[4])
if last_ms and now < last_ms then
  -- a request overtaken by a later one: time never runs backwards
  return answer('out_of_order', 0, 0)
end
local outcome = 'counted'
local gap = 0
local minutes = 0
if good == 0 then
  outcome = 'not_counted'
elseif not last_ms then
  outcome = 'first_heartbeat'
elseif last_good ~= 1 then
  outcome = 'resumed'
elseif now - last_ms > MAX_GAP then
  outcome = 'gap_too_long'
else
  gap = now - last_ms
  carry = carry + gap
  minutes = math.floor(carry / MINUTE)
  carry = carry - minutes * MINUTE
end
redis.call('HSET', KEYS[2], 'last_ms', now, 'last_good', good, 'carry_ms', carry)
if minutes > 0 then
  recorded = redis.call('INCRBY', KEYS[3], minutes)
  redis.call('EXPIRE', KEYS[3], COUNTER_TTL)
end
return answer(outcome, gap, minutes)
"""
_scripts: dict[tuple[int, ...], Script] = {}


def _heartbeat_script(constants: tuple[int, ...]) -> Script:
    """The heartbeat script with its durations written in (fewer arguments to send on every call): one
    per set of durations, and there is one set in production (tests compress time)."""
    script = _scripts.get(constants)
    if script is None:
        source = _HEARTBEAT.replace("{constants}", ", ".join(str(value) for value in constants))
        script = _scripts[constants] = _redis().register_script(source)
    return script


@dataclass(frozen=True)
class Accrual:
    # counted, superseded, cap_reached, not_earning, out_of_order, not_counted, first_heartbeat, resumed,
    # gap_too_long, throttled, counter_missing
    outcome: str
    counted_ms: int  # time between this heartbeat and the previous one that was counted
    carry_ms: int  # counted time toward the next whole minute
    minutes: int  # whole minutes completed by this heartbeat
    recorded: int  # minutes recorded for the member on this brand day, these included
    check_due: bool  # the member, login and session are due a check in PostgreSQL (claimed by this heartbeat)
    summary: SummaryFigures | None  # what PostgreSQL said when last read (None: not yet this brand day)

    @property
    def minute_numbers(self) -> range:
        return range(self.recorded - self.minutes + 1, self.recorded + 1)


@dataclass(frozen=True)
class SummaryFigures:
    """A member's watch figures of one brand day, as PostgreSQL said when they were last read."""

    points: int  # points awarded today by the watch_minute rule
    awarded: int  # minutes awarded today
    balance: int


def heartbeat(
    *,
    member_id: int,
    membership_id: int,
    lease_id: str,
    day: str,
    now_ms: int,
    accrue: bool,
    good: bool,
    max_gap_ms: int,
    minute_ms: int,
    allotted_minutes: int | None,
    check_ms: int,
    address: str,
    rate_window_ms: int,
    per_member: int,
    per_address: int,
) -> Accrual:
    """Record one heartbeat of a lease and count the time since the previous one, atomically (see the
    module docstring), in one round trip that also answers what the caller needs to reply.

    Nothing accrues when this lease is not the member's live one (`superseded`), when `accrue` is false
    (no usable rule: `not_earning`), or when `allotted_minutes` were already recorded today
    (`cap_reached`). Otherwise time counts only when both heartbeats were good and at most `max_gap_ms`
    apart.

    First of all, the heartbeat counts against `per_member` and `per_address` heartbeats per rate window
    (`throttled` past either). And when the member's minute counter of the day is missing, nothing is
    done (`counter_missing`): the caller rebuilds it (minutes_counter_restore) and calls again."""
    window = now_ms // rate_window_ms
    constants = (
        max_gap_ms,
        minute_ms,
        int(LEASE_MAX_AGE.total_seconds()),
        _MINUTES_TTL_SECONDS,
        _rate_ttl_seconds(rate_window_ms),
    )
    reply = _heartbeat_script(constants)(
        keys=[
            _VIEWER_KEY.format(member_id=member_id),
            _LEASE_KEY.format(lease_id=lease_id),
            _MINUTES_KEY.format(membership_id=membership_id, day=day),
            _SUMMARY_KEY.format(membership_id=membership_id, day=day),
            _RATE_KEY.format(what="heartbeat", who=f"member:{member_id}", window=window),
            _RATE_KEY.format(what="heartbeat", who=f"address:{address}", window=window),
        ],
        args=[
            lease_id,
            now_ms,
            1 if accrue else 0,
            1 if good else 0,
            -1 if allotted_minutes is None else allotted_minutes,
            check_ms,
            per_member,
            per_address,
        ],
        client=_redis(),
    )
    outcome, counted, carry, minutes, recorded, check_due, points, awarded, balance = (
        reply.decode() if isinstance(reply, bytes) else reply
    ).split()
    return Accrual(
        outcome=outcome,
        counted_ms=int(counted),
        carry_ms=int(carry),
        minutes=int(minutes),
        recorded=int(recorded),
        check_due=check_due == "1",
        summary=None if "-" in (points, awarded, balance) else SummaryFigures(int(points), int(awarded), int(balance)),
    )


def minutes_counter_restore(*, membership_id: int, day: str, recorded: int) -> None:
    """Set the member's minute counter of `day` to `recorded` (the highest minute number PostgreSQL has),
    unless a concurrent heartbeat set it first. Rebuilt this way, a counter Redis lost carries on after
    the minutes already recorded instead of numbering them again (which would credit nothing)."""
    _redis().set(_MINUTES_KEY.format(membership_id=membership_id, day=day), recorded, nx=True, ex=_MINUTES_TTL_SECONDS)


def _rate_ttl_seconds(window_ms: int) -> int:
    """A rate window's counter outlives its window (two of them, whole seconds), then goes."""
    return max(1, -(-2 * window_ms // 1000))


def rate_count(*, what: str, who: str, window_ms: int, now_ms: int) -> int:
    """Count one `what` (e.g. a lease request) by `who` in the current window; returns the count so far."""
    key = _RATE_KEY.format(what=what, who=who, window=now_ms // window_ms)
    pipe = _redis().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, _rate_ttl_seconds(window_ms))  # the key is the window's own: renewing is harmless
    count, _ = pipe.execute()
    return int(count)


def check_failed(*, lease_id: str) -> None:
    """The member's check failed (or could not be made): the time this lease counted since its last good
    check cannot be trusted, so its count starts again (the next heartbeat counts nothing, as after a bad
    one), and so does the check (the next heartbeat makes it again)."""
    key = _LEASE_KEY.format(lease_id=lease_id)
    pipe = _redis().pipeline(transaction=False)
    pipe.hset(key, mapping={"last_good": 0, "carry_ms": 0})
    pipe.hdel(key, "checked_ms")
    pipe.execute()


def figures_store(*, membership_id: int, day: str, figures: SummaryFigures) -> None:
    """Keep what PostgreSQL said about the member's day for the heartbeats that follow."""
    key = _SUMMARY_KEY.format(membership_id=membership_id, day=day)
    pipe = _redis().pipeline(transaction=False)
    pipe.hset(key, mapping={"points": figures.points, "awarded": figures.awarded, "balance": figures.balance})
    pipe.expire(key, _MINUTES_TTL_SECONDS)
    pipe.execute()


# --- completed minutes, on their way to PostgreSQL --------------------------------------------------------

_RECORD_QUEUE_KEY = "tally:live:record:queue"
_RECORD_FLAG_KEY = "tally:live:record:flag"
# A flag whose flush never ran (the broker was away) expires: the next minute queued schedules one.
_RECORD_FLAG_TTL_SECONDS = 30
_TAKE = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('LTRIM', KEYS[1], #items, -1)
return items
"""
_take_script: Script | None = None


@dataclass(frozen=True)
class CompletedMinutes:
    """Minutes a heartbeat completed (numbers `first`..`last` of the member's brand day), to be recorded."""

    brand_id: int
    membership_id: int
    channel_id: int
    day: str
    first: int
    last: int
    occurred_ms: int

    def encode(self) -> str:
        return (
            f"{self.brand_id} {self.membership_id} {self.channel_id} {self.day} {self.first} {self.last} "
            f"{self.occurred_ms}"
        )

    @classmethod
    def decode(cls, value: bytes | str) -> CompletedMinutes:
        brand, membership, channel, day, first, last, occurred = (
            value.decode() if isinstance(value, bytes) else value
        ).split()
        return cls(int(brand), int(membership), int(channel), day, int(first), int(last), int(occurred))


def minutes_queue(minutes: CompletedMinutes) -> bool:
    """Queue completed minutes for the next flush (one round trip). True when no flush was due yet: the
    caller then schedules one."""
    pipe = _redis().pipeline(transaction=False)
    pipe.rpush(_RECORD_QUEUE_KEY, minutes.encode())
    pipe.set(_RECORD_FLAG_KEY, 1, nx=True, ex=_RECORD_FLAG_TTL_SECONDS)
    _, flagged = pipe.execute()
    return bool(flagged)


def minutes_flush_due_clear() -> None:
    """A flush is starting: minutes queued from now on schedule the next one."""
    _redis().delete(_RECORD_FLAG_KEY)


def minutes_take(*, limit: int) -> list[CompletedMinutes]:
    """Take (atomically: no two flushes take the same) up to `limit` of the queued minutes, oldest first."""
    global _take_script  # one Script per process
    if _take_script is None:
        _take_script = _redis().register_script(_TAKE)
    return [CompletedMinutes.decode(item) for item in _take_script(keys=[_RECORD_QUEUE_KEY], args=[limit])]


def minutes_give_back(minutes: list[CompletedMinutes]) -> None:
    """Queue again minutes a flush took but could not record (recording them twice records them once)."""
    if minutes:
        _redis().lpush(_RECORD_QUEUE_KEY, *[item.encode() for item in reversed(minutes)])


def minutes_queued() -> int:
    return _redis().llen(_RECORD_QUEUE_KEY)


def lease_carry_ms(*, lease_id: str) -> int:
    value = _redis().hget(_LEASE_KEY.format(lease_id=lease_id), "carry_ms")
    return int(value) if value else 0
