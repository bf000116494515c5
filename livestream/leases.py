"""Viewing leases: a signed token per page, one live lease per member in Redis, and the per-lease
accrual of watched time, done atomically in Redis by one Lua script.

Keys (the cache database, next to loyalty's locks):

- `tally:live:viewer:<member id>`            the member's live lease id. A new tab or device SETs it
                                             (takes over); every other lease of the member stops earning.
- `tally:live:lease:<lease id>`              hash: last_ms / last_good (the previous heartbeat) and
                                             carry_ms (counted time not yet a whole minute).
- `tally:live:minutes:<membership id>:<day>` how many minutes were completed on that brand day: the
                                             per-member minute number that makes each credit's key.

Why Lua: "is this lease still the live one", "how long since its previous heartbeat", "add it to the
carry" and "take a minute number" must be one step. Two heartbeats racing (two tabs, a retried request)
would otherwise both read the old state and count the same seconds twice. Redis runs a script without
interleaving any other command, which is exactly that.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.core import signing
from django_redis import get_redis_connection

from livestream import clock

LEASE_SALT = "livestream.lease"
# A lease is good for one long viewing session; the page asks for a new one when told it expired.
LEASE_MAX_AGE = dt.timedelta(hours=12)
_VIEWER_KEY = "tally:live:viewer:{member_id}"
_LEASE_KEY = "tally:live:lease:{lease_id}"
_MINUTES_KEY = "tally:live:minutes:{membership_id}:{day}"
_MINUTES_TTL_SECONDS = 3 * 24 * 3600  # outlives the brand day in any timezone


@dataclass(frozen=True)
class LeaseClaims:
    lease_id: str
    membership_id: int
    channel_id: int
    issued_at: dt.datetime


class LeaseTokenError(Exception):
    """The token is not one we signed (forged, truncated, or signed with another secret)."""


def token_sign(claims: LeaseClaims) -> str:
    payload = {
        "l": claims.lease_id,
        "m": claims.membership_id,
        "c": claims.channel_id,
        "i": clock.to_ms(claims.issued_at),
    }
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
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise LeaseTokenError(str(error)) from error


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


_ACCRUE = """
-- KEYS: viewer key, lease hash, minutes counter
-- ARGV: lease id, now ms, good (0/1), max gap ms, minute ms, lease ttl s, counter ttl s
local live = redis.call('GET', KEYS[1])
if live ~= ARGV[1] then
  return {'superseded', 0, 0, 0, 0}
end
local now = tonumber(ARGV[2])
local good = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[2], 'last_ms', 'last_good', 'carry_ms')
local last_ms = tonumber(state[1])
local last_good = tonumber(state[2])
local carry = tonumber(state[3]) or 0
if last_ms and now < last_ms then
  -- a request overtaken by a later one: time never runs backwards
  return {'out_of_order', 0, carry, 0, 0}
end
redis.call('HSET', KEYS[2], 'last_ms', now, 'last_good', good)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
if good == 0 then
  return {'not_counted', 0, carry, 0, 0}
end
if not last_ms then
  return {'first_heartbeat', 0, carry, 0, 0}
end
if last_good ~= 1 then
  return {'resumed', 0, carry, 0, 0}
end
local gap = now - last_ms
if gap > tonumber(ARGV[4]) then
  return {'gap_too_long', 0, carry, 0, 0}
end
local minute = tonumber(ARGV[5])
carry = carry + gap
local minutes = math.floor(carry / minute)
carry = carry - minutes * minute
redis.call('HSET', KEYS[2], 'carry_ms', carry)
local last_number = 0
if minutes > 0 then
  last_number = redis.call('INCRBY', KEYS[3], minutes)
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[7]))
end
return {'counted', gap, carry, minutes, last_number}
"""


@dataclass(frozen=True)
class Accrual:
    outcome: str  # counted, superseded, out_of_order, not_counted, first_heartbeat, resumed, gap_too_long
    counted_ms: int  # time between this heartbeat and the previous one that was counted
    carry_ms: int  # counted time toward the next whole minute
    minutes: int  # whole minutes completed by this heartbeat
    last_minute_number: int  # the member's minute number (that brand day) of the last one completed

    @property
    def minute_numbers(self) -> range:
        return range(self.last_minute_number - self.minutes + 1, self.last_minute_number + 1)


def accrue(
    *,
    member_id: int,
    membership_id: int,
    lease_id: str,
    day: str,
    now_ms: int,
    good: bool,
    max_gap_ms: int,
    minute_ms: int,
) -> Accrual:
    """Record one heartbeat of a lease and count the time since the previous one, atomically (see the
    module docstring). Counts only when this lease is the member's live one, both heartbeats were good,
    and they are at most `max_gap_ms` apart."""
    client = _redis()
    script = client.register_script(_ACCRUE)
    outcome, counted, carry, minutes, last_number = script(
        keys=[
            _VIEWER_KEY.format(member_id=member_id),
            _LEASE_KEY.format(lease_id=lease_id),
            _MINUTES_KEY.format(membership_id=membership_id, day=day),
        ],
        args=[
            lease_id,
            now_ms,
            1 if good else 0,
            max_gap_ms,
            minute_ms,
            int(LEASE_MAX_AGE.total_seconds()),
            _MINUTES_TTL_SECONDS,
        ],
    )
    return Accrual(
        outcome=outcome.decode() if isinstance(outcome, bytes) else outcome,
        counted_ms=int(counted),
        carry_ms=int(carry),
        minutes=int(minutes),
        last_minute_number=int(last_number),
    )


def lease_carry_ms(*, lease_id: str) -> int:
    value = _redis().hget(_LEASE_KEY.format(lease_id=lease_id), "carry_ms")
    return int(value) if value else 0
