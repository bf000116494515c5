"""The server clock every livestream decision reads: schedules, heartbeats, leases, credited minutes.

One function so that tests can move time (patch `livestream.clock.now`) and so that no timestamp a
client sends is ever trusted: the server's own time decides what was watched.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_ms(moment: dt.datetime) -> int:
    """Whole milliseconds since 1970 (exact, no float): what the page's JavaScript clock speaks."""
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)
