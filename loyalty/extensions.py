"""Places where higher apps add to loyalty's pages without loyalty importing them.

Imports flow one way (ledger <- loyalty <- perks, livestream): perks and livestream register a
provider here in their AppConfig.ready(), and loyalty's brand page shows what the providers return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loyalty.models import Brand


@dataclass(frozen=True)
class BrandLink:
    label: str
    url: str
    order: int = 100


BrandLinkProvider = Callable[[Brand], list[BrandLink]]
_brand_link_providers: list[BrandLinkProvider] = []


def brand_link_provider(provider: BrandLinkProvider) -> BrandLinkProvider:
    """Register a function that returns the links a brand's page should show (for example "Watch TV")."""
    if provider not in _brand_link_providers:
        _brand_link_providers.append(provider)
    return provider


def brand_links(*, brand: Brand) -> list[BrandLink]:
    links = [link for provider in _brand_link_providers for link in provider(brand)]
    return sorted(links, key=lambda link: (link.order, link.label))
