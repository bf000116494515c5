"""How the accept path and the event processor find each other, through Redis: the wake flag and waiters.

Nothing here is needed for correctness: an accepted event lives in PostgreSQL, and the sweep
(`events_pending_sweep_task`, every few seconds) finds any that nobody woke a worker for. Redis only
makes it fast, so every call here survives Redis being away (it logs and carries on).

The wake flag, one per brand (`tally:ingest:wake:<brand>`):
- the accept path, after its INSERT committed, sets it with SET NX; only the request that set it sends
  a task, so a burst of 2,000 accepts sends one task, not 2,000;
- the processor deletes it right before it claims a batch, and after each batch it looks again: set
  means events came in meanwhile, so it goes on. An accept that saw the flag set therefore knows a
  worker will claim (again) after its commit.

Waiters (`?wait=true`): the request counts itself in the event's waiters (`tally:ingest:waiting:<id>`),
then blocks on its list (`tally:ingest:done:<id>`); the processor, after its commit, pushes one item per
waiter to the lists of the waited-for events of its batch, so that a hundred retries of one purchase
all wake at once. The request re-reads the event from the database either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable

from django_redis import get_redis_connection
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

WAKE_KEY = "tally:ingest:wake:{brand_id}"
# Longer than any batch takes: a flag left behind by a crash expires, and the sweep covers the gap.
WAKE_TTL_SECONDS = 60
WAITING_KEY = "tally:ingest:waiting:{event_id}"
DONE_KEY = "tally:ingest:done:{event_id}"
WAIT_TTL_SECONDS = 30


def _redis():
    return get_redis_connection("default")


def brand_wake(brand_id: int) -> None:
    """Have a worker process the brand's pending events (call after the events are committed)."""
    from loyalty.tasks import events_process_task

    key = WAKE_KEY.format(brand_id=brand_id)
    try:
        client = _redis()
        if not client.set(key, 1, nx=True, ex=WAKE_TTL_SECONDS):
            return  # a worker is already due to claim after our commit
    except RedisError:
        logger.warning("Redis is away: the sweep will process brand %s's events", brand_id)
        return
    try:
        events_process_task.delay(brand_id)
    except Exception:  # the broker is away: drop the flag, or later accepts would count on a task never sent
        logger.warning("could not send the processing task of brand %s; the sweep will", brand_id, exc_info=True)
        with contextlib.suppress(RedisError):
            client.delete(key)


class _Waker:
    """Wakes brands' processors from a thread of this process, a few milliseconds after accepts asked for
    it: a burst of 2,000 accepts a second costs one Redis round trip per brand and tick, not one each.

    A wake lost with the process (killed between an accept's commit and the next tick) is made up by the
    sweep, like any other lost wake.
    """

    TICK_SECONDS = 0.005

    def __init__(self) -> None:
        self._brands: set[int] = set()
        self._lock = threading.Lock()
        self._asked = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ask(self, brand_id: int) -> None:
        with self._lock:
            self._brands.add(brand_id)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # (Re)started after a fork too: a forked child has the parent's object but not its thread.
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="tally-waker", daemon=True)
                self._thread.start()
        self._asked.set()

    def _run(self) -> None:
        while True:
            self._asked.wait()
            time.sleep(self.TICK_SECONDS)  # let the burst gather
            self._asked.clear()
            with self._lock:
                brands, self._brands = self._brands, set()
            for brand_id in sorted(brands):
                brand_wake(brand_id)


_waker = _Waker()


def brand_wake_soon(brand_id: int) -> None:
    """brand_wake from a background thread within a few milliseconds: for the accept path, which should
    not spend a Redis round trip per request on it. Call after the events are committed."""
    _waker.ask(brand_id)


def wake_flag_take(brand_id: int) -> bool:
    """Clear the brand's wake flag (the processor is about to claim); True if it was set."""
    try:
        return bool(_redis().delete(WAKE_KEY.format(brand_id=brand_id)))
    except RedisError:
        logger.warning("Redis is away: processing brand %s without the wake flag", brand_id)
        return False


def wake_flag_set(brand_id: int) -> bool:
    try:
        return bool(_redis().exists(WAKE_KEY.format(brand_id=brand_id)))
    except RedisError:
        return False


def event_wait(event_id: int, *, seconds: float, is_done) -> None:
    """Block until the processor says `event_id` is done or `seconds` pass. `is_done()` re-reads the event
    after registering as a waiter, so an event processed in between is not waited for."""
    deadline = time.monotonic() + seconds
    done_key = DONE_KEY.format(event_id=event_id)
    try:
        client = _redis()
        waiting = WAITING_KEY.format(event_id=event_id)
        client.pipeline(transaction=False).incr(waiting).expire(waiting, WAIT_TTL_SECONDS).execute()
        # Counted before this read: a processor that commits after it pushes an item for this request.
        if is_done():
            return
        while (left := deadline - time.monotonic()) > 0:
            # In slices under the client's socket timeout (a blocking read longer than it fails).
            if client.blpop([done_key], timeout=min(left, 1.0)):
                return
        return
    except RedisError:
        logger.warning("Redis is away: waiting for event %s by polling", event_id)
    while time.monotonic() < deadline and not is_done():
        time.sleep(0.05)


_DONE_SCRIPT = """
-- KEYS: waiting key 1, done key 1, waiting key 2, done key 2, ...; ARGV[1]: the done keys' TTL
-- One item per waiter counted so far; the count goes (a waiter counted later reads the event done).
local woken = 0
for i = 1, #KEYS, 2 do
  local waiters = tonumber(redis.call('GET', KEYS[i]) or '0')
  if waiters > 0 then
    for _ = 1, waiters do
      redis.call('RPUSH', KEYS[i + 1], 1)
    end
    redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
    redis.call('DEL', KEYS[i])
    woken = woken + waiters
  end
end
return woken
"""


def events_done(event_ids: Iterable[int]) -> None:
    """Tell the waiters of these events (if any) that they are processed. Call after the commit.

    One script call: Redis itself looks up which of a batch's thousand events anyone waits for."""
    keys = []
    for event_id in event_ids:
        keys += [WAITING_KEY.format(event_id=event_id), DONE_KEY.format(event_id=event_id)]
    if not keys:
        return
    try:
        client = _redis()
        client.register_script(_DONE_SCRIPT)(keys=keys, args=[WAIT_TTL_SECONDS])
    except RedisError:
        logger.warning("Redis is away: waiters of %d events fall back to polling", len(keys) // 2)
