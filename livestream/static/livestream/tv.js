/* Tally TV: a synced broadcast player and honest watch-minute heartbeats. Plain JavaScript, no build step.
 *
 * The server owns the schedule (GET /api/v1/live/<channel>/now gives each item's start and end in server
 * milliseconds). The page estimates its clock offset from the server NTP-style and, every second, computes
 * where the broadcast is and corrects the player when it is more than 2 s off — the way CyTube, Syncplay
 * and Jellyfin SyncPlay keep viewers together. Members send a heartbeat every half minute; the server alone
 * decides what counts.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("tv-config").textContent);
  var DRIFT_SECONDS = 2; // seek only beyond this: smaller corrections would stutter more than they help
  var CLOCK_SAMPLES = 10;
  var SCHEDULE_REFRESH_MS = 15000; // picks up playlist edits (they show as a new "next")

  function $(selector) {
    return document.querySelector(selector);
  }
  function setText(selector, text) {
    var element = $(selector);
    if (element) element.textContent = text;
  }
  function formatTime(seconds) {
    var whole = Math.max(0, Math.floor(seconds));
    var hours = Math.floor(whole / 3600);
    var minutes = Math.floor((whole % 3600) / 60);
    var secs = String(whole % 60).padStart(2, "0");
    return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + secs : minutes + ":" + secs;
  }

  // --- the clock: offset to the server's, from the lowest-delay of several samples ------------------------

  var clock = {
    offset: 0,
    samples: [],
    now: function () {
      return Date.now() + this.offset;
    },
    sample: function () {
      var self = this;
      var t0 = Date.now();
      return fetch(config.urls.time, { cache: "no-store", credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("time " + response.status);
          return response.json();
        })
        .then(function (body) {
          var t3 = Date.now();
          // NTP: the server held the request for (sent - received); the rest of the round trip is network.
          var delay = t3 - t0 - (body.sent - body.received);
          var offset = (body.received - t0 + (body.sent - t3)) / 2;
          self.samples.push({ delay: delay, offset: offset });
          if (self.samples.length > CLOCK_SAMPLES) self.samples.shift();
          // The sample with the shortest round trip has the smallest possible asymmetry error.
          var best = self.samples.reduce(function (a, b) {
            return b.delay < a.delay ? b : a;
          });
          self.offset = best.offset;
        });
    },
    sync: function (count) {
      var self = this;
      var chain = Promise.resolve();
      for (var i = 0; i < count; i++) {
        chain = chain.then(function () {
          return self.sample().catch(function () {});
        });
      }
      return chain;
    },
  };

  // --- the schedule, as the server last told it ----------------------------------------------------------

  var onAir = config.onAir;
  var lastFetch = 0;
  var fetching = null;

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

  // The item on air at server time `t`: null when off the air, undefined when beyond what we know.
  function slotAt(t) {
    if (!onAir || !onAir.item) return null;
    if (t < onAir.item.ends_at) return onAir.item;
    if (onAir.next && t < onAir.next.ends_at) return onAir.next;
    // Past the end of a non-looping playlist with nothing next: off the air. Otherwise ask the server.
    if (!onAir.next && !onAir.channel.loop) return null;
    return undefined;
  }

  // --- players: one small interface, the YouTube IFrame player or the offline fake ------------------------
  // load(item, seconds), seek(seconds), play(), pause(), position(), videoId(), state(), setMuted(bool)
  // state(): "unstarted" | "playing" | "paused" | "buffering" | "ended" | "cued" | "error"

  function FakePlayer(element, events) {
    // Driven by the page's clock like a real video would be, with no network: tests and offline demos.
    var refuse = new Set(window.TALLY_FAKE_REFUSE || []); // ids that act like "embedding not allowed"
    element.classList.add("tv-fake");
    element.innerHTML =
      '<div class="tv-fake-screen"><p class="tv-fake-label">Test player · no network</p>' +
      '<p class="tv-fake-title"></p><p class="tv-fake-time"></p><div class="tv-fake-bar"><span></span></div></div>';
    var item = null;
    var base = 0;
    var startedAt = 0;
    var state = "unstarted";

    function position() {
      if (!item) return 0;
      if (state !== "playing") return base;
      var current = base + (performance.now() - startedAt) / 1000;
      if (current >= item.duration) {
        base = item.duration;
        state = "ended";
        setTimeout(function () {
          events.onState("ended");
        }, 0);
        return base;
      }
      return current;
    }
    function render() {
      var now = position();
      element.dataset.videoId = item ? item.video_id : "";
      element.querySelector(".tv-fake-title").textContent = item ? item.title : "";
      element.querySelector(".tv-fake-time").textContent = item ? formatTime(now) + " / " + formatTime(item.duration) : "";
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
            events.onError(150);
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
          base = position();
          state = "paused";
        }
      },
      position: position,
      videoId: function () {
        return item ? item.video_id : null;
      },
      state: function () {
        position();
        return state;
      },
      setMuted: function () {},
    };
  }

  function YouTubePlayer(element, events) {
    var STATES = { "-1": "unstarted", 0: "ended", 1: "playing", 2: "paused", 3: "buffering", 5: "cued" };
    var player = null;
    var ready = false;
    var failed = false;
    var current = null;
    var wanted = null;
    var muted = true;

    function create() {
      var createdWith = wanted.item.video_id;
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
            events.onState(STATES[event.data] || "unstarted");
          },
          onError: function (event) {
            failed = true;
            events.onError(event.data);
          },
          onAutoplayBlocked: function () {
            if (events.onBlocked) events.onBlocked();
          },
        },
      });
    }

    function loadApi() {
      if (window.YT && window.YT.Player) return create();
      var previous = window.onYouTubeIframeAPIReady;
      window.onYouTubeIframeAPIReady = function () {
        if (previous) previous();
        create();
      };
      var script = document.createElement("script");
      script.src = "https://www.youtube.com/iframe_api";
      script.onerror = function () {
        player = null; // try again with the next load
        events.onUnavailable();
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
      position: function () {
        return ready ? player.getCurrentTime() || 0 : 0;
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

  // --- keeping the player on the broadcast ---------------------------------------------------------------

  var overlay = $("[data-tv-overlay]");
  var playButton = $("[data-tv-play]");
  var soundButton = $("[data-tv-sound]");
  var loadedKey = null;
  var skipped = new Set();
  var idleSince = null;
  var unavailable = false;

  function keyOf(slot) {
    return slot.video_id + "@" + slot.starts_at;
  }

  var player = (config.fakePlayer ? FakePlayer : YouTubePlayer)(document.getElementById("tv-player"), {
    onState: function (state) {
      if (state === "ended") tick(); // the next item may be due now: don't wait for the next second
    },
    onUnavailable: function () {
      unavailable = true;
      loadedKey = null;
      tick();
    },
    onError: function (code) {
      // 101 and 150: the owner does not allow embedding. That video is skipped for this viewer: the
      // broadcast goes on, and the page rejoins it with the next item. Other errors (removed, private,
      // malformed) cannot play either, so they are skipped the same way.
      if (loadedKey) skipped.add(loadedKey);
      tick();
    },
  });

  function showOverlay(text) {
    setText("[data-tv-overlay-text]", text);
    overlay.hidden = false;
  }

  function render(slot, now) {
    var live = $("[data-tv-live]");
    if (!slot) {
      setText("[data-tv-title]", slot === null ? "Off the air" : "Tuning in…");
      setText("[data-tv-elapsed]", "");
      setText("[data-tv-duration]", "");
      $("[data-tv-progress]").style.width = "0";
      $("[data-tv-next-row]").hidden = true;
      if (live) live.classList.add("off");
      return;
    }
    if (live) live.classList.remove("off");
    var elapsed = (now - slot.starts_at) / 1000;
    setText("[data-tv-title]", slot.title);
    setText("[data-tv-elapsed]", formatTime(elapsed));
    setText("[data-tv-duration]", formatTime(slot.duration));
    $("[data-tv-progress]").style.width = Math.min(100, (100 * elapsed) / slot.duration) + "%";
    var next = slot === onAir.item ? onAir.next : null;
    $("[data-tv-next-row]").hidden = !next;
    if (next) {
      setText("[data-tv-next]", next.title);
      setText("[data-tv-next-in]", "in " + formatTime((slot.ends_at - now) / 1000));
    }
  }

  function tick() {
    var now = clock.now();
    var slot = slotAt(now);
    var sinceFetch = Date.now() - lastFetch;
    if (
      sinceFetch > SCHEDULE_REFRESH_MS ||
      (slot === undefined && sinceFetch > 1000) ||
      (slot && onAir && slot !== onAir.item && sinceFetch > 1000) // moved on to "next": learn the one after
    ) {
      refreshSchedule().then(function () {
        if (slot !== slotAt(clock.now())) tick();
      });
    }
    render(slot, now);
    if (!slot) {
      if (loadedKey) player.pause(); // off the air: no sound from behind the overlay
      loadedKey = null;
      showOverlay(slot === null ? "The channel is off the air. Come back soon." : "Tuning in…");
      return;
    }
    if (unavailable) {
      showOverlay("YouTube can't be reached from here right now. Reload the page to try again.");
      return;
    }
    var key = keyOf(slot);
    var target = (now - slot.starts_at) / 1000;
    if (skipped.has(key)) {
      showOverlay(
        "This video can't be played here, so it's skipped for you. The broadcast continues in " +
          formatTime((slot.ends_at - now) / 1000) + "."
      );
      return;
    }
    overlay.hidden = true;
    if (loadedKey !== key) {
      loadedKey = key;
      idleSince = null;
      player.load(slot, target);
      return;
    }
    var state = player.state();
    // Never correct while buffering (the position is about to move on its own); an ended video waits
    // for the schedule to move to the next item.
    if (state === "buffering" || state === "ended" || state === "error") return;
    if (state !== "playing") {
      idleSince = idleSince || Date.now();
      // Autoplay blocked or paused by the viewer: offer to (re)join instead of fighting the browser.
      playButton.hidden = Date.now() - idleSince < 3000;
      return;
    }
    idleSince = null;
    playButton.hidden = true;
    if (Math.abs(player.position() - target) > DRIFT_SECONDS) player.seek(target);
  }

  playButton.addEventListener("click", function () {
    player.play();
    playButton.hidden = true;
    var slot = slotAt(clock.now());
    if (slot) player.seek((clock.now() - slot.starts_at) / 1000);
  });

  var muted = true;
  soundButton.addEventListener("click", function () {
    muted = !muted;
    player.setMuted(muted);
    soundButton.setAttribute("aria-pressed", String(!muted));
    soundButton.querySelector("[data-icon=muted]").hidden = !muted;
    soundButton.querySelector("[data-icon=on]").hidden = muted;
    setText("[data-tv-sound-label]", muted ? "Tap for sound" : "Sound on");
    soundButton.classList.toggle("on", !muted);
  });

  function playerState() {
    var state = player.state();
    return { videoId: player.videoId(), position: player.position(), playing: state === "playing", state: state };
  }

  // --- earning: a lease, then a heartbeat every half (scaled) minute ---------------------------------------

  var earn = config.member ? { lease: null, timer: null, heartbeatMs: config.heartbeatSeconds * 1000 } : null;
  var takeoverButton = $("[data-tv-takeover]");
  var REASONS = {
    first_heartbeat: "Earning starts now.",
    resumed: "Earning again.",
    gap_too_long: "Reconnected: earning again.",
    not_playing: "Not earning: the video isn't playing.",
    hidden: "Not earning while this tab is in the background.",
    off_air: "The channel is off the air.",
    wrong_video: "Catching up with the broadcast…",
    off_schedule: "Catching up with the broadcast…",
    out_of_order: "Earning.",
    no_rule: "This channel is not awarding points right now.",
    rule_inactive: "This channel is not awarding points right now.",
  };

  function csrfToken() {
    var input = document.querySelector("[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return null;
        })
        .then(function (data) {
          return { status: response.status, data: data };
        });
    });
  }

  function setStatus(text, tone) {
    var status = $("[data-tv-status]");
    if (!status) return;
    status.textContent = text;
    status.dataset.tone = tone || "";
  }

  function showSummary(summary) {
    if (!summary) return;
    setText("[data-tv-points-today]", summary.points_today);
    setText("[data-tv-balance]", summary.balance);
    if (summary.allotment) {
      setText("[data-tv-allotment]", summary.allotment);
      var bar = $("[data-tv-today-bar]");
      if (bar) bar.style.width = Math.min(100, (100 * summary.points_today) / summary.allotment) + "%";
    }
  }

  function scheduleHeartbeat(delay) {
    clearTimeout(earn.timer);
    earn.timer = setTimeout(heartbeat, delay);
  }

  function stopEarning(text, tone) {
    earn.lease = null;
    clearTimeout(earn.timer);
    setStatus(text, tone);
    $("[data-tv-minute-bar]").style.width = "0"; // a new lease starts its minute from zero
  }

  function takeLease() {
    takeoverButton.hidden = true;
    return post(config.urls.lease, {})
      .then(function (result) {
        if (result.status !== 201) return onError(result);
        earn.lease = result.data.lease;
        earn.started = false;
        earn.heartbeatMs = result.data.heartbeat_seconds * 1000;
        showSummary(result.data);
        setStatus(result.data.earning ? "Earning starts when the video plays." : REASONS.no_rule);
        // The first heartbeat only marks the start; send it as soon as the player is going.
        scheduleHeartbeat(Math.min(1000, earn.heartbeatMs));
      })
      .catch(function () {
        setStatus("Can't reach Tally: retrying…", "warn");
        setTimeout(takeLease, earn.heartbeatMs);
      });
  }

  function onError(result) {
    var error = (result.data && result.data.error) || { code: "error", message: "Something went wrong." };
    if (error.code === "lease_superseded") {
      stopEarning("You're watching on another tab or device: this one stopped earning.", "warn");
      takeoverButton.hidden = false;
    } else if (error.code === "lease_expired") {
      earn.lease = null;
      takeLease();
    } else if (error.code === "throttled") {
      // Too many requests from this member or address: keep the lease, try again a little later.
      setStatus(error.message, "warn");
      if (earn.lease) scheduleHeartbeat(2 * earn.heartbeatMs);
      else setTimeout(takeLease, 2 * earn.heartbeatMs);
    } else if (error.code === "cap_reached") {
      showSummary(error);
      setStatus("You reached today's allotment. Keep watching: earning starts again tomorrow.", "done");
      $("[data-tv-minute-bar]").style.width = "0";
    } else {
      stopEarning(error.message, "warn");
    }
  }

  function heartbeat() {
    if (!earn.lease) return;
    var state = playerState();
    if (!earn.started && !state.playing) {
      // The first heartbeat marks the start of counting: wait until the video is really playing, or
      // the first interval would be lost.
      scheduleHeartbeat(1000);
      return;
    }
    earn.started = true;
    scheduleHeartbeat(earn.heartbeatMs); // the next one is due whatever this answer says
    post(config.urls.heartbeat, {
      lease: earn.lease,
      state: state.state,
      video_id: state.videoId || "",
      position: Math.max(0, state.position),
      visible: document.visibilityState === "visible",
    })
      .then(function (result) {
        if (result.status !== 200) return onError(result);
        var body = result.data;
        showSummary(body);
        $("[data-tv-minute-bar]").style.width = Math.min(100, (100 * body.progress_seconds) / body.minute_seconds) + "%";
        if (body.counted) {
          setStatus("Earning while you watch.", "ok");
        } else {
          setStatus(REASONS[body.reason] || "Not earning right now.", body.reason === "first_heartbeat" ? "ok" : "");
        }
      })
      .catch(function () {
        setStatus("Connection lost: retrying…", "warn");
      });
  }

  if (earn) {
    takeoverButton.addEventListener("click", takeLease);
    document.addEventListener("visibilitychange", function () {
      // Tell the server at once: hidden time never counts, and a visible page starts counting sooner.
      if (earn.lease) heartbeat();
    });
  }

  // --- start ---------------------------------------------------------------------------------------------

  window.tallyTv = {
    state: function () {
      var state = playerState();
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
      if (earn) takeLease();
    });
})();
