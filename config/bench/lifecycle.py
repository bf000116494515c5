"""The daily points lifecycle at a million members: `lifecycle_run` timed on brands seeded set-based.

A brand's lifecycle job (loyalty.services.lifecycle) walks every membership once a day: it expires what
is left of the lots past their date, one ledger transaction per member, and weighs every member against
the tiers. At a million members that is a million postings and a million tier decisions in one run, so
the question is whether it stays linear: the same work per member at 10,000 members and at 1,000,000.

In a throwaway database of its own, for a brand of 10,000 members and then one of `members`:

1. Seed, set-based (INSERT ... SELECT over arrays of member numbers, 50,000 members a statement; no
   Python loop per row, no ORM save): a coffee-like brand (UTC, points expire after 6 months, tiers
   Green 0 / Gold 500 / Reserve 2500), members and their memberships (at Green, the entry tier), a
   wallet each, and two earns per member as the event processor would have posted them: 100 points
   on 15 January 2026 and 50 on 15 March 2026, each a real issuance -> wallet transaction with its
   entries, lots (PointsLot) and qualifying buckets. The hash chains are real (the wallets' computed
   in SQL, the issuance account's, one chain of two entries per member, in Python), and the balance
   rows are what the entries roll up to: `reconcile` holds, and so does `verify_ledger` (checked by
   hand at 50,000 members; not run here, it walks every entry in Python).
2. VACUUM ANALYZE the seeded tables, as autovacuum would have left a brand's tables by its run.
3. `lifecycle_run(brand, as_of=2026-08-01)`: January's lots expire (month < February 2026), and each
   member loses max(0, 150 - 50) = 100 points; March's stay. Timed, with the expiry and tier steps
   apart. Then the same run again: it must expire nothing, and its time is the no-op's.
4. Check the books: what the job reported, the brand's `expired` account, the wallets and the lots
   against what the seed says must have expired; then `manage.py reconcile` over the whole database.

What it reports: members/s of the run at `members`, the per-member cost at `members` over that at
10,000 (the job must not get slower per member as a brand grows), and one check that everything
expired exactly once and the books reconcile.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
import time
from dataclasses import dataclass, field

from django.core.management import CommandError, call_command
from django.core.management.base import OutputWrapper
from django.db import connection, transaction
from django.db.models import Count, Sum

from config.db import bulk_cursor
from ledger.hashing import GENESIS_HASH, canonical_time, entry_digest
from ledger.models import Account, Balance, Entry
from ledger.models import Transaction as LedgerTransaction
from loyalty.models import Brand, Member, Membership, PointsLot, QualifyingBucket, Tier
from loyalty.periods import months_add
from loyalty.services.accounts import brand_account, brand_unit, wallet_code

AS_OF = dt.date(2026, 8, 1)
EXPIRE_MONTHS = 6
# The two earns of every member: (month of the lot, points, when posted). Their order is their order in
# every chain.
EARNS = (
    (dt.date(2026, 1, 1), 100, dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)),
    (dt.date(2026, 3, 1), 50, dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC)),
)
JOINED = dt.datetime(2026, 1, 2, 9, tzinfo=dt.UTC)
TIERS = (("Green", 0, "1.00"), ("Gold", 500, "1.20"), ("Reserve", 2500, "1.70"))
SMALL = 10_000  # the brand the big one's per-member cost is compared with
SEED_CHUNK = 50_000  # members per seeding statement (and per commit)
# A million members in under about 8 minutes: one night's job for the biggest brand, on one worker
# process, leaving the rest of the night to the others. The batched ingest posts 5,000 events/s over
# HTTP; the job posts one transaction per member through the same ledger call, without the HTTP.
MEMBERS_PER_SECOND = 2_000
PER_MEMBER_RATIO = 1.5  # at most this many times the per-member cost at SMALL members


def expected_expiry() -> int:
    """Points each member loses as of AS_OF: what is left of the lots before the live month, that is the
    wallet minus the lots from the live month on (no member spent anything)."""
    live = months_add(AS_OF.replace(day=1), -EXPIRE_MONTHS)
    balance = sum(points for _, points, _ in EARNS)
    newer = sum(points for month, points, _ in EARNS if month >= live)
    return max(0, balance - newer)


# The JSON text ledger.hashing.entry_digest hashes, built in SQL: every string here is ASCII without
# quotes or backslashes (keys, account codes, ISO times, hex), so it needs no escaping.
def _entry_hash_sql(key: str, code: str, amount: str, seq: str, moment: str, prev: str) -> str:
    return (
        f"""encode(sha256(convert_to('["' || {key} || '","' || {code} || '",' || {amount} || ',' || {seq}"""
        f""" || ',"' || {moment} || '","' || {prev} || '"]', 'UTF8')), 'hex')"""
    )


# ledger.hashing.content_hash of an earn: kind, the (code, amount) pairs sorted by code ("...:issuance"
# sorts before "...:wallet:..."), reverses nothing.
_CONTENT_HASH_SQL = """encode(sha256(convert_to('["earn",[["' || %(issuance_code)s || '",' || -%(points)s::bigint
    || '],["' || w.code || '",' || %(points)s::bigint || ']],null]', 'UTF8')), 'hex')"""

# The first earn: members, their wallets and memberships, and the earn with its lot and bucket. Ids come
# from the tables' own sequences up front, so that the rows can name each other in one statement (a
# membership its wallet, a wallet code its membership) without an UPDATE afterwards; the FOREIGN KEY
# checks are deferred to the commit, when all rows are there.
_JOIN_SQL = f"""
WITH g AS MATERIALIZED (
    SELECT c.n, c.prev_hash, c.hash AS issuance_hash,
           nextval(pg_get_serial_sequence('{Member._meta.db_table}', 'id')) AS member_id,
           nextval(pg_get_serial_sequence('{Membership._meta.db_table}', 'id')) AS membership_id,
           nextval(pg_get_serial_sequence('{Account._meta.db_table}', 'id')) AS wallet_id,
           nextval(pg_get_serial_sequence('{LedgerTransaction._meta.db_table}', 'id')) AS transaction_id
      FROM unnest(%(n)s::bigint[], %(prev)s::text[], %(hash)s::text[]) AS c(n, prev_hash, hash)
), w AS MATERIALIZED (
    SELECT g.*, %(wallet_prefix)s || g.membership_id AS code, %(key_prefix)s || g.n AS key FROM g
), members AS (
    INSERT INTO {Member._meta.db_table} (id, email, name, created_at)
    SELECT member_id, %(email_prefix)s || n || '@bench.example', '', %(joined)s FROM w
), wallets AS (
    INSERT INTO {Account._meta.db_table} (id, code, kind, unit, allow_negative, metadata, created_at)
    SELECT wallet_id, code, 'wallet', %(unit)s, false, '{{}}'::jsonb, %(joined)s FROM w
), memberships AS (
    INSERT INTO {Membership._meta.db_table}
           (id, member_id, brand_id, external_id, name, status, joined_at, tier_id, tier_since, tier_valid_until,
            wallet_id, pending_wallet_id, lifetime_earned, lifetime_redeemed, lifetime_expired)
    SELECT membership_id, member_id, %(brand)s, %(external_prefix)s || n, '', 'active', %(joined)s, %(tier)s,
           %(joined)s, NULL, wallet_id, NULL, %(earned)s, 0, 0
      FROM w
), lots AS (
    INSERT INTO {PointsLot._meta.db_table} (membership_id, brand_id, month, points, closed)
    SELECT membership_id, %(brand)s, %(month)s, %(points)s, false FROM w
), buckets AS (
    INSERT INTO {QualifyingBucket._meta.db_table} (membership_id, month, points)
    SELECT membership_id, %(month)s, %(points)s FROM w
), txns AS (
    INSERT INTO {LedgerTransaction._meta.db_table}
           (id, idempotency_key, kind, memo, metadata, reverses_id, content_hash, created_at)
    SELECT transaction_id, key, 'earn', %(memo)s, %(metadata)s::jsonb, NULL, {_CONTENT_HASH_SQL}, %(at)s FROM w
)
INSERT INTO {Entry._meta.db_table} (transaction_id, account_id, amount, seq, prev_hash, hash, created_at)
SELECT transaction_id, %(issuance)s, -%(points)s::bigint, %(issuance_seq)s::bigint + n, prev_hash, issuance_hash,
       %(at)s
  FROM w
