"""The lifecycle job's rules hold when it runs twice at once, and while members spend and get refunds
(threads, each on its own database connection). The lifecycle lock serializes whole runs of one brand,
but correctness must not rest on it: these call the steps directly, around it."""

import datetime as dt

import pytest

from ledger.models import Transaction
from loyalty.models import EarnRule, Membership
from loyalty.selectors import membership_balance, membership_pending
from loyalty.services.lifecycle import LifecycleReport, pending_release, points_expire
from perks.services import RedemptionRefusedError
from tests.concurrency import run_concurrently
from tests.loyalty.events import accept, process
from tests.loyalty.lifecycle import books_clean, buy, expiry_set, membership_of, on, spend

pytestmark = pytest.mark.django_db(transaction=True)


def noop(*args) -> None:
    pass


def expire(brand, day: str) -> LifecycleReport:
    report = LifecycleReport(brand=brand.slug, as_of=dt.date.fromisoformat(day))
    points_expire(brand=brand, as_of=report.as_of, report=report, progress=noop)
    return report


@pytest.fixture
def coffee6(coffee):
    expiry_set(coffee, 6)
    return coffee


def test_six_expiry_runs_at_once_expire_each_members_points_once(coffee6):
    members = [{"email": f"fan{n}@example.com"} for n in range(12)]
    with on("2026-01-15"):
        for n, member in enumerate(members):
            buy(coffee6, f"J-{n}", "100.00", member=member)

    reports = run_concurrently(lambda _: expire(coffee6, "2026-08-01"), 6)

    assert not [report for report in reports if isinstance(report, Exception)], reports
    assert sum(report.expired_points for report in reports) == 12 * 100
    assert Transaction.objects.filter(kind="expiry").count() == 12
    assert all(membership_balance(m) == 0 for m in Membership.objects.filter(brand=coffee6))
    books_clean()


def test_expiry_while_the_member_spends_never_expires_spent_points_nor_leaves_january_points(coffee6):
    with on("2026-01-15"):
        buy(coffee6, "J-1", "100.00")
    with on("2026-03-10"):
        buy(coffee6, "M-1", "100.00")
    membership = membership_of(coffee6)

    def call(index: int):
        if index == 0:
            return expire(coffee6, "2026-08-01")
        try:
            return spend(membership, 30)
        except RedemptionRefusedError as error:
            return error

    with on("2026-08-01"):
        results = run_concurrently(call, 5)

    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, RedemptionRefusedError)]
    assert not unexpected, unexpected
    spends = [r.redemption.ledger_transaction_id for r in results[1:] if not isinstance(r, Exception)]
    expired = results[0].expired_points
    left = membership_balance(membership_of(coffee6))
    assert left == 200 - 30 * len(spends) - expired >= 0
    # Whatever the order, spending took January's points first: what expired is what was left of them
    # when the expiry took the wallet's lock, after the spends that came before it.
    expiry = Transaction.objects.filter(kind="expiry").values_list("pk", flat=True).first()
    spent_before = 30 * sum(1 for txn in spends if expiry is None or txn < expiry)
    assert expired == max(0, 100 - spent_before)
    assert membership_of(coffee6).lifetime_expired == expired
    books_clean()


def test_a_release_and_a_refund_of_the_same_pending_purchase_at_once_take_the_points_back_once(coffee):
    EarnRule.objects.filter(brand=coffee, event_type="purchase").update(pending_days=14)
    with on("2026-03-02"):
        buy(coffee, "P-1", "50.00")
    with on("2026-03-16"):
        accept(
            coffee,
            {
                "type": "refund",
                "member": {"email": "fan@example.com"},
                "order_id": "P-1",
                "amount": "20.00",
                "idempotency_key": "r-1",
            },
        )

        def call(index: int):
            if index == 0:
                report = LifecycleReport(brand=coffee.slug, as_of=dt.date(2026, 3, 16))
                return pending_release(brand=coffee, as_of=report.as_of, report=report, progress=noop)
            return process(coffee)

        results = run_concurrently(call, 2)

    assert not [r for r in results if isinstance(r, Exception)], results
    membership = membership_of(coffee)
    assert (membership_balance(membership), membership_pending(membership)) == (30, 0)
    assert membership.lifetime_earned == 30
    books_clean()
