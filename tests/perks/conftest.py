"""The loyalty fixtures the perks tests share: the coffee brand, the open network and its web shop."""

from tests.loyalty.conftest import coffee, network, shop  # noqa: F401 - fixtures