UNION ALL
SELECT transaction_id, wallet_id, %(points)s::bigint, 1, %(genesis)s,
       {_entry_hash_sql("key", "code", "%(points)s::bigint", "1", "%(moment)s", "%(genesis)s")}, %(at)s
  FROM w
"""  # noqa: S608 - only table names are formatted in

# Each later earn: found by the membership's external id (the brand's own member number), chained to
# the wallet's previous entry; the last one also writes the wallet's balance row, its final rollup.
_EARN_SQL = f"""
WITH w AS MATERIALIZED (
    SELECT c.n, c.prev_hash, c.hash AS issuance_hash, m.id AS membership_id, m.wallet_id, a.code,
           %(key_prefix)s || c.n AS key, e.hash AS wallet_prev,
           nextval(pg_get_serial_sequence('{LedgerTransaction._meta.db_table}', 'id')) AS transaction_id
      FROM unnest(%(n)s::bigint[], %(prev)s::text[], %(hash)s::text[]) AS c(n, prev_hash, hash)
      JOIN {Membership._meta.db_table} m ON m.brand_id = %(brand)s AND m.external_id = %(external_prefix)s || c.n
      JOIN {Account._meta.db_table} a ON a.id = m.wallet_id
      JOIN {Entry._meta.db_table} e ON e.account_id = m.wallet_id AND e.seq = %(wallet_seq)s::bigint - 1
), h AS MATERIALIZED (
    SELECT w.*,
           {
    _entry_hash_sql("w.key", "w.code", "%(points)s::bigint", "%(wallet_seq)s::bigint", "%(moment)s", "w.wallet_prev")
} AS wallet_hash
      FROM w
), lots AS (
    INSERT INTO {PointsLot._meta.db_table} (membership_id, brand_id, month, points, closed)
    SELECT membership_id, %(brand)s, %(month)s, %(points)s, false FROM h
), buckets AS (
    INSERT INTO {QualifyingBucket._meta.db_table} (membership_id, month, points)
    SELECT membership_id, %(month)s, %(points)s FROM h
), balances AS (
    INSERT INTO {Balance._meta.db_table}
           (account_id, balance, total_credited, total_debited, entry_count, head_seq, head_hash, allow_negative,
            updated_at)
    SELECT wallet_id, %(earned)s, %(earned)s, 0, %(wallet_seq)s, %(wallet_seq)s, wallet_hash, false, %(at)s
      FROM h WHERE %(last)s
), txns AS (
    INSERT INTO {LedgerTransaction._meta.db_table}
           (id, idempotency_key, kind, memo, metadata, reverses_id, content_hash, created_at)
    SELECT transaction_id, key, 'earn', %(memo)s, %(metadata)s::jsonb, NULL,
           {_CONTENT_HASH_SQL.replace("w.code", "h.code")}, %(at)s
      FROM h
)
INSERT INTO {Entry._meta.db_table} (transaction_id, account_id, amount, seq, prev_hash, hash, created_at)
SELECT transaction_id, %(issuance)s, -%(points)s::bigint, %(issuance_seq)s::bigint + n, prev_hash, issuance_hash,
       %(at)s
  FROM h
