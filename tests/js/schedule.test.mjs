// slotAt / slotIn / knownSlot (livestream/static/livestream/schedule.js): the page's idea of what is on air.
import assert from "node:assert/strict";
import { test } from "node:test";

import { knownSlot, lengthMs, slotAt, slotIn } from "../../livestream/static/livestream/schedule.js";

const T = 1_772_730_000_000; // server ms
const a = { video_id: "a", duration: 10 };
const b = { video_id: "b", duration: 20 };
const c = { video_id: "c", duration: 30 };

test("the first moment of the playlist is the first item at offset 0", () => {
  const slot = slotAt({ items: [a, b], loop: false }, T, T);
  assert.equal(slot.item, a);
  assert.equal(slot.offset, 0);
  assert.equal(slot.startsAt, T);
  assert.equal(slot.endsAt, T + 10_000);
});

test("the last millisecond of a video is that video; its end is the next one at offset 0", () => {
  const playlist = { items: [a, b, c], loop: false };
  const last = slotAt(playlist, T, T + 9_999);
  assert.equal(last.item, a);
  assert.equal(last.offset, 9.999);
  const lastSecond = slotAt(playlist, T, T + 9_000.5);
  assert.equal(lastSecond.item, a);
  const next = slotAt(playlist, T, T + 10_000);
  assert.equal(next.item, b);
  assert.equal(next.index, 1);
  assert.equal(next.offset, 0);
  assert.ok(!Object.is(next.offset, -0));
  assert.equal(next.startsAt, last.endsAt);
});

test("fractional clock readings near a boundary never give a negative offset", () => {
  const playlist = { items: [a, b], loop: true };
  for (const now of [T + 9_999.9999, T + 10_000, T + 10_000.0001, T + 29_999.75, T + 30_000.25]) {
    const slot = slotAt(playlist, T, now);
    assert.ok(slot.offset >= 0, `${now}: ${slot.offset}`);
    assert.ok(slot.offset < slot.item.duration, `${now}: ${slot.offset}`);
    assert.ok(slot.startsAt <= now && now < slot.endsAt);
  }
});

test("a looping playlist wraps around its end, cycle after cycle", () => {
  const playlist = { items: [a, b, c], loop: true }; // 60 s a cycle
  assert.equal(slotAt(playlist, T, T + 59_999).item, c);
  const wrapped = slotAt(playlist, T, T + 60_000);
  assert.equal(wrapped.item, a);
  assert.equal(wrapped.offset, 0);
  assert.equal(wrapped.startsAt, T + 60_000);
  const later = slotAt(playlist, T, T + 1000 * 60_000 + 15_000); // 1000 cycles on, 5 s into b
  assert.equal(later.item, b);
  assert.equal(later.offset, 5);
  assert.equal(later.endsAt, T + 1000 * 60_000 + 30_000);
});

test("a playlist that does not loop goes off the air at its end", () => {
  const playlist = { items: [a, b], loop: false };
  assert.equal(slotAt(playlist, T, T + 29_999).item, b);
  assert.equal(slotAt(playlist, T, T + 30_000), null);
  assert.equal(slotAt([a, b], T, T + 30_000), null); // a bare array plays once
});

test("before the start nothing plays", () => {
  assert.equal(slotAt({ items: [a], loop: true }, T, T - 1), null);
  assert.equal(slotAt({ items: [a], loop: true }, T, T - 86_400_000), null);
});

test("an empty playlist, or one of items that take no time, plays nothing", () => {
  assert.equal(slotAt({ items: [], loop: true }, T, T + 5), null);
  assert.equal(slotAt(null, T, T + 5), null);
  const nothing = [{ duration: 0 }, { duration: -5 }, { duration: NaN }, { duration: "x" }, {}];
  assert.equal(slotAt({ items: nothing, loop: true }, T, T + 5), null);
});

test("zero, negative and malformed durations are skipped, not played", () => {
  const broken = { video_id: "broken", duration: 0 };
  const negative = { video_id: "negative", duration: -10 };
  const playlist = { items: [broken, a, negative, b, { video_id: "nan", duration: NaN }], loop: true };
  assert.equal(slotAt(playlist, T, T).item, a);
  assert.equal(slotAt(playlist, T, T).index, 1);
  const second = slotAt(playlist, T, T + 10_000);
  assert.equal(second.item, b);
  assert.equal(second.offset, 0);
  assert.equal(slotAt(playlist, T, T + 30_000).item, a); // wraps after b: 30 s a cycle
  assert.deepEqual([0, -1, NaN, undefined].map((duration) => lengthMs({ duration })), [0, 0, 0, 0]);
});

