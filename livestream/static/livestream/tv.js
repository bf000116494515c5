/* Tally TV: a synced broadcast player and honest watch-minute heartbeats. ES modules, no build step.
 *
 * The server owns the schedule (GET /api/v1/live/<channel>/now gives each item's start and end in server
 * milliseconds). The page estimates its clock offset from the server NTP-style (clock.js) and, every
 * second, computes where the broadcast is (schedule.js) and corrects the player (players.js) when it is
 * more than 2 s off — the way CyTube, Syncplay and Jellyfin SyncPlay keep viewers together. Members send a
 * heartbeat every half minute (earning.js); the server alone decides what counts. view.js is the DOM.
 * This file wires them together.
 */

import { createClock } from "./clock.js";
import { createEarning } from "./earning.js";
import { createPlayer } from "./players.js";
import { knownSlot } from "./schedule.js";
import { createView, formatTime } from "./view.js";

const DRIFT_SECONDS = 2; // seek only beyond this: smaller corrections would stutter more than they help
const SCHEDULE_REFRESH_MS = 15000; // picks up playlist edits (they show as a new "next")

const view = createView(document);
const config = view.config();
const clock = createClock(config.urls.time);

// --- the schedule, as the server last told it ------------------------------------------------------------

let onAir = config.onAir;
let lastFetch = 0;
let fetching = null;

function refreshSchedule() {
  if (fetching) return fetching;
  lastFetch = Date.now();
  fetching = fetch(config.urls.now, { cache: "no-store", credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error("now " + response.status);
      return response.json();
    })
    .then(function (body) {
      onAir = body;
    })
    .catch(function () {})
    .then(function () {
      fetching = null;
    });
  return fetching;
}

function slotAt(t) {
  return knownSlot(onAir, t);
}

// --- keeping the player on the broadcast -----------------------------------------------------------------

let loadedKey = null;
const skipped = new Set();
let idleSince = null;
let unavailable = false;

function keyOf(slot) {
  return slot.video_id + "@" + slot.starts_at;
}

const player = createPlayer(view.playerElement(), config.fakePlayer, {
  onEnded: function () {
    tick(); // the next item may be due now: don't wait for the next second
  },
  onUnavailable: function () {
    unavailable = true;
    loadedKey = null;
    tick();
  },
  onError: function () {
    // 101 and 150: the owner does not allow embedding. That video is skipped for this viewer: the
    // broadcast goes on, and the page rejoins it with the next item. Other errors (removed, private,
    // malformed) cannot play either, so they are skipped the same way.
    if (loadedKey) skipped.add(loadedKey);
    tick();
  },
});

function tick() {
  const now = clock.now();
  const slot = slotAt(now);
  const sinceFetch = Date.now() - lastFetch;
  if (
    sinceFetch > SCHEDULE_REFRESH_MS ||
    (slot === undefined && sinceFetch > 1000) ||
    (slot && onAir && slot !== onAir.item && sinceFetch > 1000) // moved on to "next": learn the one after
  ) {
    refreshSchedule().then(function () {
      if (slot !== slotAt(clock.now())) tick();
    });
  }
  view.showSlot(slot, slot && slot === onAir.item ? onAir.next : null, now);
  if (!slot) {
    if (loadedKey) player.pause(); // off the air: no sound from behind the overlay
    loadedKey = null;
    view.showOverlay(slot === null ? "The channel is off the air. Come back soon." : "Tuning in…");
    return;
  }
  if (unavailable) {
    view.showOverlay("YouTube can't be reached from here right now. Reload the page to try again.");
    return;
  }
  const key = keyOf(slot);
  const target = (now - slot.starts_at) / 1000;
  if (skipped.has(key)) {
    view.showOverlay(
      "This video can't be played here, so it's skipped for you. The broadcast continues in " +
        formatTime((slot.ends_at - now) / 1000) +
        "."
    );
    return;
  }
  view.hideOverlay();
  if (loadedKey !== key) {
    loadedKey = key;
    idleSince = null;
    player.load(slot, target);
    return;
  }
  const state = player.state();
  // Never correct while buffering (the position is about to move on its own); an ended video waits
  // for the schedule to move to the next item.
  if (state === "buffering" || state === "ended" || state === "error") return;
  if (state !== "playing") {
    idleSince = idleSince || Date.now();
    // Autoplay blocked or paused by the viewer: offer to (re)join instead of fighting the browser.
    view.showPlayButton(Date.now() - idleSince >= 3000);
    return;
  }
  idleSince = null;
  view.showPlayButton(false);
  if (Math.abs(player.currentTime() - target) > DRIFT_SECONDS) player.seek(target);
}

view.onPlay(function () {
  player.play();
  view.showPlayButton(false);
  const slot = slotAt(clock.now());
  if (slot) player.seek((clock.now() - slot.starts_at) / 1000);
});

let muted = true;
view.onSound(function () {
  muted = !muted;
  player.setMuted(muted);
  view.showSound(muted);
});

function playerState() {
  const state = player.state();
  return {
    videoId: player.videoId(),
    position: player.currentTime(),
    duration: player.duration(),
    playing: state === "playing",
    state: state,
  };
}

// --- earning (members only) ------------------------------------------------------------------------------

const earning = config.member
  ? createEarning({
      urls: config.urls,
      heartbeatSeconds: config.heartbeatSeconds,
      view: view,
      playerState: playerState,
      visible: view.visible,
      csrfToken: view.csrfToken,
    })
  : null;

if (earning) {
  view.onTakeover(earning.takeLease);
  view.onVisibilityChange(earning.visibilityChanged);
}

// --- start -----------------------------------------------------------------------------------------------

window.tallyTv = {
  state: function () {
    const state = playerState();
    return { videoId: state.videoId, position: state.position, playing: state.playing };
  },
  clockOffset: function () {
    return clock.offset;
  },
  schedule: function () {
    return onAir;
  },
};

clock
  .sync(5)
  .then(refreshSchedule)
  .then(function () {
    tick();
    setInterval(tick, 1000);
    setInterval(function () {
      clock.sample().catch(function () {});
    }, 30000);
    if (earning) earning.start();
  });
