"""Open network points in the ledger: their unit, accounts, and the wallets of the people who hold them.

Per network: one wallet per person (`network:<id>:wallet:<member>`, never negative), an issuance account
per issuing brand (`network:<id>:issuance:<brand>`, negative: minus its balance is what the brand issued)
and a redemptions account per honoring brand (`network:<id>:redemptions:<brand>`). All in the network's
own unit, which the ledger never lets a posting mix with a brand's points.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from config.db import bulk_cursor
from config.errors import ApplicationError
from ledger.models import Account, Entry
from ledger.services import AccountSpec, account_get_or_create, accounts_get_or_create
from loyalty.models import Brand, Network, NetworkLot, NetworkSettlement, NetworkSpend, NetworkWallet
from loyalty.periods import months_add


def network_unit(network_id: int) -> str:
    return f"points:network:{network_id}"


def network_wallet_code(network_id: int, member_id: int) -> str:
    return f"network:{network_id}:wallet:{member_id}"


def network_brand_account(*, network_id: int, brand: Brand, kind: str) -> Account:
    """The brand's issuance or redemptions account in the network's unit."""
    if kind not in (Account.Kind.ISSUANCE, Account.Kind.REDEMPTIONS):
        raise ValueError(f"A brand has no {kind} account in a network.")
    return account_get_or_create(
        code=f"network:{network_id}:{kind}:{brand.pk}",
        kind=kind,
        unit=network_unit(network_id),
        allow_negative=kind == Account.Kind.ISSUANCE,
    )


def network_wallets_ensure(*, network: Network | int, member_ids: Iterable[int]) -> dict[int, int]:
    """member id -> the account id of their network wallet, created in bulk where missing (safe under
    concurrent first uses: the accounts and the wallet rows are each inserted ON CONFLICT DO NOTHING)."""
    network_id = network if isinstance(network, int) else network.pk
    member_ids = sorted(set(member_ids))
    if not member_ids:
        return {}
    found = dict(
        NetworkWallet.objects.filter(network_id=network_id, member_id__in=member_ids).values_list(
            "member_id", "account_id"
        )
    )
    missing = [member_id for member_id in member_ids if member_id not in found]
    if missing:
        codes = accounts_get_or_create(
            specs=[
                AccountSpec(
                    code=network_wallet_code(network_id, member_id),
                    kind=Account.Kind.WALLET,
                    unit=network_unit(network_id),
                )
                for member_id in missing
            ]
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {NetworkWallet._meta.db_table} (network_id, member_id, account_id, created_at)
                SELECT %s, v.member_id, v.account_id, now()
                  FROM unnest(%s::bigint[], %s::bigint[]) AS v(member_id, account_id)
                ON CONFLICT DO NOTHING
                """,  # noqa: S608 - only the table name is formatted in
                [network_id, missing, [codes[network_wallet_code(network_id, m)] for m in missing]],
            )
        found.update({member_id: codes[network_wallet_code(network_id, member_id)] for member_id in missing})
    return found


# --- who funded what: lots by issuing brand, spent oldest first -----------------------------------------


def settlement_month(when: dt.datetime) -> dt.date:
    """The network's settlement month of a moment: one calendar for all its brands, UTC."""
    return when.astimezone(dt.UTC).date().replace(day=1)


