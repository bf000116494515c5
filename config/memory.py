"""How Tally's long-running processes (web and Celery workers) use Python's cyclic garbage collector.

Two measured costs: a full collection walks every object the process holds, the framework's included,
and with the default thresholds (a young-generation collection every 700 allocations) a batch of 1,000
events, which allocates hundreds of thousands of short-lived objects, ran several full collections: about
a fifth of the event processor's time (make bench: ~6,500 events/s, ~8,400 with this), and, in the web
workers, pauses of 50-100 ms for every thread of the process, several times a second.
"""

from __future__ import annotations

import gc

# Young collections every 50,000 allocations (a few megabytes of garbage at most), older ones rarer still.
THRESHOLDS = (50_000, 20, 100)


def gc_tune() -> None:
    """Call once the process has loaded what it keeps for its life (the framework, the URL conf, the
    apps): move all of it out of the collector's sight (it is never garbage), and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
