from tests.loyalty.conftest import coffee, coffee_api  # noqa: F401 - fixtures
