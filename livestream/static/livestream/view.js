/* The TV page's DOM: everything the other modules show goes through here. Reads `document` only when
 * createView is called, so formatTime can be imported anywhere. */

export function formatTime(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const secs = String(whole % 60).padStart(2, "0");
  return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + secs : minutes + ":" + secs;
}

function percent(part, whole) {
  return Math.min(100, (100 * part) / whole) + "%";
}

export function createView(doc) {
  const root = doc || document;
  function $(selector) {
    return root.querySelector(selector);
  }
  function setText(selector, text) {
    const element = $(selector);
    if (element) element.textContent = text;
  }

  const overlay = $("[data-tv-overlay]");
  const playButton = $("[data-tv-play]");
  const soundButton = $("[data-tv-sound]");
  const takeoverButton = $("[data-tv-takeover]");

  return {
    playerElement: function () {
      return root.getElementById("tv-player");
    },
    config: function () {
      return JSON.parse(root.getElementById("tv-config").textContent);
    },

    // --- the broadcast ---
    // slot: what is on air (null: off the air, undefined: not known yet); next: the item after it, if known.
    showSlot: function (slot, next, now) {
      const live = $("[data-tv-live]");
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
      const elapsed = (now - slot.starts_at) / 1000;
      setText("[data-tv-title]", slot.title);
      setText("[data-tv-elapsed]", formatTime(elapsed));
      setText("[data-tv-duration]", formatTime(slot.duration));
      $("[data-tv-progress]").style.width = percent(elapsed, slot.duration);
      $("[data-tv-next-row]").hidden = !next;
      if (next) {
        setText("[data-tv-next]", next.title);
        setText("[data-tv-next-in]", "in " + formatTime((slot.ends_at - now) / 1000));
      }
    },
    showOverlay: function (text) {
      setText("[data-tv-overlay-text]", text);
      overlay.hidden = false;
    },
    hideOverlay: function () {
      overlay.hidden = true;
    },
    showPlayButton: function (shown) {
      playButton.hidden = !shown;
    },
    onPlay: function (handler) {
      playButton.addEventListener("click", handler);
    },
    onSound: function (handler) {
      soundButton.addEventListener("click", handler);
    },
    showSound: function (muted) {
      soundButton.setAttribute("aria-pressed", String(!muted));
      soundButton.querySelector("[data-icon=muted]").hidden = !muted;
      soundButton.querySelector("[data-icon=on]").hidden = muted;
      setText("[data-tv-sound-label]", muted ? "Tap for sound" : "Sound on");
      soundButton.classList.toggle("on", !muted);
    },

    // --- earning ---
    status: function (text, tone) {
      const status = $("[data-tv-status]");
      if (!status) return;
      status.textContent = text;
      status.dataset.tone = tone || "";
    },
    summary: function (summary) {
      if (!summary) return;
      setText("[data-tv-points-today]", summary.points_today);
      setText("[data-tv-balance]", summary.balance);
      if (summary.allotment) {
        setText("[data-tv-allotment]", summary.allotment);
        const bar = $("[data-tv-today-bar]");
        if (bar) bar.style.width = percent(summary.points_today, summary.allotment);
      }
    },
    minute: function (progressSeconds, minuteSeconds) {
      $("[data-tv-minute-bar]").style.width = minuteSeconds ? percent(progressSeconds, minuteSeconds) : "0";
    },
    showTakeover: function (shown) {
      if (takeoverButton) takeoverButton.hidden = !shown;
    },
    onTakeover: function (handler) {
      takeoverButton.addEventListener("click", handler);
    },
    csrfToken: function () {
      const input = root.querySelector("[name=csrfmiddlewaretoken]");
      return input ? input.value : "";
    },
    visible: function () {
      return root.visibilityState === "visible";
    },
    onVisibilityChange: function (handler) {
      root.addEventListener("visibilitychange", handler);
    },
  };
}
