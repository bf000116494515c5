/* The page's estimate of the server clock, NTP-style, from GET /api/v1/time round trips.
 *
 * The offset math is pure (measure, addSample, bestOffset) so that Node can test it; createClock wraps it
 * around fetch. Nothing here touches the DOM.
 */

export const CLOCK_SAMPLES = 10;
// Both clocks speak whole milliseconds: allow for their rounding when comparing two samples.
const ROUNDING_MS = 2;

/* One round trip: sent by the page at t0 (its clock), received and answered by the server at `received`
 * and `sent` (the server's clock), back at t3. The server held the request for (sent - received); the rest
 * of the round trip is network. The true offset lies within delay / 2 of the estimate, whatever the
 * asymmetry of the two legs. Null when the sample cannot be right: a negative delay means the page's
 * clock went back during the round trip (or the answer is malformed). */
export function measure(t0, received, sent, t3) {
  if (![t0, received, sent, t3].every(Number.isFinite)) return null;
  const held = sent - received;
  const delay = t3 - t0 - held;
  if (held < 0 || delay < 0) return null;
  return { delay: delay, offset: (received - t0 + (sent - t3)) / 2 };
}

/* Two samples agree when their intervals (offset ± delay / 2) overlap: they can describe the same clock. */
export function consistent(a, b) {
  return Math.abs(a.offset - b.offset) <= (a.delay + b.delay) / 2 + ROUNDING_MS;
}

/* The window of samples with `sample` added: the last `max`, minus every older sample the new one
 * contradicts. A contradiction means a clock jumped (the page's was set, the machine slept): what was
 * measured before the jump no longer describes this clock, however short its round trip was. */
export function addSample(samples, sample, max = CLOCK_SAMPLES) {
  if (!sample) return samples.slice();
  const kept = samples.filter(function (old) {
    return consistent(old, sample);
  });
  kept.push(sample);
  return kept.slice(-max);
}

/* The offset of the sample with the shortest round trip: it has the smallest possible asymmetry error,
 * so one slow (outlier) round trip never moves the estimate. Null without samples. */
export function bestOffset(samples) {
  if (!samples.length) return null;
  return samples.reduce(function (a, b) {
    return b.delay < a.delay ? b : a;
  }).offset;
}

/* The clock the page reads: now() is the server's time as best known. `fetch` and `local` are
 * injectable for tests; by default the browser's fetch and Date.now. */
export function createClock(url, options) {
  const opts = options || {};
  const fetcher = opts.fetch || globalThis.fetch.bind(globalThis);
  const local = opts.local || Date.now;
  const max = opts.samples || CLOCK_SAMPLES;

  const clock = {
    offset: 0,
    samples: [],
    now: function () {
      return local() + clock.offset;
    },
    sample: function () {
      const t0 = local();
      return fetcher(url, { cache: "no-store", credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("time " + response.status);
          return response.json();
        })
        .then(function (body) {
          clock.samples = addSample(clock.samples, measure(t0, body.received, body.sent, local()), max);
          const best = bestOffset(clock.samples);
          if (best !== null) clock.offset = best;
        });
    },
    sync: function (count) {
      let chain = Promise.resolve();
      for (let i = 0; i < count; i++) {
        chain = chain.then(function () {
          return clock.sample().catch(function () {});
        });
      }
      return chain;
    },
  };
  return clock;
}
