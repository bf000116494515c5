"""Redemptions made as a batch (perks.services.redemptions_make): one transaction, decided in order."""

import random
import threading
import time
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from config.errors import ApplicationError
from ledger.selectors import account_balance_get
from loyalty import locks as loyalty_locks
from loyalty.locks import MemberRef
from loyalty.models import IdempotencyRecord, Member, Membership
from perks.api import redemption_out
from perks.models import Perk, Redemption
from perks.selectors import _READS_SQL, RedeemQuery, _reads_params
from perks.services import RedeemAnswer, RedeemRequest, RedeemResult, redemptions_make
from tests.loyalty.factories import AdjustmentFactory, BrandFactory
from tests.perks.factories import PerkFactory, funded_membership
from tests.plans import generic_plan, table_scans
from tests.statements import statements_sent

pytestmark = pytest.mark.django_db


def request(membership, perk, **kwargs):
    return RedeemRequest(MemberRef(membership_id=membership.pk), perk.pk, uuid.uuid4().hex, **kwargs)


def balance(membership) -> int:
    return account_balance_get(Membership.objects.get(pk=membership.pk).wallet).balance


def code(outcome) -> str:
    if isinstance(outcome, RedeemResult):
        return "ok"
    assert isinstance(outcome, ApplicationError), outcome
    return outcome.code


def test_a_batch_decides_each_request_as_if_they_came_one_after_the_other():
    brand = BrandFactory()
    ann = funded_membership(brand=brand, points=100)
    bob = funded_membership(brand=brand, points=100)
    dear = PerkFactory(brand=brand, cost=60)
    once = PerkFactory(brand=brand, cost=30, limit_total=1)
    last = PerkFactory(brand=brand, cost=10, stock=1)

    outcomes = redemptions_make(
        brand=brand,
        requests=[
            request(ann, dear),  # 100 -> 40
            request(ann, dear),  # 40 < 60
            request(ann, once),  # 40 -> 10
            request(ann, once),  # the second of a once-only perk
            request(bob, last),  # the last one in stock
            request(ann, last),  # none left: out of stock before Ann's 10 points are even looked at
            RedeemRequest(MemberRef(email="nobody@example.com"), dear.pk, "x"),
            RedeemRequest(MemberRef(membership_id=ann.pk), 10**9, "y"),
        ],
    )

    assert [code(outcome) for outcome in outcomes] == [
        "ok",
        "insufficient_points",
        "ok",
        "limit_reached",
        "ok",
        "out_of_stock",
        "not_found",
        "not_found",
    ]
    assert [outcome.balance for outcome in outcomes if isinstance(outcome, RedeemResult)] == [40, 10, 90]
    assert outcomes[1].extra == {"missing": 20}
    assert (balance(ann), balance(bob)) == (10, 90)
    assert Perk.objects.get(pk=last.pk).stock == 0
    assert Membership.objects.get(pk=ann.pk).lifetime_redeemed == 90
    made = Redemption.objects.filter(membership=ann).order_by("pk")
    assert [(r.perk_id, r.cost, r.status) for r in made] == [(dear.pk, 60, "issued"), (once.pk, 30, "issued")]
    assert outcomes[0].redemption == made[0]
    assert outcomes[0].redemption.code == made[0].code
    call_command("reconcile")


def test_a_request_key_made_before_finds_its_redemption_and_another_perk_is_a_conflict():
    brand = BrandFactory()
    ann = funded_membership(brand=brand, points=100)
    perk, other = PerkFactory(brand=brand, cost=10), PerkFactory(brand=brand, cost=10)
    [first] = redemptions_make(brand=brand, requests=[RedeemRequest(MemberRef(membership_id=ann.pk), perk.pk, "r1")])

    again, conflict = redemptions_make(
        brand=brand,
        requests=[
            RedeemRequest(MemberRef(membership_id=ann.pk), perk.pk, "r1"),
            RedeemRequest(MemberRef(membership_id=ann.pk), other.pk, "r1"),
        ],
    )

    assert (again.created, again.redemption.pk, again.balance) == (False, first.redemption.pk, 90)
    assert conflict.code == "idempotency_conflict"
    assert Redemption.objects.count() == 1


