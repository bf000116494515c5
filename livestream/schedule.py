"""The channel clock: a pure function from (epochs, now) to what is on air. No database, no I/O.

Like a broadcast channel (CyTube, OpenTogetherTube and Jellyfin SyncPlay keep one authoritative
timeline too), every viewer derives the same item and offset from the same inputs, so there is no
tick loop to run, nothing to lose on a restart, and any server can answer.

An *epoch* is a playlist snapshot in force from `starts_at` until the next epoch starts. Within an
epoch the items play back to back from `start`: a looping epoch cycles through the whole playlist
(rotated to begin at `start`), a non-looping one plays `playlist[start:]` once and then the channel is
off the air (`slot_at` returns None) until staff publish again.

All arithmetic is in integer microseconds, so item boundaries are exact: at `slot.ends_at` the next
item has offset 0, never -0.000001.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

_US = 1_000_000
_MICROSECOND = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Item:
    video_id: str
    title: str
    duration: int  # whole seconds, > 0
    item_id: int | None = None


@dataclass(frozen=True)
class Epoch:
    starts_at: dt.datetime
    playlist: tuple[Item, ...]
    loop: bool
    start: int = 0
    epoch_id: int | None = None

    @property
    def sequence(self) -> tuple[Item, ...]:
        """The items in the order this epoch plays them."""
        if self.loop:
            if not self.playlist:
                return ()
            start = self.start % len(self.playlist)
            return self.playlist[start:] + self.playlist[:start]
        return self.playlist[self.start :]

    def same_programme(self, playlist: Sequence[Item], loop: bool) -> bool:
        return self.playlist == tuple(playlist) and self.loop == loop


@dataclass(frozen=True)
class Slot:
    """One item on air: from `starts_at` to `ends_at` (server time); `offset` seconds in at the asked moment."""

    item: Item
    starts_at: dt.datetime
    ends_at: dt.datetime
    offset: float
    epoch: Epoch
    index: int  # position in epoch.sequence


def epoch_in_force(epochs: Sequence[Epoch], at: dt.datetime) -> Epoch | None:
    """The last epoch started at or before `at` (ties: the last given). `epochs` sorted by starts_at."""
    current = None
    for epoch in epochs:
        if epoch.starts_at <= at:
            current = epoch
        else:
            break
    return current


def _next_start(epochs: Sequence[Epoch], epoch: Epoch) -> dt.datetime | None:
    for candidate in epochs:
        if candidate.starts_at > epoch.starts_at:
            return candidate.starts_at
    return None


def slot_at(epochs: Sequence[Epoch], at: dt.datetime) -> Slot | None:
    """What plays at `at`, or None when the channel is off the air (not started, empty, or a finished
    non-looping playlist)."""
    epoch = epoch_in_force(epochs, at)
    if epoch is None:
        return None
    sequence = epoch.sequence
    total = sum(item.duration for item in sequence) * _US
    if total == 0:
        return None
    elapsed = (at - epoch.starts_at) // _MICROSECOND
    cycles = 0
    if elapsed >= total:
        if not epoch.loop:
            return None
        cycles, elapsed = divmod(elapsed, total)
    cursor = 0
    for index, item in enumerate(sequence):
        length = item.duration * _US
        if elapsed < cursor + length:
            starts_at = epoch.starts_at + (cycles * total + cursor) * _MICROSECOND
            ends_at = starts_at + length * _MICROSECOND
            following = _next_start(epochs, epoch)
            if following is not None and following < ends_at:
                # Epochs start at item boundaries by construction; clip anyway so that the function is
                # total: whatever the input, an item never plays past the start of the next epoch.
                ends_at = following
            return Slot(
                item=item,
                starts_at=starts_at,
                ends_at=ends_at,
                offset=(elapsed - cursor) / _US,
                epoch=epoch,
                index=index,
            )
        cursor += length
    return None  # unreachable: elapsed < total


def slot_after(epochs: Sequence[Epoch], slot: Slot) -> Slot | None:
    """What plays when `slot` ends (it may belong to an epoch that is still pending)."""
    return slot_at(epochs, slot.ends_at)


def slots_overlapping(epochs: Sequence[Epoch], start: dt.datetime, end: dt.datetime) -> list[Slot]:
    """Every item on air at some moment of [start, end], in order: what a viewer whose clock or player
    is a few seconds early or late can legitimately be playing."""
    found: list[Slot] = []
    moment = start
    while moment <= end:
        slot = slot_at(epochs, moment)
        if slot is None:  # off the air at `moment`: a later epoch may still start within the window
            upcoming = next((epoch.starts_at for epoch in epochs if epoch.starts_at > moment), None)
            if upcoming is None or upcoming > end:
                break
            moment = upcoming
            continue
        found.append(slot)
        moment = slot.ends_at
    return found


def continuation_start(current: Slot | None, playlist: Sequence[Item]) -> int:
    """Where a newly published playlist starts when `current` ends: right after the current item.

    - the item playing now is still in the playlist: the one after it (in the new order);
    - it was removed: the first item that followed it in the old playlist and survived the edit;
    - nothing of the old playlist follows it any more: the end (a non-looping channel has finished;
      a looping one wraps to the top);
    - none of the old playlist survived (a new playlist): the top.
    Nothing on air: the top.
    """
    if current is None:
        return 0
    ids = [item.item_id for item in playlist]
    playing = current.item.item_id
    if playing in ids:
        return ids.index(playing) + 1
    old = [item.item_id for item in current.epoch.playlist]
    position = old.index(playing) if playing in old else -1
    following = old[position + 1 :] + (old[:position] if current.epoch.loop else [])
    for item_id in following:
        if item_id in ids:
            return ids.index(item_id)
    if any(item_id in ids for item_id in old):
        return len(ids)
    return 0


def next_epoch(current: Slot | None, playlist: Sequence[Item], loop: bool, now: dt.datetime) -> Epoch:
    """The epoch that publishes `playlist` without cutting the video on air: it starts when `current`
    ends (now, when nothing is on air)."""
    starts_at = current.ends_at if current is not None else now
    start = continuation_start(current, playlist)
    if loop and playlist:
        start %= len(playlist)
    return Epoch(starts_at=starts_at, playlist=tuple(playlist), loop=loop, start=start)
