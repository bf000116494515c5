"""Every lock livestream takes, in one place.

- Publishing a playlist locks the channel row (SELECT ... FOR UPDATE): two staff saving at once must
  not both compute "the item playing now" from the same old epochs and record two competing epochs.
- Accruing watched time takes no lock: it is one atomic Lua script in Redis (livestream.leases).
- Crediting a minute is loyalty's event processor's job (it takes loyalty's locks, in loyalty's order):
  livestream only records the minute as a pending event, holding no lock.
"""

from __future__ import annotations

from livestream.models import Channel


def channel_lock_row(channel_id: int) -> Channel:
    """The channel row, locked until the end of the current database transaction."""
    return Channel.objects.select_for_update(of=("self",)).select_related("brand").get(pk=channel_id)