def test_api_answers_are_stored_under_their_keys_and_refusals_too():
    brand = BrandFactory()
    funded_membership(brand=brand, points=50, member__email="ann@example.com", external_id="C-1")
    perk = PerkFactory(brand=brand, cost=40)

    def api(key, ref):
        return RedeemRequest(ref, perk.pk, key, key=key, fingerprint=f"hash-{key}")

    made, refused, by_external_id = redemptions_make(
        brand=brand,
        requests=[
            api("k1", MemberRef(email="ANN@example.com")),
            api("k2", MemberRef(email="ann@example.com", external_id="C-1")),
            api("k3", MemberRef(external_id="C-1")),
        ],
        render=redemption_out,
    )

    assert isinstance(made, RedeemAnswer) and made.status == 201 and made.body["balance"] == 10
    assert (refused.status, refused.body["error"]["code"]) == (422, "insufficient_points")
    assert by_external_id.status == 422
    stored = {record.key: record for record in IdempotencyRecord.objects.filter(brand=brand)}
    assert {key: (r.state, r.response_status) for key, r in stored.items()} == {
        "k1": ("done", 201),
        "k2": ("done", 422),
        "k3": ("done", 422),
    }
    assert stored["k1"].response_body == made.body
    assert made.body["id"] == Redemption.objects.get().pk


def test_another_brands_member_or_perk_is_not_found_over_the_api_and_claims_no_key():
    brand, other = BrandFactory(), BrandFactory()
    ann = funded_membership(brand=brand, points=50, member__email="ann@example.com")
    theirs = funded_membership(brand=other, points=50, member__email="them@example.com")
    their_perk = PerkFactory(brand=other, cost=1)

    outcomes = redemptions_make(
        brand=brand,
        requests=[
            RedeemRequest(MemberRef(email="ann@example.com"), their_perk.pk, "k1", key="k1", fingerprint="h1"),
            RedeemRequest(MemberRef(membership_id=theirs.pk), their_perk.pk, "k2", key="k2", fingerprint="h2"),
        ],
        render=redemption_out,
    )

    assert [outcome.code for outcome in outcomes] == ["not_found", "not_found"]
    assert not IdempotencyRecord.objects.exists()
    assert balance(ann) == 50


def test_the_statements_of_a_batch_do_not_grow_with_its_size():
    brand = BrandFactory()
    members = [funded_membership(brand=brand, points=100) for _ in range(8)]
    perk = PerkFactory(brand=brand, cost=5, stock=100, limit_per_day=5)
    redemptions_make(brand=brand, requests=[request(members[0], perk)])  # prepares the statements

    with statements_sent() as one:
        redemptions_make(brand=brand, requests=[request(members[0], perk)])
    with statements_sent() as two:
        redemptions_make(brand=brand, requests=[request(member, perk) for member in members[:2]])
    with statements_sent() as eight:
        outcomes = redemptions_make(brand=brand, requests=[request(member, perk) for member in members])

    assert [code(outcome) for outcome in outcomes] == ["ok"] * 8
    assert len(eight) == len(two), "\n".join(eight)
    # The ledger guards an INSERT of several postings with a savepoint of its own.
    assert len(two) == len(one) + 2, "\n".join(two)
    assert Perk.objects.get(pk=perk.pk).stock == 100 - 12


def test_one_request_per_idempotency_key_in_a_batch():
    brand = BrandFactory()
    ann = funded_membership(brand=brand, points=100)
    perk = PerkFactory(brand=brand, cost=5)
    twice = RedeemRequest(MemberRef(membership_id=ann.pk), perk.pk, "k", key="k", fingerprint="h")
    with pytest.raises(ValueError, match="One request per idempotency key"):
        redemptions_make(brand=brand, requests=[twice, twice], render=redemption_out)


