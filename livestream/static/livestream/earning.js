/* Earning: a viewing lease, then a heartbeat every half (scaled) minute. The server alone decides what
 * counts; the page only reports what its player is doing and shows the answer.
 *
 * No DOM here: what to show goes to `view` (status, summary, minute, showTakeover), what the player does
 * comes from `playerState()`, whether the page is visible from `visible()`. `fetch` and the timers are
 * injectable for tests.
 */

export const REASONS = {
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

export function createEarning(options) {
  const urls = options.urls;
  const view = options.view;
  const playerState = options.playerState;
  const visible = options.visible;
  const csrfToken = options.csrfToken;
  const fetcher = options.fetch || globalThis.fetch.bind(globalThis);
  const later = options.setTimeout || globalThis.setTimeout.bind(globalThis);
  const cancel = options.clearTimeout || globalThis.clearTimeout.bind(globalThis);
  const earn = { lease: null, timer: null, started: false, heartbeatMs: options.heartbeatSeconds * 1000 };
  const lengthsSent = new Set(); // videos whose length this page has reported (once each)

  function post(url, body) {
    return fetcher(url, {
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

  function scheduleHeartbeat(delay) {
    cancel(earn.timer);
    earn.timer = later(heartbeat, delay);
  }

  function stopEarning(text, tone) {
    earn.lease = null;
    cancel(earn.timer);
    view.status(text, tone);
    view.minute(0); // a new lease starts its minute from zero
  }

  function takeLease() {
    view.showTakeover(false);
    return post(urls.lease, {})
      .then(function (result) {
        if (result.status !== 201) return onError(result);
        earn.lease = result.data.lease;
        earn.started = false;
        earn.heartbeatMs = result.data.heartbeat_seconds * 1000;
        view.summary(result.data);
        view.status(result.data.earning ? "Earning starts when the video plays." : REASONS.no_rule);
        // The first heartbeat only marks the start; send it as soon as the player is going.
        scheduleHeartbeat(Math.min(1000, earn.heartbeatMs));
      })
      .catch(function () {
        view.status("Can't reach Tally: retrying…", "warn");
        later(takeLease, earn.heartbeatMs);
      });
  }

  function onError(result) {
    const error = (result.data && result.data.error) || { code: "error", message: "Something went wrong." };
    if (error.code === "lease_superseded") {
      stopEarning("You're watching on another tab or device: this one stopped earning.", "warn");
      view.showTakeover(true);
    } else if (error.code === "lease_expired") {
      earn.lease = null;
      takeLease();
    } else if (error.code === "throttled") {
      // Too many requests from this member or address: keep the lease, try again a little later.
      view.status(error.message, "warn");
      if (earn.lease) scheduleHeartbeat(2 * earn.heartbeatMs);
      else later(takeLease, 2 * earn.heartbeatMs);
    } else if (error.code === "cap_reached") {
      view.summary(error);
      view.status("You reached today's allotment. Keep watching: earning starts again tomorrow.", "done");
      view.minute(0);
    } else {
      stopEarning(error.message, "warn");
    }
  }

  function heartbeat() {
    if (!earn.lease) return;
    const state = playerState();
    if (!earn.started && !state.playing) {
      // The first heartbeat marks the start of counting: wait until the video is really playing, or
      // the first interval would be lost.
      scheduleHeartbeat(1000);
      return;
    }
    earn.started = true;
    scheduleHeartbeat(earn.heartbeatMs); // the next one is due whatever this answer says
    reportLength(state);
    return post(urls.heartbeat, {
      lease: earn.lease,
      state: state.state,
      video_id: state.videoId || "",
      position: Math.max(0, state.position),
      visible: visible(),
    })
      .then(function (result) {
        if (result.status !== 200) return onError(result);
        const body = result.data;
        view.summary(body);
        view.minute(body.progress_seconds, body.minute_seconds);
        if (body.counted) {
          view.status("Earning while you watch.", "ok");
        } else {
          view.status(REASONS[body.reason] || "Not earning right now.", body.reason === "first_heartbeat" ? "ok" : "");
        }
      })
      .catch(function () {
        view.status("Connection lost: retrying…", "warn");
      });
  }

  // The length the player gives, once per video: the server corrects a stored length several viewers'
  // players disagree with. A lost report is not retried (other viewers send theirs).
  function reportLength(state) {
    if (!urls.duration || !state.videoId || !(state.duration > 0) || lengthsSent.has(state.videoId)) return;
    lengthsSent.add(state.videoId);
    post(urls.duration, { lease: earn.lease, video_id: state.videoId, duration: state.duration }).catch(function () {});
  }

  return {
    start: takeLease,
    takeLease: takeLease,
    heartbeat: heartbeat,
    // Tell the server at once: hidden time never counts, and a visible page starts counting sooner.
    visibilityChanged: function () {
      if (earn.lease) heartbeat();
    },
  };
}