def network_lots_add(*, network_id: int, rows: Sequence[tuple[int, int, dt.date, int]]) -> None:
    """Add earned network points to the lots of (member id, issuing brand id, month, points)."""
    totals: dict[tuple[int, int, dt.date], int] = {}
    for member_id, issuer_id, month, points in rows:
        totals[(member_id, issuer_id, month)] = totals.get((member_id, issuer_id, month), 0) + points
    keys = sorted(key for key, points in totals.items() if points > 0)
    if not keys:
        return
    with bulk_cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {NetworkLot._meta.db_table} AS l (network_id, member_id, issuer_id, month, "left")
            SELECT %b, v.member_id, v.issuer_id, v.month, v.points
              FROM unnest(%b::bigint[], %b::bigint[], %b::date[], %b::bigint[])
                   AS v(member_id, issuer_id, month, points)
            ON CONFLICT (member_id, network_id, issuer_id, month) DO UPDATE SET "left" = l."left" + EXCLUDED."left"
            """,  # noqa: S608 - only the table name is formatted in
            [
                network_id,
                [key[0] for key in keys],
                [key[1] for key in keys],
                [key[2] for key in keys],
                [totals[key] for key in keys],
            ],
        )


def _lots_locked(network_id: int, member_id: int) -> list[NetworkLot]:
    """The person's lots with points left, oldest first, locked (the caller holds the wallet's balance
    row: these only move with a posting to it)."""
    return list(
        NetworkLot.objects.select_for_update()
        .filter(network_id=network_id, member_id=member_id, left__gt=0)
        .order_by("month", "id")
    )


def network_lots_take(*, network_id: int, member_id: int, points: int, issuer_id: int) -> None:
    """A refund took `points` back from the wallet: take them from the refunding brand's lots, newest
    first, then (what that brand's lots no longer hold: spent) from the newest of the others."""
    lots = _lots_locked(network_id, member_id)
    order = [lot for lot in reversed(lots) if lot.issuer_id == issuer_id] + [
        lot for lot in reversed(lots) if lot.issuer_id != issuer_id
    ]
    _lots_consume(order, points)


def _lots_consume(order: list[NetworkLot], points: int) -> list[tuple[NetworkLot, int]]:
    taken = []
    for lot in order:
        if points <= 0:
            break
        part = min(lot.left, points)
        lot.left -= part
        points -= part
        taken.append((lot, part))
    if points > 0:  # pragma: no cover - the lots sum to the wallet, which the ledger kept from going below zero
        raise RuntimeError("network lots hold fewer points than the wallet")
    NetworkLot.objects.bulk_update([lot for lot, _ in taken], ["left"])
    return taken


def network_spend_record(
    *, network_id: int, member_id: int, honoring_id: int, points: int, transaction_id: int, now: dt.datetime
) -> list[NetworkSpend]:
    """Attribute a network redemption to the brands that issued its points, oldest points first, and
    record it for the settlement of this month. Call it in the posting's transaction."""
    taken = _lots_consume(_lots_locked(network_id, member_id), points)
    month = settlement_month(now)
    spends: dict[int, int] = {}
    for lot, part in taken:
        spends[lot.issuer_id] = spends.get(lot.issuer_id, 0) + part
    return NetworkSpend.objects.bulk_create(
        [
            NetworkSpend(
                network_id=network_id,
                issuer_id=issuer_id,
                honoring_id=honoring_id,
                member_id=member_id,
                points=part,
                month=month,
                ledger_transaction_id=transaction_id,
                created_at=now,
            )
            for issuer_id, part in sorted(spends.items())
        ]
    )


def network_spend_undo(*, original_transaction_id: int, reversal_transaction_id: int, now: dt.datetime) -> None:
    """A network redemption was cancelled (its points are back in the wallet): give the issuers their
    points back, in this month's settlement (negative rows), and back into the lots they came from."""
    spent = list(NetworkSpend.objects.filter(ledger_transaction_id=original_transaction_id, points__gt=0))
    if not spent:
        return
    month = settlement_month(now)
    NetworkSpend.objects.bulk_create(
        [
            NetworkSpend(
                network_id=spend.network_id,
                issuer_id=spend.issuer_id,
                honoring_id=spend.honoring_id,
                member_id=spend.member_id,
                points=-spend.points,
                month=month,
                ledger_transaction_id=reversal_transaction_id,
                created_at=now,
            )
            for spend in spent
        ]
    )
    network_lots_add(
        network_id=spent[0].network_id,
        rows=[(spend.member_id, spend.issuer_id, month, spend.points) for spend in spent],
    )


# --- settlement ---------------------------------------------------------------------------------------


class SettlementError(ApplicationError):
    status_code = 422
    code = "not_closable"


def _money(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def network_statement_compute(*, network: Network, brand: Brand, month: dt.date) -> dict:
    """A brand's settlement statement of a month, from the ledger and the recorded spends: what it issued,
    what was redeemed at it, and per other brand what each funded of the other's perks. `amount` is what
    the network owes the brand for that pair (negative: what the brand owes), at the network's value of a
    point; `net_amount` settles the month in one payment."""
    start = dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(months_add(month, 1), dt.time(), tzinfo=dt.UTC)
    issuance = Account.objects.filter(code=f"network:{network.pk}:issuance:{brand.pk}").first()
    issued = 0
    if issuance is not None:
        total = Entry.objects.filter(account=issuance, created_at__gte=start, created_at__lt=end).aggregate(
            total=Sum("amount")
        )["total"]
        issued = -(total or 0)
    pairs = (
        NetworkSpend.objects.filter(network=network, month=month)
        .filter(Q(issuer=brand) | Q(honoring=brand))
        .values_list("issuer_id", "honoring_id")
        .annotate(points=Sum("points"))
    )
    here_there: dict[int, int] = {}  # other brand -> this brand's points spent there
    there_here: dict[int, int] = {}  # other brand -> its points spent here
    redeemed = 0
    for issuer_id, honoring_id, points in pairs:
        if honoring_id == brand.pk:
            redeemed += points
            if issuer_id != brand.pk:
                there_here[issuer_id] = there_here.get(issuer_id, 0) + points
        elif issuer_id == brand.pk:
            here_there[honoring_id] = here_there.get(honoring_id, 0) + points
    slugs = dict(Brand.objects.filter(pk__in={*here_there, *there_here}).values_list("pk", "slug"))
    counterparties = []
    for other in sorted({*here_there, *there_here}, key=lambda pk: slugs[pk]):
        net = there_here.get(other, 0) - here_there.get(other, 0)
        counterparties.append(
            {
                "brand": slugs[other],
                "issued_here_spent_there": here_there.get(other, 0),
                "issued_there_spent_here": there_here.get(other, 0),
                "amount": _money(net * network.point_value),
            }
        )
    net_points = sum(there_here.values()) - sum(here_there.values())
    return {
        "month": f"{month:%Y-%m}",
        "unit": network.unit,
        "issued": issued,
        "redeemed": redeemed,
        "net_points": net_points,
        "net_amount": _money(net_points * network.point_value),
        "currency": network.currency,
        "counterparties": counterparties,
    }


def network_statement(*, brand: Brand, month: dt.date) -> dict:
    """The brand's statement of a month: as it was closed (a closed month never changes), else as it is."""
    network = brand.network
    closed = NetworkSettlement.objects.filter(network=network, month=month).first()
    if closed is not None:
        statement = closed.statements.get(brand.slug) or network_statement_compute(
            network=network, brand=brand, month=month
        )
        return {**statement, "closed": True}
    return {**network_statement_compute(network=network, brand=brand, month=month), "closed": False}


@transaction.atomic
def network_month_close(*, network: Network, month: dt.date, now: dt.datetime | None = None) -> NetworkSettlement:
    """Close a settlement month once it is over: every brand's statement, stored as it is now. Closing a
    closed month returns it unchanged. Spends and refunds after that count in the month they happen."""
    now = now or timezone.now()
    existing = NetworkSettlement.objects.filter(network=network, month=month).first()
    if existing is not None:
        return existing
    if settlement_month(now) <= month:
        raise SettlementError(message=f"{month:%Y-%m} is not over yet: a month is closed once it has ended.")
    statements = {
        brand.slug: network_statement_compute(network=network, brand=brand, month=month)
        for brand in Brand.objects.filter(network=network).order_by("slug")
    }
    settlement, _ = NetworkSettlement.objects.get_or_create(
        network=network, month=month, defaults={"statements": statements, "closed_at": now}
    )
    return settlement