def wait_until_blocked(timeout=10.0):
    """Until another connection of this database waits for a lock (on a row's transaction)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is read once per transaction otherwise
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.01)
    raise AssertionError("nobody waited for the lock")


def blocked_behind(update, call):
    """call() in a thread, started while this thread's transaction has run update() and holds its rows;
    this transaction commits once call() waits for them. Returns what call() returned (or raised)."""
    result = []

    def run():
        try:
            with transaction.atomic():
                result.append(call())
        except Exception as error:
            result.append(error)
        finally:
            connections.close_all()

    with transaction.atomic():
        update()
        thread = threading.Thread(target=run)
        thread.start()
        wait_until_blocked()
    thread.join(timeout=30)
    return result[0]


def crowd(brand, size=1000):
    """A brand of `size` members, their ids not in the order of their emails, their rows updated a few
    times before (as members' rows are), the tables analyzed: what it took here for PostgreSQL 16 to
    lose a row with a locking join."""
    order = list(range(size))
    random.Random(5).shuffle(order)
    people = Member.objects.bulk_create(Member(email=f"c{n}@example.com") for n in order)
    made = Membership.objects.bulk_create(Membership(member=person, brand=brand) for person in people)
    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE loyalty_member, loyalty_membership, perks_perk")
    for _ in range(3):
        Membership.objects.filter(brand=brand).update(lifetime_redeemed=F("lifetime_redeemed") + 1)
    by_email = {membership.member.email: membership for membership in made}
    return [by_email[f"c{n}@example.com"] for n in range(size)]


@pytest.mark.django_db(transaction=True)
def test_memberships_updated_while_their_locks_are_awaited_are_all_locked():
    """When a row it locks was updated meanwhile, PostgreSQL re-checks it against the statement
    (EvalPlanQual): a locking statement that joined the memberships with a CTE lost such rows (404s
    under load). They are locked by a scan of the membership table alone."""
    brand = BrandFactory()
    members = crowd(brand)
    refs = [MemberRef(email=f"c{n}@example.com") for n in range(10)]

    locked = blocked_behind(
        lambda: Membership.objects.filter(pk__in=[members[n].pk for n in (0, 5, 9)]).update(
            lifetime_redeemed=F("lifetime_redeemed")
        ),
        lambda: loyalty_locks.memberships_lock_rows_by_ref(brand_id=brand.pk, refs=refs),
    )

    assert [member.id if member else None for member in locked] == [members[n].pk for n in range(10)]


@pytest.mark.django_db(transaction=True)
def test_a_batch_behind_another_redemption_of_its_perk_and_members_takes_the_stock_exactly():
    brand = BrandFactory()
    members = crowd(brand, size=200)[:12]
    for member in members:
        AdjustmentFactory(membership=member, points=100, reason="funds")
    perk = PerkFactory(brand=brand, cost=5, stock=20)
    requests = [RedeemRequest(MemberRef(membership_id=member.pk), perk.pk, f"r{n}") for n, member in enumerate(members)]

    def another_redemption():
        Membership.objects.filter(pk__in=[members[n].pk for n in (0, 5, 9, 11)]).update(
            lifetime_redeemed=F("lifetime_redeemed")
        )
        Perk.objects.filter(pk=perk.pk).update(stock=F("stock") - 10)

    outcomes = blocked_behind(another_redemption, lambda: redemptions_make(brand=brand, requests=requests))

    assert [code(outcome) for outcome in outcomes] == ["ok"] * 10 + ["out_of_stock"] * 2
    assert Perk.objects.get(pk=perk.pk).stock == 0
    assert Redemption.objects.count() == 10


def test_a_batch_looks_its_keys_up_by_their_unique_indexes_even_with_the_statistics_of_small_tables():
    """A new installation plans its statements while its tables are small (and a prepared statement keeps
    that plan): the batch's reads must still probe each key's unique index, not scan all of the brand's
    idempotency records for each request (which grew with every redemption)."""
    brand = BrandFactory()
    ann = funded_membership(brand=brand, points=10_000)
    perk = PerkFactory(brand=brand, cost=1)
    with connection.cursor() as cursor:  # statistics of a nearly empty table
        cursor.execute(f"ANALYZE {IdempotencyRecord._meta.db_table}")
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(brand=brand, key=f"old-{n}", request_hash="h", state="done", response_status=201)
        for n in range(3000)
    )
    queries = [RedeemQuery(ann.pk, None, ann.wallet_id, perk.pk, True, f"r-{n}", f"new-{n}", "f") for n in range(8)]
    params = _reads_params(brand, queries, "brand:0:redemptions", timezone.now())

    scans = table_scans(generic_plan(_READS_SQL, params))

    # Each request's key looked up in the unique index by the key itself, not the brand's records
    # scanned for it.
    records = [scan for scan in scans if scan[1] == IdempotencyRecord._meta.db_table]
    assert records, scans
    assert all(kind == "Index Scan" and "= req.key" in condition for kind, _, condition in records), records