UNION ALL
SELECT transaction_id, wallet_id, %(points)s::bigint, %(wallet_seq)s, wallet_prev, wallet_hash, %(at)s FROM h
"""  # noqa: S608 - only table names are formatted in

SEEDED_TABLES = (
    Member._meta.db_table,
    Membership._meta.db_table,
    Account._meta.db_table,
    Balance._meta.db_table,
    LedgerTransaction._meta.db_table,
    Entry._meta.db_table,
    PointsLot._meta.db_table,
    QualifyingBucket._meta.db_table,
)


def brand_seed(members: int, *, slug: str) -> Brand:
    """A brand of `members` members, each with the two earns of EARNS behind their wallet (see the module
    docstring)."""
    brand = Brand.objects.create(
        name=f"Lifecycle Coffee {members:,}",
        slug=slug,
        timezone="UTC",
        points_name="Stars",
        points_expire_months=EXPIRE_MONTHS,
    )
    tiers = [
        Tier.objects.create(brand=brand, name=name, rank=rank, threshold=threshold, multiplier=multiplier)
        for rank, (name, threshold, multiplier) in enumerate(TIERS, start=1)
    ]
    issuance = brand_account(brand=brand, kind=Account.Kind.ISSUANCE)
    earned = sum(points for _, points, _ in EARNS)
    common = {
        "brand": brand.pk,
        "tier": tiers[0].pk,
        "unit": brand_unit(brand),
        "issuance": issuance.pk,
        "issuance_code": issuance.code,
        "wallet_prefix": wallet_code(brand.pk, 0)[:-1],
        "email_prefix": f"lifecycle-{brand.pk}-",
        "external_prefix": "lc-",
        "joined": JOINED,
        "earned": earned,
        "genesis": GENESIS_HASH,
    }
    head = GENESIS_HASH  # the issuance account's chain, carried across chunks and earns
    for index, (month, points, at) in enumerate(EARNS):
        key_prefix = f"lifecycle-bench:{brand.pk}:{month:%Y-%m}:"
        moment = canonical_time(at)
        for first in range(1, members + 1, SEED_CHUNK):
            numbers = list(range(first, min(first + SEED_CHUNK, members + 1)))
            prevs, hashes = [], []
            for n in numbers:
                prevs.append(head)
                head = entry_digest(
                    idempotency_key=f"{key_prefix}{n}",
                    account_code=issuance.code,
                    amount=-points,
                    seq=index * members + n,
                    moment=moment,
                    prev_hash=head,
                )
                hashes.append(head)
            params = {
                **common,
                "n": numbers,
                "prev": prevs,
                "hash": hashes,
                "key_prefix": key_prefix,
                "month": month,
                "points": points,
                "at": at,
                "moment": moment,
                "memo": f"bench: {points} points earned in {month:%B %Y}",
                "metadata": f'{{"lot": "{month.isoformat()}"}}',
                "issuance_seq": index * members,
                "wallet_seq": index + 1,
                "last": index == len(EARNS) - 1,
            }
            with transaction.atomic(), bulk_cursor() as cursor:
                cursor.execute(_JOIN_SQL if index == 0 else _EARN_SQL, params, prepare=False)
    issued = earned * members
    Balance.objects.filter(account=issuance).update(
        balance=-issued,
        total_credited=0,
        total_debited=issued,
        entry_count=len(EARNS) * members,
        head_seq=len(EARNS) * members,
        head_hash=head,
    )
    return brand


def vacuum_analyze() -> None:
    """What autovacuum would have done to the seeded tables by the night of the job: statistics for the
    planner, the visibility map for index-only scans. VACUUM runs outside a transaction block."""
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(SEEDED_TABLES)}")


@dataclass
class Run:
    """One lifecycle_run, timed: the whole run and each step (from the progress callbacks)."""

    seconds: float
    expired_members: int
    expired_points: int
    tiers_moved: int
    steps: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in self.steps.items())
        return (
            f"{self.seconds:.1f} s ({steps or 'no step had work'}): expired {self.expired_points:,} points of "
            f"{self.expired_members:,} members, {self.tiers_moved:,} tier moves"
        )


def lifecycle_time(brand: Brand, *, echo: bool) -> Run:
    """Run the brand's lifecycle as of AS_OF, timed; with `echo`, a progress line every tenth."""
    from loyalty.services.lifecycle import lifecycle_run

    started = time.perf_counter()
    ended: dict[str, float] = {}
    shown: dict[str, int] = {}

    def progress(step: str, done: int, total: int | None) -> None:
        ended[step] = time.perf_counter()
        tenth = done * 10 // total if total else 0
        if echo and tenth > shown.get(step, 0):
            shown[step] = tenth
            print(f"    {step}: {done:,} of {total:,} ({ended[step] - started:.0f} s)", flush=True)

    result = lifecycle_run(brand=Brand.objects.get(pk=brand.pk), as_of=AS_OF, progress=progress)
    seconds = time.perf_counter() - started
    # Each step's time: from the end of the step before (or the start) to its last progress call.
    steps, previous = {}, started
    for step, at in sorted(ended.items(), key=lambda item: item[1]):
        steps[step], previous = at - previous, at
    return Run(
        seconds=seconds,
        expired_members=result.expired_members,
        expired_points=result.expired_points,
        tiers_moved=result.tiers_up + result.tiers_down,
        steps=steps,
    )


