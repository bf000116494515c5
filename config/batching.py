"""Group commit inside one web process: requests of one group (a brand's redemptions, a brand's events)
that reach the process at the same time are made together, in one database transaction or statement.

Why: requests of a group write the same rows (a perk's stock, a brand's ledger accounts) or the same
table, and a commit costs its round trips and its WAL flush however little it carries. Made one at a
time, on a busy two-core machine, each turn costs several milliseconds of round trips and scheduling,
and more concurrent requests make it slower, not faster, as they queue on the same locks. A batch pays
for one commit, however many requests it carries (perks.services.redemptions_make,
loyalty.services.ingest.events_accept).

How (flat combining): a request joins its group's queue. If no request of the group is being made in
this process, it leads: it takes the queue (up to MAX_BATCH requests, one per key: a duplicate waits
for the next batch, where it finds the first's answer), makes it, hands each waiting request its
outcome, and passes the lead to the first request that queued in the meantime. There is no thread of
its own: the leader is a request's thread, on that thread's database connection. With no concurrency,
a request leads its own batch of one, at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

MAX_BATCH = 64
WAIT_SECONDS = 120.0  # a guard: a batch takes milliseconds


class _Ticket:
    __slots__ = ("done", "item", "key", "lead", "outcome")

    def __init__(self, item: Any, key: Hashable | None) -> None:
        self.item = item
        self.key = key
        self.done = threading.Event()
        self.lead = False
        self.outcome: Any = None


_lock = threading.Lock()
_queues: dict[Hashable, list[_Ticket]] = {}
_leading: set[Hashable] = set()


def submit(*, group: Hashable, item: Any, key: Hashable | None, run: Callable[[Sequence[Any]], Sequence[Any]]) -> Any:
    """`run(items)` for a batch of items of `group` that includes `item`, and `item`'s outcome.

    `run` gets at most MAX_BATCH items, never two with the same `key` (None: no key), and returns one
    outcome per item (an exception is an outcome too). Raises what `run` raised when it fails as a whole.
    """
    ticket = _Ticket(item, key)
    with _lock:
        _queues.setdefault(group, []).append(ticket)
        lead = group not in _leading
        if lead:
            _leading.add(group)
    if not lead:
        if not ticket.done.wait(WAIT_SECONDS):
            with _lock:
                queue = _queues.get(group, [])
                if ticket in queue and not ticket.lead:  # still waiting for a batch: give up
                    queue.remove(ticket)
                    raise RuntimeError("The requests before this one did not finish in time.")
            ticket.done.wait()  # taken into a batch, or handed the lead, just now: see it through
        if not ticket.lead:
            return _outcome(ticket)
    _lead(group, run)
    return _outcome(ticket)


def _outcome(ticket: _Ticket) -> Any:
    if isinstance(ticket.outcome, _Failed):
        error = ticket.outcome.error
        # Each request raises an error of the kind its batch met (a dropped database connection stays an
        # OperationalError, answered 503), as its own object: one exception raised in many threads would
        # have its traceback rewritten by each.
        try:
            again = type(error)(*error.args)
        except Exception:
            again = RuntimeError("The batch this request was in failed.")
        raise again from error
    return ticket.outcome


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _lead(group: Hashable, run: Callable[[Sequence[Any]], Sequence[Any]]) -> None:
    with _lock:
        batch, later, keys = [], [], set()
        for ticket in _queues.pop(group, []):
            if len(batch) < MAX_BATCH and (ticket.key is None or ticket.key not in keys):
                batch.append(ticket)
                if ticket.key is not None:
                    keys.add(ticket.key)
            else:
                later.append(ticket)
        if later:
            _queues[group] = later
    try:
        outcomes = run([ticket.item for ticket in batch])
        for ticket, outcome in zip(batch, outcomes, strict=True):
            ticket.outcome = outcome
    except BaseException as error:
        for ticket in batch:
            ticket.outcome = _Failed(error)
        batch[0].outcome = None  # the leader's own request raises the error itself, below
        raise
    finally:
        for ticket in batch:
            ticket.done.set()
        with _lock:
            queue = _queues.get(group)
            if queue:
                queue[0].lead = True
                queue[0].done.set()
            else:
                _leading.discard(group)
