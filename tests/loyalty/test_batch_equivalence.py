"""Processing a stream of events in batches gives exactly what processing them one by one gives.

Hypothesis generates streams (purchases, custom events on several days, refunds of earlier purchases,
unknown members, a member named by both email and external id); each stream is accepted the same way by
two brands with the same program, then one brand is processed in batches of a random size and the other
one event at a time, through the same processor. Every event's outcome, every member's balance, tier,
lifetime figures and qualifying points, and the books, must agree.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.models import Brand, EarnRule, Event, Membership, QualifyingBucket, Tier
from loyalty.selectors import membership_balance
from tests.ledger.helpers import ledger_problems
from tests.loyalty.events import accept, process

_brands = itertools.count()

MEMBERS = [
    {"email": "ann@example.com"},
    {"email": "bob@example.com"},
    {"external_id": "POS-7"},
    {"email": "cy@example.com", "external_id": "POS-9"},
    {"email": "ann@example.com", "external_id": "POS-1"},  # Ann, now also known by her POS id
]


def program(slug: str) -> Brand:
    brand = Brand.objects.create(name=slug, slug=slug, timezone="America/New_York")
    EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=Decimal("1.5"), currency="USD")
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5, cap_per_day=1, cap_per_week=3)
    EarnRule.objects.create(brand=brand, event_type="review", points=20, cap_per_month=2)
    for rank, (name, threshold, multiplier) in enumerate(
        [("Green", 0, "1.0"), ("Gold", 60, "1.2"), ("Top", 150, "2")], 1
    ):
        Tier.objects.create(brand=brand, name=name, rank=rank, threshold=threshold, multiplier=Decimal(multiplier))
    return brand


purchase = st.builds(
    lambda member, cents: {"type": "purchase", "member": member, "amount": f"{cents / 100:.2f}", "currency": "USD"},
    st.sampled_from(MEMBERS),
    st.integers(min_value=1, max_value=9000),
)
custom = st.builds(
    lambda kind, member, days_ago: {"kind": kind, "member": member, "days_ago": days_ago},
    st.sampled_from(["check_in", "review"]),
    st.sampled_from(MEMBERS),
    st.integers(min_value=0, max_value=9),
)
refund = st.builds(lambda pick, cents: {"refund": pick, "cents": cents}, st.integers(0, 50), st.integers(1, 6000))
streams = st.lists(st.one_of(purchase, purchase, custom, refund), min_size=1, max_size=40)


def bodies(stream: list[dict]) -> list[dict]:
    """The API bodies of a generated stream: order ids, times and refunds filled in."""
    now = timezone.now()
    out, purchases = [], []
    for n, item in enumerate(stream):
        if "refund" in item:
            if not purchases:
                continue
            order_id, member = purchases[item["refund"] % len(purchases)]
            body = {"type": "refund", "member": member, "order_id": order_id, "amount": f"{item['cents'] / 100:.2f}"}
            out.append({**body, "idempotency_key": f"refund-{n}"})
        elif "kind" in item:
            when = now - dt.timedelta(days=item["days_ago"], hours=n % 5)
            out.append(
                {
                    "type": item["kind"],
                    "member": item["member"],
                    "occurred_at": when.isoformat(),
                    "idempotency_key": f"c-{n}",
                }
            )
        else:
            out.append({**item, "order_id": f"O-{n}"})
            purchases.append((f"O-{n}", item["member"]))
    return out


def outcome(brand: Brand) -> dict:
    events = [
        (e.type, e.order_id, e.status, e.reason, e.points, e.unrecovered_points, e.refunded_points, e.tier_name)
        for e in Event.objects.filter(brand=brand).order_by("id")
    ]
    members = {}
    for membership in Membership.objects.filter(brand=brand).select_related("member", "tier"):
        buckets = sorted(
            QualifyingBucket.objects.filter(membership=membership).exclude(points=0).values_list("month", "points")
        )
        members[(membership.member.email, membership.external_id)] = (
            membership_balance(membership),
            membership.tier.name if membership.tier else None,
            membership.lifetime_earned,
            buckets,
        )
    return {"events": events, "members": members}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=streams, batch_size=st.integers(min_value=2, max_value=25))
def test_batches_of_any_size_give_the_outcomes_of_one_at_a_time(db, stream, batch_size):
    number = next(_brands)
    batched, one_by_one = program(f"batched-{number}"), program(f"single-{number}")
    for body in bodies(stream):
        # One accept per event, as the single endpoint does, for both brands alike.
        accept(batched, body)
        accept(one_by_one, body)

    process(batched, batch_size=batch_size)
    process(one_by_one, batch_size=1)

    assert outcome(batched) == outcome(one_by_one)
    assert not Event.objects.filter(status="pending").exists()
    assert ledger_problems() == []
