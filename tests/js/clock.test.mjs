// The clock offset (livestream/static/livestream/clock.js): NTP-style samples, the best one kept.
import assert from "node:assert/strict";
import { test } from "node:test";

import { addSample, bestOffset, consistent, createClock, measure } from "../../livestream/static/livestream/clock.js";

test("a symmetric round trip gives the exact offset and the network delay", () => {
  // The server is 5 s ahead; 40 ms each way; it held the request 2 ms.
  const t0 = 1_000_000;
  const sample = measure(t0, t0 + 5_000 + 40, t0 + 5_000 + 42, t0 + 82);
  assert.deepEqual(sample, { delay: 80, offset: 5_000 });
});

test("an asymmetric round trip errs by at most half its delay", () => {
  const t0 = 1_000_000;
  const sample = measure(t0, t0 - 2_000 + 90, t0 - 2_000 + 90, t0 + 100); // 90 ms up, 10 down; true -2000
  assert.equal(sample.delay, 100);
  assert.ok(Math.abs(sample.offset - -2_000) <= sample.delay / 2);
});

test("impossible samples are refused: negative delay (the page's clock went back), bad numbers", () => {
  assert.equal(measure(1_000, 5_000, 5_001, 900), null); // back before it was sent
  assert.equal(measure(1_000, 5_002, 5_000, 1_100), null); // the server sent before it received
  assert.equal(measure(1_000, undefined, 5_000, 1_100), null);
  assert.equal(measure(1_000, "5000", 5_000, 1_100), null);
  assert.deepEqual(addSample([], null), []);
});

test("the lowest-delay sample wins: one slow round trip (an outlier) never moves the estimate", () => {
  let samples = [];
  samples = addSample(samples, { delay: 30, offset: 100 });
  samples = addSample(samples, { delay: 20, offset: 102 });
  samples = addSample(samples, { delay: 900, offset: 500 }); // slow and lopsided, but consistent
  samples = addSample(samples, { delay: 25, offset: 98 });
  assert.equal(samples.length, 4);
  assert.equal(bestOffset(samples), 102);
});

test("no samples, no estimate", () => {
  assert.equal(bestOffset([]), null);
});

test("only the last samples are kept", () => {
  let samples = [];
  for (let i = 0; i < 15; i++) samples = addSample(samples, { delay: 50 + i, offset: 0 }, 10);
  assert.equal(samples.length, 10);
  assert.equal(samples[0].delay, 55);
});

test("a clock that jumps: samples the new one contradicts are dropped, however short their round trip", () => {
  let samples = [];
  for (const delay of [10, 12, 15]) samples = addSample(samples, { delay, offset: 0 });
  // The page's clock was set back an hour: the server now looks an hour ahead, over a slower network.
  samples = addSample(samples, { delay: 60, offset: 3_600_000 });
  assert.deepEqual(samples, [{ delay: 60, offset: 3_600_000 }]);
  assert.equal(bestOffset(samples), 3_600_000);
  assert.ok(!consistent({ delay: 10, offset: 0 }, { delay: 60, offset: 3_600_000 }));
  assert.ok(consistent({ delay: 10, offset: 0 }, { delay: 60, offset: 30 }));
});

function fakeServer(offsetMs, legs) {
  // A page clock that starts at 1e6 and advances only with the network legs; the server is offsetMs ahead.
  let local = 1_000_000;
  let index = 0;
  return {
    local: () => local,
    fetch: async (url, options) => {
      assert.equal(url, "/api/v1/time");
      assert.equal(options.cache, "no-store");
      const [up, down] = legs[index++ % legs.length];
      local += up;
      const received = local + offsetMs;
      local += 1;
      const sent = local + offsetMs;
      local += down;
      return { ok: true, json: async () => ({ received, sent }) };
    },
  };
}

test("createClock syncs to the best of its round trips and reads the server's time", async () => {
  const server = fakeServer(7_000, [
    [300, 20], // lopsided and slow: 140 ms off on its own
    [10, 10],
    [200, 200],
  ]);
  const clock = createClock("/api/v1/time", server);
  await clock.sync(3);
  assert.equal(clock.offset, 7_000);
  assert.equal(clock.now(), server.local() + 7_000);
});

test("createClock keeps its estimate through failed round trips", async () => {
  let calls = 0;
  const clock = createClock("/t", {
    local: () => 1_000,
    fetch: async () => {
      calls += 1;
      if (calls === 2) throw new Error("offline");
      if (calls === 3) return { ok: false, status: 503 };
      return { ok: true, json: async () => ({ received: 1_500, sent: 1_500 }) };
    },
  });
  await clock.sync(3);
  assert.equal(calls, 3);
  assert.equal(clock.offset, 500);
});