def books_check(brand: Brand, members: int, first: Run, second: Run) -> list[str]:
    """What must hold after two runs: each member lost exactly what their lots said, once."""
    due = expected_expiry()
    problems = []
    if (first.expired_members, first.expired_points) != (members, members * due):
        problems.append(
            f"the first run expired {first.expired_points:,} points of {first.expired_members:,} members, "
            f"not {members * due:,} of {members:,}"
        )
    if second.expired_members or second.expired_points:
        problems.append(f"the second run expired {second.expired_points:,} points again")
    if first.tiers_moved or second.tiers_moved:
        problems.append(f"{first.tiers_moved + second.tiers_moved} tier moves (every member stays Green)")
    expired = Balance.objects.get(account__code=f"brand:{brand.pk}:{Account.Kind.EXPIRED}")
    if (expired.balance, expired.entry_count) != (members * due, members):
        problems.append(
            f"the expired account holds {expired.balance:,} points in {expired.entry_count:,} entries, "
            f"not {members * due:,} in {members:,}"
        )
    earned = sum(points for _, points, _ in EARNS)
    memberships = Membership.objects.filter(brand=brand)
    wallets = Balance.objects.filter(account_id__in=memberships.values("wallet_id")).aggregate(
        points=Sum("balance"), n=Count("pk")
    )
    if (wallets["points"], wallets["n"]) != (members * (earned - due), members):
        problems.append(f"{wallets['n']:,} wallets hold {wallets['points']:,} points, not {members * (earned - due):,}")
    lifetime = memberships.aggregate(expired=Sum("lifetime_expired"))["expired"]
    if lifetime != members * due:
        problems.append(f"lifetime_expired adds up to {lifetime:,}, not {members * due:,}")
    live = months_add(AS_OF.replace(day=1), -EXPIRE_MONTHS)
    still_open = PointsLot.objects.filter(brand=brand, closed=False, month__lt=live).count()
    if still_open:
        problems.append(f"{still_open:,} expired lots still open")
    return problems


