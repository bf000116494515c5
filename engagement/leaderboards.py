"""Leaderboards: a brand's fans ranked by points earned this week, this month and all time.

The database holds the figures (engagement.models.FanScore, kept in the posting's transaction); Redis
holds the ranking, one sorted set per brand and period, so that the top 100 and anyone's rank are
O(log n) reads. Redis is a cache here: a board that is missing (a flush, a restart, an expired week) is
rebuilt from FanScore on the next read, and `manage.py leaderboard_rebuild` rebuilds on demand.

A member's score packs two things into one double: the points, and who got there first:
points x 2^28 + (2^28 - 1 - minutes since 2024 of `reached_at`). More points rank higher; at equal
points the earlier `reached_at` does. (Exact up to 2^25 points per member and period; above that the
points still order correctly, only the tie-break blurs.)

Writes are absolute and versioned (the score of FanScore's row, with its version): a Lua script keeps
the newest version of each member, so updates that arrive late or twice, and a rebuild running beside
them, all converge on what the database says. A board only takes updates once it is marked built, so an
update can never start a board that holds one member.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django_redis import get_redis_connection
from redis.exceptions import RedisError

from engagement.models import ALL_TIME, FanProfile, FanScore
from loyalty.models import Brand

logger = logging.getLogger(__name__)

PERIODS = ("week", "month", "all")
TIE_BITS = 2**28
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
BOARD_TTL_SECONDS = 45 * 24 * 3600  # a week's or month's board outlives its period a while, then goes
REBUILD_CHUNK = 10_000
MAX_LIMIT = 100

_SET_SCRIPT = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local written = 0
for i = 2, #ARGV, 3 do
  local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 2]) >= seen then
    redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
    written = written + 1
  end
end
if ARGV[2] and redis.call('TTL', KEYS[1]) == -1 and KEYS[1]:sub(-4) ~= ':all' then
  redis.call('EXPIRE', KEYS[1], %d)
  redis.call('EXPIRE', KEYS[2], %d)
  redis.call('EXPIRE', KEYS[3], %d)
end
return written
""" % ((BOARD_TTL_SECONDS,) * 3)  # noqa: UP031 - Lua's braces


def period_of(kind: str, when: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """The period a moment falls in, in the brand's calendar: "all", "2026-W49", "2026-12"."""
    if kind == ALL_TIME:
        return ALL_TIME
    local = when.astimezone(zone)
    if kind == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local:%Y-%m}"


def periods_of(when: dt.datetime, zone: zoneinfo.ZoneInfo) -> tuple[str, str, str]:
    return day_periods(when.astimezone(zone).date())


def day_periods(day: dt.date) -> tuple[str, str, str]:
    """The week, month and all-time periods of a brand day (in PERIODS' order)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}", f"{day:%Y-%m}", ALL_TIME


def score(points: int, reached_at: dt.datetime) -> float:
    minutes = max(0, int((reached_at - EPOCH).total_seconds() // 60))
    return float(points * TIE_BITS + (TIE_BITS - 1 - min(minutes, TIE_BITS - 1)))


def _keys(brand_id: int, period: str) -> tuple[str, str, str]:
    board = f"tally:lb:{brand_id}:{period}"
    return board, f"{board}:versions", f"{board}:built"


def _redis():
    return get_redis_connection("default")


def _script():
    return _redis().register_script(_SET_SCRIPT)


def scores_push(rows: Iterable[tuple[int, int, str, int, dt.datetime, int]], *, require_built: bool = True) -> None:
    """Write (brand id, membership id, period, points, reached at, version) rows to their boards (after the
    commit that wrote them). Redis away: the boards lag until their next rebuild or update."""
    by_board: dict[tuple[int, str], list] = {}
    for brand_id, membership_id, period, points, reached_at, version in rows:
        by_board.setdefault((brand_id, period), []).extend(
            [str(membership_id), repr(score(points, reached_at)), str(version)]
        )
    if not by_board:
        return
    try:
        if require_built:
            # Most boards are never read (a brand that shows no leaderboard, last week's): one MGET of the
            # built markers spares sending them thousands of arguments the script would drop. A board
            # marked built after this read is built from the database, which already holds these rows.
            boards = list(by_board)
            built = _redis().mget([_keys(brand_id, period)[2] for brand_id, period in boards])
            by_board = {board: by_board[board] for board, marker in zip(boards, built, strict=True) if marker}
            if not by_board:
                return
        script, pipe = _script(), _redis().pipeline(transaction=False)
        for (brand_id, period), argv in by_board.items():
            script(keys=_keys(brand_id, period), args=["1" if require_built else "0", *argv], client=pipe)
        pipe.execute()
    except RedisError:
        logger.warning("Redis is away: leaderboards lag until they are rebuilt", exc_info=True)


def board_rebuild(brand: Brand, period: str) -> int:
    """Rebuild one board from FanScore (marked built first: updates that come meanwhile are kept, and the
    versions let the newest value win). Returns the members ranked."""
    _redis().set(_keys(brand.pk, period)[2], 1)
    rows = FanScore.objects.filter(brand=brand, period=period).values_list(
        "membership_id", "points", "reached_at", "version"
    )
    count = 0
    chunk = []
    for membership_id, points, reached_at, version in rows.iterator(chunk_size=REBUILD_CHUNK):
        chunk.append((brand.pk, membership_id, period, points, reached_at, version))
        if len(chunk) >= REBUILD_CHUNK:
            scores_push(chunk, require_built=False)
            count += len(chunk)
            chunk = []
    scores_push(chunk, require_built=False)
    return count + len(chunk)


def brand_rebuild(brand: Brand, now: dt.datetime | None = None) -> dict[str, int]:
    """Rebuild the brand's boards of now (this week, this month, all time), dropping what Redis had."""
    out = {}
    for period in periods_of(now or dt.datetime.now(dt.UTC), brand.zone):
        _redis().delete(*_keys(brand.pk, period))
        out[period] = board_rebuild(brand, period)
    return out


