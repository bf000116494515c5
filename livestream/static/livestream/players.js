/* Players: the YouTube IFrame player and the offline fake, behind one interface.
 *
 *   load(item, offsetSeconds)  item: { video_id, title, duration } (the fake has no video to learn the
 *                              title and length from, so it takes the schedule's)
 *   play(), pause(), seek(seconds), setMuted(bool)
 *   currentTime(), duration(), videoId()
 *   state(): "unstarted" | "playing" | "paused" | "buffering" | "ended" | "cued" | "error"
 *
 * events: onEnded(), onError(code), onUnavailable() (YouTube's script can't be loaded), onBlocked().
 * Nothing runs at import: `window` and `document` are read when a player is created.
 */

import { formatTime } from "./view.js";

function notify(events, name, value) {
  if (events[name]) events[name](value);
}

export function FakePlayer(element, events) {
  // Driven by the page's clock like a real video would be, with no network: tests and offline demos.
  const refuse = new Set(window.TALLY_FAKE_REFUSE || []); // ids that act like "embedding not allowed"
  element.classList.add("tv-fake");
  element.innerHTML =
    '<div class="tv-fake-screen"><p class="tv-fake-label">Test player · no network</p>' +
    '<p class="tv-fake-title"></p><p class="tv-fake-time"></p><div class="tv-fake-bar"><span></span></div></div>';
  let item = null;
  let base = 0;
  let startedAt = 0;
  let state = "unstarted";

  function currentTime() {
    if (!item) return 0;
    if (state !== "playing") return base;
    const current = base + (performance.now() - startedAt) / 1000;
    if (current >= item.duration) {
      base = item.duration;
      state = "ended";
      setTimeout(function () {
        notify(events, "onEnded");
      }, 0);
      return base;
    }
    return current;
  }
  function render() {
    const now = currentTime();
    element.dataset.videoId = item ? item.video_id : "";
    element.querySelector(".tv-fake-title").textContent = item ? item.title : "";
    element.querySelector(".tv-fake-time").textContent = item
      ? formatTime(now) + " / " + formatTime(item.duration)
      : "";
    element.querySelector(".tv-fake-bar span").style.width = item ? (100 * now) / item.duration + "%" : "0";
  }
  setInterval(render, 250);

  return {
    load: function (next, seconds) {
      item = next;
      base = Math.max(0, Math.min(seconds, next.duration));
      if (refuse.has(next.video_id)) {
        state = "error";
        setTimeout(function () {
          notify(events, "onError", 150);
        }, 0);
        return;
      }
      state = "playing";
      startedAt = performance.now();
      render();
    },
    seek: function (seconds) {
      if (!item) return;
      base = Math.max(0, Math.min(seconds, item.duration));
      startedAt = performance.now();
      if (state === "ended" && base < item.duration) state = "playing";
    },
    play: function () {
      if (item && state !== "error" && state !== "playing") {
        state = "playing";
        startedAt = performance.now();
      }
    },
    pause: function () {
      if (state === "playing") {
        base = currentTime();
        state = "paused";
      }
    },
    currentTime: currentTime,
    duration: function () {
      return item ? item.duration : 0;
    },
    videoId: function () {
      return item ? item.video_id : null;
    },
    state: function () {
      currentTime();
      return state;
    },
    setMuted: function () {},
  };
}

export function YouTubePlayer(element, events) {
  const STATES = { "-1": "unstarted", 0: "ended", 1: "playing", 2: "paused", 3: "buffering", 5: "cued" };
  let player = null;
  let ready = false;
  let failed = false;
  let current = null;
  let wanted = null;
  let muted = true;

  function create() {
    const createdWith = wanted.item.video_id;
    player = new window.YT.Player(element, {
      width: "100%",
      height: "100%",
      videoId: wanted.item.video_id,
      playerVars: {
        autoplay: 1,
        mute: 1, // browsers only allow autoplay without sound; the page offers "tap for sound"
        playsinline: 1,
        controls: 0, // a broadcast: no scrubbing away from the schedule
        disablekb: 1,
        rel: 0,
        iv_load_policy: 3,
        start: Math.floor(wanted.seconds),
        origin: window.location.origin,
      },
      events: {
        onReady: function () {
          ready = true;
          if (muted) player.mute();
          if (wanted.item.video_id !== createdWith) {
            // The schedule moved on while the player was loading.
            player.loadVideoById({ videoId: wanted.item.video_id, startSeconds: wanted.seconds });
          } else {
            player.playVideo();
          }
        },
        onStateChange: function (event) {
          failed = false;
          if (STATES[event.data] === "ended") notify(events, "onEnded");
        },
        onError: function (event) {
          failed = true;
          notify(events, "onError", event.data);
        },
        onAutoplayBlocked: function () {
          notify(events, "onBlocked");
        },
      },
    });
  }

  function loadApi() {
    if (window.YT && window.YT.Player) return create();
    const previous = window.onYouTubeIframeAPIReady;
    window.onYouTubeIframeAPIReady = function () {
      if (previous) previous();
      create();
    };
    const script = document.createElement("script");
    script.src = "https://www.youtube.com/iframe_api";
    script.onerror = function () {
      player = null; // try again with the next load
      notify(events, "onUnavailable");
    };
    document.head.appendChild(script);
  }

  return {
    load: function (item, seconds) {
      current = item;
      wanted = { item: item, seconds: seconds };
      failed = false;
      if (!player) {
        player = "loading";
        return loadApi();
      }
      if (player === "loading") return;
      if (ready) player.loadVideoById({ videoId: item.video_id, startSeconds: seconds });
    },
    seek: function (seconds) {
      if (ready) player.seekTo(seconds, true);
    },
    play: function () {
      if (ready) player.playVideo();
    },
    pause: function () {
      if (ready) player.pauseVideo();
    },
    currentTime: function () {
      return ready ? player.getCurrentTime() || 0 : 0;
    },
    duration: function () {
      // YouTube knows the video's length once it has loaded it; until then the schedule's.
      return (ready && player.getDuration()) || (current ? current.duration : 0);
    },
    videoId: function () {
      return current ? current.video_id : null;
    },
    state: function () {
      if (failed) return "error";
      if (!ready) return "unstarted";
      return STATES[player.getPlayerState()] || "unstarted";
    },
    setMuted: function (value) {
      muted = value;
      if (!ready) return;
      if (value) {
        player.mute();
      } else {
        player.unMute();
        player.setVolume(100);
      }
    },
  };
}

/* The fake when the server says so (LIVESTREAM_FAKE_PLAYER), YouTube otherwise. */
export function createPlayer(element, fake, events) {
  return (fake ? FakePlayer : YouTubePlayer)(element, events);
}
