import pytest

from tests.integrations.receiver import receiving
from tests.loyalty.conftest import coffee, coffee_api, network, shop  # noqa: F401 - fixtures


@pytest.fixture
def hooks():
    """A webhook receiver."""
    yield from receiving()


@pytest.fixture
def mixpanel(settings):
    """An analytics (Mixpanel-compatible) receiver, configured as ANALYTICS_URL."""
    for receiver in receiving():
        settings.ANALYTICS_URL = receiver.url
        yield receiver
