"""Demo perks: the coffee brand's reward menu (modeled on Starbucks') and the artist's merch and moments."""

from __future__ import annotations

from decimal import Decimal

from loyalty.models import Brand
from perks.models import Perk

COFFEE_MENU = [
    (25, "Customize your drink", "An extra shot, a dairy swap or a dash of syrup.", Perk.Category.FREEBIE, None),
    (60, "$2 off", "$2 off any order.", Perk.Category.DISCOUNT, "2.00"),
    (
        100,
        "Brewed coffee or a bakery item",
        "Hot coffee, tea or a pastry of your choice.",
        Perk.Category.FREEBIE,
        "3.50",
    ),
    (200, "Handcrafted drink", "Any handcrafted drink, any size.", Perk.Category.FREEBIE, "6.00"),
    (300, "Sandwich or protein box", "A lunch on us.", Perk.Category.FREEBIE, "8.50"),
    (400, "Select merchandise", "A tumbler or a bag of coffee, up to $20.", Perk.Category.MERCH, "20.00"),
]


def load() -> list[str]:
    coffee = Brand.objects.get(slug="coffee")
    for cost, name, description, category, value in COFFEE_MENU:
        Perk.objects.get_or_create(
            brand=coffee,
            name=name,
            defaults={
                "cost": cost,
                "description": description,
                "category": category,
                "cash_value": Decimal(value) if value else None,
                "cash_currency": "USD" if value else "",
            },
        )
    artist = Brand.objects.get(slug="artist")
    # Network perks: priced in LTZ, redeemable by a member of any brand of the open network.
    for name, cost, stock, category, description in (
        ("Signed poster", 500, 50, Perk.Category.MERCH, "A tour poster signed by Nova Lane, shipped to you."),
        ("Backstage video call", 2000, 5, Perk.Category.EXPERIENCE, "Ten minutes with Nova Lane before a show."),
    ):
        Perk.objects.get_or_create(
            brand=artist,
            name=name,
            defaults={
                "cost": cost,
                "stock": stock,
                "category": category,
                "description": description,
                "is_network_perk": True,
                "fulfillment": Perk.Fulfillment.STAFF,
            },
        )
    Perk.objects.get_or_create(
        brand=artist,
        name="Tour hoodie",
        defaults={
            "cost": 500,
            "category": Perk.Category.MERCH,
            "stock": 20,
            "fulfillment": Perk.Fulfillment.SHIPPED,
            "description": "Limited run of 20, shipped to your door.",
        },
    )
    Perk.objects.get_or_create(
        brand=artist,
        name="Ticket pre-sale code",
        defaults={
            "cost": 100,
            "category": Perk.Category.PRESALE,
            "limit_total": 1,
            "description": "Buy tickets 48 hours before everyone else.",
        },
    )
    Perk.objects.get_or_create(
        brand=artist,
        name="Video shout-out",
        defaults={
            "cost": 1000,
            "category": Perk.Category.SHOUTOUT,
            "limit_total": 1,
            "fulfillment": Perk.Fulfillment.STAFF,
            "description": "A personal 30-second video from Nova.",
        },
    )
    return [
        "coffee: reward menu 25 / 60 / 100 / 200 / 300 / 400 Stars",
        "artist: hoodie (stock 20), pre-sale code, video shout-out (one per fan); network perks in LTZ: signed"
        " poster (500, stock 50), backstage video call (2,000, stock 5)",
    ]
