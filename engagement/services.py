"""Writes of fan engagement (the leaderboards' figures are the posting path's: engagement.receivers)."""

from __future__ import annotations

from engagement.models import FanProfile
from loyalty.models import Membership


def fan_profile_update(*, membership: Membership, display_name: str, hidden: bool) -> FanProfile:
    """How a fan appears on their club's leaderboard: the name they chose (blank: "Fan #<id>"), or hidden."""
    profile, _ = FanProfile.objects.update_or_create(
        membership=membership, defaults={"display_name": display_name.strip(), "hidden": hidden}
    )
    return profile
