"""Reads of the perks app: the catalog, and whether a member can redeem a perk now (and if not, why)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from config.db import bulk_cursor
from ledger.models import Account, Balance
from loyalty.models import Brand, IdempotencyRecord, Member, Membership, Network, Tier
from loyalty.periods import cap_periods
from loyalty.selectors import membership_balance
from perks.models import Perk, Redemption

LIMIT_PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Taken:
    """How many of a perk a member holds (not cancelled): in all, and this day, week and month."""

    total: int
    day: int
    week: int
    month: int


def _available(perks: QuerySet[Perk]) -> QuerySet[Perk]:
    now = timezone.now()
    return (
        perks.filter(is_active=True)
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
    )


def perk_list_active(*, brand: Brand) -> QuerySet[Perk]:
    """The brand's perks in its own points (its network perks are in the network's catalog)."""
    return (
        _available(Perk.objects.filter(brand=brand, is_network_perk=False))
        .select_related("minimum_tier")
        .order_by("cost", "name")
    )


def network_perk_list_active(*, network_id: int) -> QuerySet[Perk]:
    """The network's catalog: every active network perk of every brand in the network."""
    return (
        _available(Perk.objects.filter(is_network_perk=True, brand__network_id=network_id, brand__is_active=True))
        .select_related("brand__network")
        .order_by("cost", "name", "id")
    )


def perk_has_limits(perk) -> bool:
    return any(
        limit is not None for limit in (perk.limit_total, perk.limit_per_day, perk.limit_per_week, perk.limit_per_month)
    )


def redemptions_taken(
    *, membership_id: int, perk_id: int, periods: dict[str, tuple[dt.datetime, dt.datetime]]
) -> Taken:
    """Every count the limits of a perk need, in one query (the redeem path reads them with its state)."""
    counts = Redemption.objects.filter(membership_id=membership_id, perk_id=perk_id).exclude(
        status=Redemption.Status.CANCELLED
    )
    found = counts.aggregate(
        total=Count("pk"),
        **{
            period: Count("pk", filter=Q(created_at__gte=periods[period][0], created_at__lt=periods[period][1]))
            for period in LIMIT_PERIODS
        },
    )
    return Taken(**found)


def redemption_refusal(
    *,
    perk,
    minimum_tier: tuple[int, str] | None,
    member_status: str,
    member_tier_rank: int | None,
    brand_id: int,
    points_name: str,
    taken: Callable[[], Taken],
    balance: Callable[[], int],
    now: dt.datetime,
) -> Refusal | None:
    """Why a member cannot redeem a perk now, or None: the rules, in the order a member hears them.

    `perk` is a Perk or anything with its fields (the redeem path reads a row, not a model);
    `minimum_tier` is the perk's (rank, name). `taken` and `balance` are called only when a rule needs
    them, so a perk without limits never counts redemptions.
    """
    if (
        perk.brand_id != brand_id
        or not perk.is_active
        or (perk.available_from and now < perk.available_from)
        or (perk.available_until and now >= perk.available_until)
        or member_status != Membership.Status.ACTIVE
    ):
        return Refusal("not_available", f"{perk.name} is not available right now.")
    if minimum_tier is not None:
        rank, name = minimum_tier
        if member_tier_rank is None or member_tier_rank < rank:
            return Refusal("tier_required", f"Reach {name} to redeem {perk.name}.", {"tier": name})
    if perk_has_limits(perk):
        counts = taken()
        if perk.limit_total is not None and counts.total >= perk.limit_total:
            return Refusal(
                "limit_reached",
                f"You can redeem {perk.name} {perk.limit_total} time(s) in all.",
                {"period": "total", "limit": perk.limit_total},
            )
        for period, limit in (
            ("day", perk.limit_per_day),
            ("week", perk.limit_per_week),
            ("month", perk.limit_per_month),
        ):
            if limit is not None and getattr(counts, period) >= limit:
                return Refusal(
                    "limit_reached",
                    f"You can redeem {perk.name} {limit} time(s) a {period}.",
                    {"period": period, "limit": limit},
                )
    if perk.stock is not None and perk.stock <= 0:
        return Refusal("out_of_stock", f"{perk.name} is sold out.")
    points = balance()
    if points < perk.cost:
        missing = perk.cost - points
        return Refusal("insufficient_points", f"{missing} more {points_name} needed.", {"missing": missing})
    return None