@dataclass(frozen=True)
class Ranked:
    rank: int
    membership_id: int
    display_name: str
    points: int


@dataclass(frozen=True)
class Board:
    period: str
    entries: list[Ranked]
    me: Ranked | None  # the viewer's own rank (hidden or not), when they have points in the period


def _points(packed: float) -> int:
    return int(packed // TIE_BITS)


def board(
    brand: Brand, kind: str, *, limit: int = MAX_LIMIT, viewer_id: int | None = None, now: dt.datetime | None = None
) -> Board:
    """The top `limit` visible fans of the period `kind` ("week", "month", "all") of now, and the viewer's
    own rank. Ranks count visible fans only (a hidden fan's own rank counts them among the visible)."""
    period = period_of(kind, now or dt.datetime.now(dt.UTC), brand.zone)
    key, _, built = _keys(brand.pk, period)
    client = _redis()
    if not client.exists(built):
        board_rebuild(brand, period)
    hidden = set(
        FanProfile.objects.filter(membership__brand=brand, hidden=True).values_list("membership_id", flat=True)
    )
    pipe = client.pipeline(transaction=False)
    pipe.zrevrange(key, 0, limit + len(hidden) - 1, withscores=True)
    hidden_list = sorted(hidden)
    for membership_id in hidden_list:
        pipe.zscore(key, membership_id)
    if viewer_id is not None:
        pipe.zrevrank(key, viewer_id)
        pipe.zscore(key, viewer_id)
    answers = pipe.execute()
    top = answers[0]
    hidden_scores = [s for s in answers[1 : 1 + len(hidden_list)] if s is not None]
    entries = []
    for member, packed in top:
        membership_id = int(member)
        if membership_id in hidden:
            continue
        entries.append((membership_id, _points(packed)))
        if len(entries) == limit:
            break
    names = _display_names([membership_id for membership_id, _ in entries] + ([viewer_id] if viewer_id else []))
    ranked = [
        Ranked(rank, membership_id, names[membership_id], points)
        for rank, (membership_id, points) in enumerate(entries, start=1)
    ]
    me = None
    if viewer_id is not None:
        position, packed = answers[-2], answers[-1]
        if position is not None and packed is not None:
            above_hidden = sum(1 for s in hidden_scores if s > packed)
            me = Ranked(position + 1 - above_hidden, viewer_id, names[viewer_id], _points(packed))
    return Board(period, ranked, me)


def _display_names(membership_ids: Sequence[int]) -> dict[int, str]:
    chosen = dict(
        FanProfile.objects.filter(membership_id__in=membership_ids)
        .exclude(display_name="")
        .values_list("membership_id", "display_name")
    )
    return {membership_id: chosen.get(membership_id) or f"Fan #{membership_id}" for membership_id in membership_ids}
