"""Two brands of a network process purchases of the same people at once (threads, own connections): each
person's one network wallet is locked by both batches, and no point is lost or doubled."""

from decimal import Decimal

import pytest

from loyalty.models import Brand, EarnRule, NetworkLot
from loyalty.services.processing import events_process_batch
from tests.concurrency import run_concurrently
from tests.loyalty.events import accept
from tests.loyalty.lifecycle import books_clean
from tests.loyalty.network import ltz

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_brands_batches_on_the_same_people_at_once_credit_every_network_point_once(shop, network):
    other = Brand.objects.create(name="Other shop", slug="other", network=network)
    EarnRule.objects.create(brand=other, event_type="purchase", network_points_per_unit=Decimal("10"), currency="USD")
    people = [f"p{n}@example.com" for n in range(20)]
    for brand in (shop, other):
        accept(
            brand,
            *[
                {
                    "type": "purchase",
                    "member": {"email": email},
                    "order_id": f"{brand.slug}-{n}-{k}",
                    "amount": "1.00",
                    "currency": "USD",
                }
                for n, email in enumerate(people)
                for k in range(3)
            ],
        )

    brands = [shop, other, shop, other]  # two batches per brand at once: the row locks keep each event once
    results = run_concurrently(lambda index: events_process_batch(brand_id=brands[index].pk, limit=1000), 4)

    assert not [result for result in results if isinstance(result, Exception)], results
    assert all(ltz(network, email) == 2 * 3 * 10 for email in people)
    assert sum(NetworkLot.objects.values_list("left", flat=True)) == 20 * 60
    books_clean()
