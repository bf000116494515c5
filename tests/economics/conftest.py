"""The loyalty fixtures the economics tests share: the coffee brand, the open network and its web shop."""

from tests.loyalty.conftest import coffee, coffee_api, network, shop  # noqa: F401 - fixtures
