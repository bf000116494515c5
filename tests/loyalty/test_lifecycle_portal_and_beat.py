"""The lifecycle in the partner portal and on the calendar: staff editing a threshold queues the members'
re-evaluation (run by a worker, here eagerly); the beat job runs each brand once per day of its timezone;
a member's page shows their tier changes, pending and expiring points."""

import pytest
from django.urls import reverse

from loyalty.models import Brand, Tier
from loyalty.tasks import lifecycle_due_task
from tests.admin_forms import form_data
from tests.loyalty.factories import BrandStaffFactory
from tests.loyalty.lifecycle import buy, expiry_set, membership_of, on

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks():
    from config.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def coffee_staff(client, coffee):
    staff = BrandStaffFactory(brand=coffee)
    client.force_login(staff.user)
    return client


def test_lowering_a_threshold_in_the_portal_moves_members_up_through_a_queued_task(
    coffee_staff, coffee, eager_tasks, django_capture_on_commit_callbacks
):
    buy(coffee, "A-1", "400.00")
    assert membership_of(coffee).tier.name == "Green"
    gold = Tier.objects.get(brand=coffee, name="Gold")
    url = reverse("admin:loyalty_tier_change", args=[gold.pk])

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = coffee_staff.post(url, form_data(coffee_staff.get(url), threshold="300"))

    assert response.status_code == 302
    assert len(callbacks) == 1  # queued after the commit, not run inside the save
    assert membership_of(coffee).tier.name == "Gold"
    page = coffee_staff.get(reverse("admin:loyalty_membership_change", args=[membership_of(coffee).pk]))
    assert "Re-qualification" in page.content.decode()


def test_the_member_page_shows_pending_expiring_and_tier_changes(coffee_staff, coffee):
    expiry_set(coffee, 6)
    with on("2026-01-15"):
        buy(coffee, "G-1", "600.00")
    page = coffee_staff.get(reverse("admin:loyalty_membership_change", args=[membership_of(coffee).pk]))
    html = page.content.decode()
    assert "600 on 1 Aug 2026" in html
    assert "Earned points" in html  # Green -> Gold


def test_the_beat_job_runs_each_brand_once_per_brand_day(coffee, eager_tasks):
    with on("2026-05-01"):
        assert lifecycle_due_task() == [coffee.pk]
        assert Brand.objects.get(pk=coffee.pk).lifecycle_ran_on.isoformat() == "2026-05-01"
        assert lifecycle_due_task() == []
    with on("2026-05-02", hour=6):  # 06:00 UTC: still 1 May in Los Angeles
        assert lifecycle_due_task() == []
    with on("2026-05-02", hour=9):
        assert lifecycle_due_task() == [coffee.pk]


def test_a_day_after_today_is_refused_and_a_rehearsal_ahead_does_not_stop_the_daily_runs(coffee, eager_tasks):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    with on("2026-05-01"):
        with pytest.raises(CommandError, match="is after coffee's today"):
            call_command("run_lifecycle", "--brand", "coffee", "--as-of", "2026-09-01", stdout=io.StringIO())
        call_command("run_lifecycle", "--brand", "coffee", "--as-of", "2026-09-01", "--ahead", stdout=io.StringIO())
        assert lifecycle_due_task() == [coffee.pk]
        call_command("run_lifecycle", "--brand", "coffee", "--as-of", "2026-01-01", stdout=io.StringIO())
        assert Brand.objects.get(pk=coffee.pk).lifecycle_ran_on.isoformat() == "2026-05-01"