def perk_refusal(
    *, membership: Membership, perk: Perk, balance: int | None = None, points_name: str | None = None
) -> Refusal | None:
    """Why this member cannot redeem this perk right now, or None if they can.

    Read-only; perk_redeem checks the same rules (redemption_refusal) under the membership's row lock,
    which is what makes the limits hold under concurrency.
    """
    now = timezone.now()
    minimum_tier, member_tier_rank = None, None
    if perk.minimum_tier_id is not None:
        minimum_tier = (perk.minimum_tier.rank, perk.minimum_tier.name)
        member_tier_rank = membership.tier.rank if membership.tier_id is not None else None
    return redemption_refusal(
        perk=perk,
        minimum_tier=minimum_tier,
        member_status=membership.status,
        member_tier_rank=member_tier_rank,
        brand_id=membership.brand_id,
        points_name=points_name or membership.brand.points_name,
        taken=lambda: redemptions_taken(
            membership_id=membership.pk, perk_id=perk.pk, periods=cap_periods(when=now, zone=membership.brand.zone)
        ),
        balance=lambda: membership_balance(membership) if balance is None else balance,
        now=now,
    )


# --- what redemptions_make reads under the membership rows' locks -------------------------------


@dataclass(slots=True)
class PerkRow:
    """A perk's terms as the redeem path reads them (fresh, in its transaction): what the rules need.
    One object per perk in a batch: its `stock` counts down as the batch's requests take it."""

    id: int
    brand_id: int
    name: str
    cost: int
    # Carried on the redeem posting, for the economics report's value redeemed. The fields are in the
    # model's order: perks.services._redemption_new loads a Perk from them (Model.from_db expects it).
    cash_value: Decimal | None
    stock: int | None
    is_active: bool
    available_from: dt.datetime | None
    available_until: dt.datetime | None
    limit_total: int | None
    limit_per_day: int | None
    limit_per_week: int | None
    limit_per_month: int | None
    is_network_perk: bool


@dataclass(slots=True)
class IdempotencyAnswer:
    request_hash: str
    state: str
    status: int | None
    body: dict | None


@dataclass(slots=True)
class RedeemRead:
    """What one request of a batch is decided on, read once the membership rows are locked."""

    claim_id: int | None  # the idempotency record this request claimed (inserted), if it sent a key
    answer: IdempotencyAnswer | None  # the record of an earlier request with the same key, if visible
    perk: PerkRow | None  # None: no such perk (of the brand, for a request that asks so)
    minimum_tier: tuple[int, str] | None  # the perk's (rank, name)
    taken: Taken  # this member's redemptions of the perk (zero unless the perk has limits)
    member_tier_rank: int | None
    balance: int  # the wallet's balance: a plain read, the ledger checks again under its lock
    existing_id: int | None  # a redemption of this member with this request key
    existing_perk_id: int | None
    next_id: int  # the id a new redemption gets (its answer is complete before it is inserted)


@dataclass(frozen=True, slots=True)
class RedeemQuery:
    """One request of a batch, as redeem_reads_get needs it."""

    membership_id: int
    tier_id: int | None
    wallet_id: int | None
    perk_id: int
    brand_perks_only: bool  # API requests: another brand's perk is no perk
    request_key: str
    key: str | None  # the API idempotency key, claimed here
    fingerprint: str | None


_PERK_COLUMNS = ", ".join(f"p.{name}" for name in PerkRow.__slots__)

