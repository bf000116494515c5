"""Every lock livestream takes, in one place.

- Publishing a playlist locks the channel row (SELECT ... FOR UPDATE): two staff saving at once must
  not both compute "the item playing now" from the same old epochs and record two competing epochs.
- Accruing watched time takes no lock: it is one atomic Lua script in Redis (livestream.leases).
- Crediting a minute takes loyalty's locks, in loyalty's order, inside `event_record`: the member's Redis
  lock, then the membership row. Livestream holds no lock of its own while it calls that.
"""

from __future__ import annotations

from livestream.models import Channel


def channel_lock_row(channel_id: int) -> Channel:
    """The channel row, locked until the end of the current database transaction."""
    return Channel.objects.select_for_update(of=("self",)).select_related("brand").get(pk=channel_id)
