"""Helpers for tests of open network points."""

from __future__ import annotations

from loyalty.models import Member, Network
from loyalty.selectors import network_balance

FAN = "fan@example.com"


def ltz(network: Network, email: str = FAN) -> int:
    """The person's network points."""
    return network_balance(member_id=Member.objects.get(email=email).pk, network_id=network.pk)
