"""Open network points: a network brand's purchases earn the network's points (10 LTZ per $1) into the
person's network wallet, through the same batched processor; refunds take them back."""

from decimal import Decimal

import pytest

from ledger.models import Transaction
from loyalty.models import EarnRule
from tests.loyalty.conftest import api_client_for
from tests.loyalty.events import accept, process
from tests.loyalty.lifecycle import books_clean, buy, refund
from tests.loyalty.network import FAN, ltz

pytestmark = pytest.mark.django_db


def test_a_100_dollar_purchase_at_the_shop_gives_1000_ltz_and_no_brand_points(shop, network):
    event = buy(shop, "S-1", "100.00", member={"email": FAN})

    assert (event.status, event.points, event.network_points) == ("awarded", 0, 1000)
    assert ltz(network) == 1000
    txn = Transaction.objects.get(idempotency_key=f"event:{event.pk}:network")
    assert {entry.account.code: entry.amount for entry in txn.entries.select_related("account")} == {
        f"network:{network.pk}:issuance:{shop.pk}": -1000,
        f"network:{network.pk}:wallet:{event.membership.member_id}": 1000,
    }
    books_clean()


def test_network_points_are_one_wallet_per_person_across_the_network_s_brands(shop, network, coffee):
    coffee.network = network
    coffee.save()
    EarnRule.objects.filter(brand=coffee, event_type="purchase").update(network_points_per_unit=Decimal("10"))

    buy(shop, "S-1", "10.00", member={"email": FAN})
    at_coffee = buy(coffee, "C-1", "5.00", member={"email": FAN})

    assert (at_coffee.points, at_coffee.network_points) == (5, 50)  # its own Stars, and network points
    assert ltz(network) == 150
    books_clean()


def test_a_refund_takes_the_network_points_back_in_proportion(shop, network):
    buy(shop, "S-1", "100.00", member={"email": FAN})
    returned = refund(shop, "S-1", "25.00", member={"email": FAN})

    assert returned.network_points == -250
    assert ltz(network) == 750
    returned = refund(shop, "S-1", "75.00", member={"email": FAN})
    assert ltz(network) == 0
    books_clean()


def test_a_brand_outside_the_network_earns_no_network_points_and_shows_no_network_balance(coffee, network):
    EarnRule.objects.filter(brand=coffee, event_type="purchase").update(network_points_per_unit=Decimal("10"))
    event = buy(coffee, "C-1", "10.00", member={"email": FAN})
    assert (event.points, event.network_points) == (10, 0)

    body = api_client_for(coffee).get(f"/api/v1/members/{event.membership_id}").json()
    assert "network" not in body


def test_the_member_api_of_a_network_brand_shows_the_network_balance(shop, network):
    event = buy(shop, "S-1", "12.34", member={"email": FAN})
    body = api_client_for(shop).get(f"/api/v1/members/{event.membership_id}").json()
    assert body["network"] == {"unit": "LTZ", "balance": 123}
    assert body["balance"] == 0


def test_a_network_purchase_batch_of_many_members_is_processed_in_one_go(shop, network):
    accept(
        shop,
        *[
            {
                "type": "purchase",
                "member": {"email": f"f{n}@example.com"},
                "order_id": f"B-{n}",
                "amount": "1.00",
                "currency": "USD",
            }
            for n in range(50)
        ],
    )
    assert process(shop) == 50
    assert sum(ltz(network, f"f{n}@example.com") for n in range(50)) == 500
    books_clean()
