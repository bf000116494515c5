// earning.js with a fake fetch and fake timers: the page reports each video's length once, with its lease.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createEarning } from "../../livestream/static/livestream/earning.js";

function harness(state) {
  const sent = [];
  const timers = [];
  const view = new Proxy({}, { get: () => () => {} });
  const earning = createEarning({
    urls: { lease: "/lease", heartbeat: "/heartbeat", duration: "/duration" },
    view,
    playerState: () => state,
    visible: () => true,
    csrfToken: () => "t",
    heartbeatSeconds: 30,
    fetch: async (url, init) => {
      sent.push({ url, body: JSON.parse(init.body) });
      const data = url === "/lease" ? { lease: "L1", heartbeat_seconds: 30, earning: true } : { counted: true };
      return { status: url === "/lease" ? 201 : 200, json: async () => data };
    },
    setTimeout: (fn) => timers.push(fn),
    clearTimeout: () => {},
  });
  return { earning, sent, timers };
}

test("the length of each video is reported once, with the lease", async () => {
  const state = { videoId: "AAAAAAAAAAA", position: 5, duration: 612.4, playing: true, state: "playing" };
  const { earning, sent } = harness(state);
  await earning.takeLease();

  await earning.heartbeat();
  await earning.heartbeat();
  state.videoId = "BBBBBBBBBBB";
  state.duration = 300;
  await earning.heartbeat();

  const reports = sent.filter((request) => request.url === "/duration").map((request) => request.body);
  assert.deepEqual(reports, [
    { lease: "L1", video_id: "AAAAAAAAAAA", duration: 612.4 },
    { lease: "L1", video_id: "BBBBBBBBBBB", duration: 300 },
  ]);
});

test("no length is reported before the player knows it", async () => {
  const state = { videoId: "AAAAAAAAAAA", position: 0, duration: 0, playing: true, state: "playing" };
  const { earning, sent } = harness(state);
  await earning.takeLease();

  await earning.heartbeat();

  assert.equal(sent.filter((request) => request.url === "/duration").length, 0);
});