# One row per request, in request order. The claims are inserted only for requests whose perk exists
# (a 404 claims nothing), in key order (two batches that claim some of the same keys queue instead of
# deadlocking). ON CONFLICT DO NOTHING: a key committed by an earlier request comes back in `rec` (when
# it committed before this statement began) and claims nothing; one still in flight makes this statement
# wait for it.
# Every lookup by key is a LATERAL probe of its unique index (LIMIT 1 keeps PostgreSQL from flattening
# it back into a join). As joins, the planner chose from statistics, and a prepared statement keeps the
# generic plan it made while the tables were small (a new installation, before autovacuum's first
# ANALYZE): it scanned all of the brand's idempotency records and all redemptions for each request, 16 ms
# a batch after a few thousand redemptions, and growing. (The foreign keys' own indexes, which it also
# picked over the unique ones, are gone: migrations loyalty 0017 and perks 0003.)
_READS_SQL = f"""
    WITH req AS (
        SELECT *
          FROM unnest(%(n)b::int[], %(membership)b::bigint[], %(tier)b::bigint[], %(wallet)b::bigint[],
                      %(perk)b::bigint[], %(brand_only)b::boolean[], %(request_key)b::text[], %(key)b::text[],
                      %(hash)b::text[])
               AS r(n, membership_id, tier_id, wallet_id, perk_id, brand_only, request_key, key, hash)
    ), claim AS (
        INSERT INTO {IdempotencyRecord._meta.db_table}
               (brand_id, key, request_hash, state, response_status, response_body, created_at)
        SELECT %(brand)b::bigint, req.key, req.hash, %(in_progress)b::text, NULL, NULL, %(now)b::timestamptz
          FROM req JOIN {Perk._meta.db_table} p ON p.id = req.perk_id AND p.brand_id = %(brand)b::bigint
         WHERE req.key IS NOT NULL
         ORDER BY req.key
        ON CONFLICT (brand_id, key) DO NOTHING
        RETURNING id, key
    )
    SELECT claim.id, rec.request_hash, rec.state, rec.response_status, rec.response_body::text,
           {_PERK_COLUMNS}, mt.rank, mt.name,
           c.total, c.day, c.week, c.month,
           t.rank, b.balance, x.id, x.perk_id,
           nextval(pg_get_serial_sequence('{Redemption._meta.db_table}', 'id')),
           (SELECT id FROM {Account._meta.db_table} WHERE code = %(account_code)b::text)
      FROM req
      LEFT JOIN claim ON claim.key = req.key
      LEFT JOIN LATERAL (
            SELECT * FROM {IdempotencyRecord._meta.db_table} rec
             WHERE rec.brand_id = %(brand)b::bigint AND rec.key = req.key LIMIT 1
           ) rec ON true
      LEFT JOIN LATERAL (
            SELECT * FROM {Perk._meta.db_table} p
             WHERE p.id = req.perk_id AND (NOT req.brand_only OR p.brand_id = %(brand)b::bigint) LIMIT 1
           ) p ON true
      LEFT JOIN LATERAL (SELECT * FROM {Tier._meta.db_table} mt WHERE mt.id = p.minimum_tier_id LIMIT 1) mt ON true
      LEFT JOIN LATERAL (
            SELECT count(*) AS total,
                   count(*) FILTER (WHERE r.created_at >= %(day_from)b::timestamptz
                                      AND r.created_at < %(day_to)b::timestamptz) AS day,
                   count(*) FILTER (WHERE r.created_at >= %(week_from)b::timestamptz
                                      AND r.created_at < %(week_to)b::timestamptz) AS week,
                   count(*) FILTER (WHERE r.created_at >= %(month_from)b::timestamptz
                                      AND r.created_at < %(month_to)b::timestamptz) AS month
              FROM {Redemption._meta.db_table} r
             WHERE (p.limit_total IS NOT NULL OR p.limit_per_day IS NOT NULL
                    OR p.limit_per_week IS NOT NULL OR p.limit_per_month IS NOT NULL)
               AND r.membership_id = req.membership_id AND r.perk_id = p.id AND r.status <> %(cancelled)b::text
           ) c ON true
      LEFT JOIN LATERAL (SELECT * FROM {Tier._meta.db_table} t WHERE t.id = req.tier_id LIMIT 1) t ON true
      LEFT JOIN LATERAL (SELECT * FROM {Balance._meta.db_table} b WHERE b.account_id = req.wallet_id LIMIT 1) b ON true
      LEFT JOIN LATERAL (
            SELECT * FROM {Redemption._meta.db_table} x
             WHERE x.membership_id = req.membership_id AND x.request_key = req.request_key LIMIT 1
           ) x ON true
     ORDER BY req.n
"""  # noqa: S608 - only table and column names are formatted in
_PERK_END = 5 + len(PerkRow.__slots__)


@dataclass(slots=True)
class RedeemReads:
    requests: list[RedeemRead]  # in the order of the queries
    redemptions_account_id: int | None  # the brand's redemptions account (None before its first redemption)