# Accounts per reconcile statement: its default (each chunk reads only its own accounts' entries).
RECONCILE_CHUNK = 1_000


def reconcile() -> tuple[float, str | None]:
    """`manage.py reconcile` over the whole database, as an operator runs it: (seconds, the failure)."""
    out = io.StringIO()
    started = time.perf_counter()
    try:
        call_command("reconcile", "--no-progress", f"--chunk-size={RECONCILE_CHUNK}", stdout=out, stderr=out)
    except (SystemExit, CommandError) as error:
        if not isinstance(error, SystemExit) or error.code:
            return time.perf_counter() - started, f"reconcile failed: {out.getvalue()[-500:]} {error}"
    return time.perf_counter() - started, None


def _measure(members: int, slug: str) -> tuple[Run, Run, list[str]]:
    """Seed a brand of `members`, run its lifecycle twice, check its books; prints as it goes."""
    print(f"\n  {members:,} members: seeding...", flush=True)
    started = time.perf_counter()
    brand = brand_seed(members, slug=slug)
    seeded = time.perf_counter()
    vacuum_analyze()
    print(
        f"  seeded in {seeded - started:.1f} s ({members / (seeded - started):,.0f} members/s: "
        f"{members:,} members, {len(EARNS) * members:,} earns, {len(EARNS) * 2 * members:,} entries), "
        f"VACUUM ANALYZE {time.perf_counter() - seeded:.1f} s",
        flush=True,
    )
    due = expected_expiry()
    print(f"  lifecycle as of {AS_OF}: {members * due:,} points of {members:,} members expected to expire", flush=True)
    first = lifecycle_time(brand, echo=members > SMALL)
    print(f"  first run: {first.describe()}; {members / first.seconds:,.0f} members/s", flush=True)
    second = lifecycle_time(brand, echo=False)
    print(f"  second run (nothing left to do): {second.describe()}", flush=True)
    problems = books_check(brand, members, first, second)
    print(f"  books: {'; '.join(problems) or 'expired exactly what the lots say, once'}", flush=True)
    return first, second, problems


def run(report, *, members: int = 1_000_000) -> None:
    """The lifecycle section of `make bench`: 10,000 members, then `members`, in a throwaway database."""
    from ledger.management.commands.ledger_bench import _throwaway_database

    print(f"\nlifecycle: expiry and tiers at {SMALL:,} members, then at {members:,}...", flush=True)
    with _throwaway_database(f"tally_bench_lifecycle_{os.getpid()}", OutputWrapper(sys.stdout)):
        small, _, small_problems = _measure(SMALL, "lifecycle-small")
        big, big_again, big_problems = _measure(members, "lifecycle-big")
        seconds, failure = reconcile()
        print(f"  reconcile: {failure or 'every balance matches its entries'} ({seconds:.0f} s)", flush=True)

    rate = members / big.seconds
    report.absolute(
        f"lifecycle at {members:,} members (members/s, whole run)", rate, target=MEMBERS_PER_SECOND, unit="members/s"
    )
    report.note(f"lifecycle at {members:,} members, run again (nothing to do)", f"{big_again.seconds:.1f} s")
    per_big, per_small = big.seconds / members * 1e6, small.seconds / SMALL * 1e6
    report.absolute(
        f"lifecycle at {members:,} members / at {SMALL:,}, per member ({per_big:.0f} vs {per_small:.0f} µs)",
        per_big / per_small,
        target=PER_MEMBER_RATIO,
        unit="x",
        at_most=True,
    )
    problems = [*small_problems, *big_problems, *([failure] if failure else [])]
    report.check(
        "lifecycle: expired exactly what the lots say, once; reconcile clean", not problems, "; ".join(problems)
    )
