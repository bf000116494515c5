/* What is on air at a moment: pure functions of a playlist, when it started and the time. No DOM, no I/O.
 *
 * The server owns the schedule (livestream/schedule.py); the page only knows the item on air and the next
 * one, each with its start and end in server milliseconds. slotAt and slotIn mirror the server's epoch
 * arithmetic over what the page knows, so that every second the page can say, without asking, which
 * video plays and how far into it; knownSlot is that question asked of a GET .../now answer.
 *
 * Times are server milliseconds; boundaries are whole milliseconds (a duration in seconds is rounded to
 * the millisecond), so at an item's end the next one is at offset 0, never -0.001.
 */

/* An item's length in ms; 0 for a duration that is missing, zero, negative or not a number: such an item
 * takes no time and never plays (the server refuses them; a malformed answer must not stall the page). */
export function lengthMs(item) {
  const seconds = Number(item && item.duration);
  return Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : 0;
}

/* `playlist`: { items: [{ duration (seconds), ... }], loop, version } (or just the array of items: played
 * once). The items play back to back from `startedAt`; a looping playlist starts over at its end.
 *
 * Returns { item, index, offset (seconds into the item), startsAt, endsAt, version }, or null when
 * nothing plays: before `startedAt`, an empty playlist (or one of items that take no time), or past the
 * end of a playlist that does not loop. */
export function slotAt(playlist, startedAt, now) {
  const items = Array.isArray(playlist) ? playlist : (playlist && playlist.items) || [];
  const loop = !Array.isArray(playlist) && Boolean(playlist && playlist.loop);
  if (!Number.isFinite(startedAt) || !Number.isFinite(now) || now < startedAt) return null;
  const lengths = items.map(lengthMs);
  const total = lengths.reduce(function (a, b) {
    return a + b;
  }, 0);
  if (total === 0) return null;
  let elapsed = now - startedAt;
  let cycleStart = startedAt;
  if (elapsed >= total) {
    if (!loop) return null;
    let cycles = Math.floor(elapsed / total);
    // The division can round across a cycle's end for a fractional `now`: step to the cycle
    // that really holds `now`, so that an offset is never negative.
    if (startedAt + cycles * total > now) cycles -= 1;
    else if (startedAt + (cycles + 1) * total <= now) cycles += 1;
    cycleStart = startedAt + cycles * total;
    elapsed = now - cycleStart;
  }
  let cursor = 0;
  for (let index = 0; index < items.length; index++) {
    const length = lengths[index];
    if (length > 0 && elapsed < cursor + length) {
      const startsAt = cycleStart + cursor;
      return {
        item: items[index],
        index: index,
        offset: (now - startsAt) / 1000,
        startsAt: startsAt,
        endsAt: startsAt + length,
        version: Array.isArray(playlist) ? undefined : playlist.version,
      };
    }
    cursor += length;
  }
  return null; // unreachable: 0 <= elapsed < total
}

/* A playlist edited over time: `versions` = [{ playlist, startedAt }], sorted by startedAt. The version in
 * force is the last one started at or before `now` (an edit takes over at its start); an item of an
 * earlier version never plays past the start of the next one (its endsAt is clipped to it). */
export function slotIn(versions, now) {
  let current = -1;
  for (let i = 0; i < versions.length; i++) {
    if (versions[i].startedAt <= now) current = i;
    else break;
  }
  if (current < 0) return null;
  const version = versions[current];
  const slot = slotAt(version.playlist, version.startedAt, now);
  if (!slot) return null;
  const following = versions[current + 1];
  if (following && following.startedAt < slot.endsAt) slot.endsAt = following.startedAt;
  return slot;
}

/* The item on air at server time `now` according to a GET /api/v1/live/<channel>/now answer: the
 * answer's own item or next object (the same object, so callers can tell them apart), null when off the
 * air, undefined when beyond what the answer knows (ask the server again).
 *
 * The answer's item and next are two versions of one item each, each as long as the server scheduled it
 * (ends_at - starts_at, which an edit may have cut short): a playlist edit shows here as a new next. */
export function knownSlot(onAir, now) {
  if (!onAir || !onAir.item) return null;
  // The server said this item is on air: a reading before its start is our clock estimate's error.
  if (now < onAir.item.starts_at) return onAir.item;
  const versions = [onAir.item, onAir.next].filter(Boolean).map(function (slot) {
    return {
      startedAt: slot.starts_at,
      playlist: { items: [{ duration: (slot.ends_at - slot.starts_at) / 1000, slot: slot }], loop: false },
    };
  });
  const found = slotIn(versions, now);
  if (found) return found.item.slot;
  // Past the end of a non-looping playlist with nothing next: off the air. Otherwise ask the server.
  if (!onAir.next && !(onAir.channel && onAir.channel.loop)) return null;
  return undefined;
}