def redeem_reads_get(
    *, brand: Brand, queries: Sequence[RedeemQuery], redemptions_account_code: str, now: dt.datetime
) -> RedeemReads:
    """What redemptions_make decides a batch on, in one statement whatever its size. Call it with the
    membership rows locked, in the same transaction: the limits counted here cannot move until it
    commits. Requests of one perk share its PerkRow.

    Each request's idempotency key (if any) is claimed here: its IdempotencyRecord inserted
    (`in_progress`) unless the brand has one already, which then comes back in `answer`.
    """
    params = _reads_params(brand, queries, redemptions_account_code, now)
    with bulk_cursor() as cursor:
        cursor.execute(_READS_SQL, params, prepare=True)
        rows = cursor.fetchall()
    perks: dict[int, PerkRow] = {}
    reads = []
    for row in rows:
        perk = None
        if row[5] is not None:
            perk = perks.get(row[5]) or perks.setdefault(row[5], PerkRow(*row[5:_PERK_END]))
        tier_rank, tier_name, total, day, week, month, member_rank, balance, existing_id, existing_perk_id, next_id = (
            row[_PERK_END:-1]
        )
        reads.append(
            RedeemRead(
                claim_id=row[0],
                answer=_answer(*row[1:5]) if row[1] is not None else None,
                perk=perk,
                minimum_tier=(tier_rank, tier_name) if tier_rank is not None else None,
                taken=Taken(total or 0, day or 0, week or 0, month or 0),
                member_tier_rank=member_rank,
                balance=balance or 0,
                existing_id=existing_id,
                existing_perk_id=existing_perk_id,
                next_id=next_id,
            )
        )
    return RedeemReads(reads, rows[0][-1] if rows else None)


def _reads_params(
    brand: Brand, queries: Sequence[RedeemQuery], redemptions_account_code: str, now: dt.datetime
) -> dict:
    periods = cap_periods(when=now, zone=brand.zone)
    return {
        "n": list(range(len(queries))),
        "membership": [query.membership_id for query in queries],
        "tier": [query.tier_id for query in queries],
        "wallet": [query.wallet_id for query in queries],
        "perk": [query.perk_id for query in queries],
        "brand_only": [query.brand_perks_only for query in queries],
        "request_key": [query.request_key for query in queries],
        "key": [query.key for query in queries],
        "hash": [query.fingerprint for query in queries],
        "brand": brand.pk,
        "in_progress": IdempotencyRecord.State.IN_PROGRESS.value,
        "now": now,
        "cancelled": Redemption.Status.CANCELLED.value,
        "account_code": redemptions_account_code,
        **{f"{period}_from": periods[period][0] for period in LIMIT_PERIODS},
        **{f"{period}_to": periods[period][1] for period in LIMIT_PERIODS},
    }


def _answer(request_hash: str, state: str, status: int | None, body: str | dict | None) -> IdempotencyAnswer:
    # Django has psycopg hand jsonb over as text (JSONField decodes it); a raw read decodes it here.
    return IdempotencyAnswer(request_hash, state, status, json.loads(body) if isinstance(body, str) else body)


def idempotency_answer_get(*, brand_id: int, key: str) -> IdempotencyAnswer | None:
    """The record of an idempotency key as committed now (a new statement: a new snapshot)."""
    found = (
        IdempotencyRecord.objects.filter(brand_id=brand_id, key=key)
        .values_list("request_hash", "state", "response_status", "response_body")
        .first()
    )
    return IdempotencyAnswer(*found) if found else None


def redemption_list_for_user(user) -> QuerySet[Redemption]:
    return (
        Redemption.objects.filter(membership__member__user=user)
        .select_related("perk", "brand")
        .order_by("-created_at", "-id")
    )


def network_perk_refusal(*, member: Member, perk: Perk, balance: int) -> Refusal | None:
    """Why this person cannot redeem this network perk now (None: they can): the perk's rules, counted on
    their membership of the honoring brand (none yet: nothing taken), against their network points."""
    unit = perk.brand.network.unit
    membership = Membership.objects.filter(member=member, brand=perk.brand).select_related("brand", "tier").first()
    if membership is not None:
        return perk_refusal(membership=membership, perk=perk, balance=balance, points_name=unit)
    return redemption_refusal(
        perk=perk,
        minimum_tier=None,
        member_status=Membership.Status.ACTIVE,
        member_tier_rank=None,
        brand_id=perk.brand_id,
        points_name=unit,
        taken=lambda: Taken(0, 0, 0, 0),
        balance=lambda: balance,
        now=timezone.now(),
    )


def networks_for_member(member: Member | None) -> list[Network]:
    """The open networks a person is in: those of the brands whose clubs they joined."""
    if member is None:
        return []
    return list(Network.objects.filter(brands__memberships__member=member).distinct().order_by("name"))
