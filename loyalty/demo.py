"""Demo data of the loyalty app: the coffee brand, the artist's fan club, the open network's web shop,
their staff and a fan.

`manage.py demo` calls `load()` of every app's `demo` module in INSTALLED_APPS order, so perks and
livestream add their own demo data without loyalty importing them. Every step is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from loyalty import services
from loyalty.models import Brand, BrandStaff, EarnRule, Network, Tier, User
from loyalty.services.earning import adjustment_create

DEMO_PASSWORD = "tally-demo-2026"  # noqa: S105 - printed on screen; demo data only


@dataclass(frozen=True)
class DemoLogin:
    who: str
    email: str
    password: str = DEMO_PASSWORD


LOGINS = [
    DemoLogin("operator (superuser, every brand)", "admin@tally.example"),
    DemoLogin("coffee brand staff (owner)", "staff@coffee.example"),
    DemoLogin("artist brand staff (owner)", "staff@artist.example"),
    DemoLogin("web shop staff (owner)", "staff@shop.example"),
    DemoLogin("fan (member of the coffee and artist clubs)", "fan@tally.example"),
]


def demo_logins_present() -> list[str]:
    """The emails of logins that still open with the published demo password: the demo's own logins and
    every staff or superuser login (which can open the portal). Fans' logins are not checked: a password
    check costs a hash each, and a fan's login reaches no one else's data."""
    candidates = User.objects.filter(
        Q(email__in=[login.email for login in LOGINS]) | Q(is_staff=True) | Q(is_superuser=True)
    ).filter(is_active=True)
    return sorted(user.email for user in candidates if user.check_password(DEMO_PASSWORD))


def _user(email: str, **extra: object) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        create = User.objects.create_superuser if extra.pop("superuser", False) else User.objects.create_user
        user = create(email=email, password=DEMO_PASSWORD, email_verified_at=timezone.now(), **extra)
    return user


def load() -> list[str]:
    coffee, _ = Brand.objects.get_or_create(
        slug="coffee",
        defaults={
            "name": "Bean & Leaf Coffee",
            "timezone": "America/Los_Angeles",
            "points_name": "Stars",
            "tagline": "1 Star per $1. Gold at 500, Reserve at 2,500.",
            # Stars expire 6 months after the end of the month earned; tiers re-qualify over a rolling
            # 12 months, and a member below a threshold moves down at once (staff may pick the other policy).
            "points_expire_months": 6,
            "tier_window": Brand.TierWindow.ROLLING,
            "tier_window_months": 12,
            "tier_downgrade": Brand.TierDowngrade.IMMEDIATELY,
        },
    )
    artist, _ = Brand.objects.get_or_create(
        slug="artist",
        defaults={
            "name": "Nova Lane",
            "timezone": "Europe/London",
            "points_name": "points",
            "tagline": "Watch the Nova Lane TV channel together and earn a point a minute.",
            "points_expire_months": None,  # a fan's points never expire
        },
    )
    # The open network (the Loyalteez model): one portable point, LTZ, worth $0.01 in settlement. The web shop
    # issues 10 LTZ per $1 and no points of its own; the artist honors LTZ on its network perks; the coffee
    # brand stays a closed program outside it.
    network, _ = Network.objects.get_or_create(
        slug="open",
        defaults={"name": "Open network", "unit": "LTZ", "point_value": Decimal("0.01"), "currency": "USD"},
    )
    shop, _ = Brand.objects.get_or_create(
        slug="shop",
        defaults={
            "name": "Northwind Web Shop",
            "timezone": "America/New_York",
            "points_name": "LTZ",
            "tagline": "10 LTZ per $1, to spend on perks across the open network.",
            "network": network,
            "loyalteez_brand_id": "shop-ltz",
        },
    )
    if artist.network_id is None:
        artist.network = network
        artist.save(update_fields=["network"])
    _user("admin@tally.example", superuser=True, first_name="Operator")
    services.brand_staff_add(
        user=_user("staff@coffee.example", first_name="Casey"), brand=coffee, role=BrandStaff.Role.OWNER
    )
    services.brand_staff_add(
        user=_user("staff@artist.example", first_name="Alex"), brand=artist, role=BrandStaff.Role.OWNER
    )
    services.brand_staff_add(user=_user("staff@shop.example", first_name="Sam"), brand=shop, role=BrandStaff.Role.OWNER)
    EarnRule.objects.get_or_create(
        brand=shop,
        event_type="purchase",
        defaults={"name": "10 LTZ per $1", "network_points_per_unit": Decimal("10"), "currency": "USD"},
    )
    _earning_configure(coffee, artist)
    fan = services.member_for_user(user=_user("fan@tally.example", first_name="Frankie"))
    for brand, points in ((coffee, 120), (artist, 40)):
        membership = services.membership_join(member=fan, brand=brand)
        # A fixed key: running the demo again finds this adjustment instead of adding another.
        adjustment_create(
            membership=membership, points=points, reason="Demo welcome bonus", idempotency_key="demo-welcome"
        )
    return [
        "coffee: Bean & Leaf Coffee: 1 Star per $1, Green / Gold 500 / Reserve 2,500 (a rolling 12 months, down at"
        " once), check_in 5 Stars once a day and 50 for 7 days in a row, Stars expire 6 months after their month",
        "artist: Nova Lane fan club: track_listen 1 point, up to 100 a day; points never expire; in the open network",
        "shop: Northwind Web Shop: 10 LTZ per $1 (open network, Loyalteez brand id shop-ltz), no points of its own",
    ]


def _earning_configure(coffee: Brand, artist: Brand) -> None:
    EarnRule.objects.get_or_create(
        brand=coffee,
        event_type="purchase",
        defaults={"name": "1 Star per $1", "points_per_unit": Decimal("1"), "currency": "USD", "pending_days": 0},
    )
    EarnRule.objects.get_or_create(
        brand=coffee,
        event_type="check_in",
        defaults={
            "name": "Check in",
            "points": 5,
            "cap_per_day": 1,
            "streak_length": 7,
            "streak_period": "day",
            "streak_bonus": 50,
        },
    )
    for rank, (name, threshold, multiplier, benefits) in enumerate(
        [
            ("Green", 0, "1.0", "1 Star per $1, free refills, birthday reward."),
            ("Gold", 500, "1.2", "1.2 Stars per $1, monthly double-Star day."),
            ("Reserve", 2500, "1.7", "1.7 Stars per $1, exclusive tastings, gifts."),
        ],
        start=1,
    ):
        Tier.objects.get_or_create(
            brand=coffee,
            rank=rank,
            defaults={
                "name": name,
                "threshold": threshold,
                "multiplier": Decimal(multiplier),
                "benefits": benefits,
            },
        )
    EarnRule.objects.get_or_create(
        brand=artist,
        event_type="track_listen",
        defaults={"name": "Listen to a track", "points": 1, "cap_per_day": 100},
    )