test("non-numeric times play nothing", () => {
  assert.equal(slotAt({ items: [a] }, NaN, T), null);
  assert.equal(slotAt({ items: [a] }, T, undefined), null);
});

test("a playlist edit mid-video takes over when the video on air ends (a new version)", () => {
  // Version 1 (a, b, c) from T; 5 s into b, staff publish (c, a): the server starts version 2 when b ends.
  const versions = [
    { startedAt: T, playlist: { items: [a, b, c], loop: true, version: 1 } },
    { startedAt: T + 30_000, playlist: { items: [c, a], loop: true, version: 2 } },
  ];
  const during = slotIn(versions, T + 15_000);
  assert.equal(during.item, b);
  assert.equal(during.version, 1);
  assert.equal(during.endsAt, T + 30_000);
  assert.equal(slotIn(versions, T + 29_999).item, b);
  const after = slotIn(versions, T + 30_000);
  assert.equal(after.item, c);
  assert.equal(after.version, 2);
  assert.equal(after.offset, 0);
  assert.equal(slotIn(versions, T + 60_000).item, a); // version 2's own order
  assert.equal(slotIn(versions, T - 1), null);
});

test("a version that starts mid-item cuts that item short", () => {
  const versions = [
    { startedAt: T, playlist: { items: [c], loop: true, version: 1 } },
    { startedAt: T + 12_000, playlist: { items: [a], loop: true, version: 2 } },
  ];
  assert.equal(slotIn(versions, T + 11_999).endsAt, T + 12_000);
  assert.equal(slotIn(versions, T + 12_000).item, a);
});

// --- knownSlot: the question asked of a GET .../now answer ---

function answer({ next = true, loop = true } = {}) {
  const item = { video_id: "v1", title: "Video 1", duration: 10, starts_at: T, ends_at: T + 10_000 };
  const following = next
    ? { video_id: "v2", title: "Video 2", duration: 20, starts_at: T + 10_000, ends_at: T + 30_000 }
    : null;
  return { channel: { loop }, item, next: following };
}

test("knownSlot gives the answer's own item, then its next at the boundary", () => {
  const onAir = answer();
  assert.equal(knownSlot(onAir, T + 9_999), onAir.item);
  assert.equal(knownSlot(onAir, T + 10_000), onAir.next);
  assert.equal(knownSlot(onAir, T + 29_999), onAir.next);
});

test("knownSlot: beyond what the answer knows is undefined (ask again); a finished channel is null", () => {
  assert.equal(knownSlot(answer(), T + 30_000), undefined);
  assert.equal(knownSlot(answer({ next: false, loop: true }), T + 10_000), undefined);
  assert.equal(knownSlot(answer({ next: false, loop: false }), T + 10_000), null);
  assert.equal(knownSlot({ channel: { loop: true }, item: null, next: null }, T), null);
  assert.equal(knownSlot(null, T), null);
});

test("knownSlot: a reading a little before the item's start is clock error, not off the air", () => {
  const onAir = answer();
  assert.equal(knownSlot(onAir, T - 300), onAir.item);
});

test("knownSlot: an edit mid-video shows as a new next, the video on air plays on", () => {
  const before = answer();
  const edited = answer();
  edited.next = { video_id: "v9", title: "New", duration: 5, starts_at: T + 10_000, ends_at: T + 15_000 };
  assert.equal(knownSlot(before, T + 5_000).video_id, "v1");
  assert.equal(knownSlot(edited, T + 5_000).video_id, "v1");
  assert.equal(knownSlot(edited, T + 10_000).video_id, "v9");
  assert.equal(knownSlot(edited, T + 15_000), undefined);
});

test("knownSlot: an item the server cut short (ends_at before its duration) ends when the server says", () => {
  const onAir = answer();
  onAir.item.ends_at = T + 4_000;
  onAir.next.starts_at = T + 4_000;
  assert.equal(knownSlot(onAir, T + 3_999), onAir.item);
  assert.equal(knownSlot(onAir, T + 4_000), onAir.next);
});
