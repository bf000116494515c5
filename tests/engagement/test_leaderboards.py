"""Leaderboards: ranked by points earned in the period (spending never drops a fan), ties to who got there
first, hidden fans left off but shown their own rank, and Redis only a cache of what the database says."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django_redis import get_redis_connection

from engagement import leaderboards
from engagement.models import FanProfile, FanScore
from tests.loyalty.conftest import api_client_for
from tests.loyalty.factories import BrandFactory, UserFactory
from tests.loyalty.lifecycle import buy, membership_of, on, refund, spend

pytestmark = pytest.mark.django_db

A, B, C = ({"email": f"{name}@example.com"} for name in "abc")
MONDAY = dt.datetime(2026, 11, 30, 20, tzinfo=dt.UTC)  # noon in Los Angeles, the coffee brand's zone
LATER = MONDAY + dt.timedelta(days=2)


def ranking(brand, kind="week", now=LATER, **kwargs):
    board = leaderboards.board(brand, kind, now=now, **kwargs)
    return [(row.rank, row.membership_id, row.points) for row in board.entries], board


def test_fans_rank_by_points_earned_and_a_redemption_does_not_move_them(coffee, django_capture_on_commit_callbacks):
    with on("2026-11-30"):
        buy(coffee, "a-1", "30.00", A)
        buy(coffee, "b-1", "50.00", B)
    a, b = membership_of(coffee, A["email"]), membership_of(coffee, B["email"])
    before, _ = ranking(coffee)

    with on("2026-12-01"), django_capture_on_commit_callbacks(execute=True):
        spend(b, 45)  # B spends most of it: still B's 50 earned
        buy(coffee, "a-2", "10.00", A)  # pushed to the built board after the commit
    after, _ = ranking(coffee)

    assert before == [(1, b.pk, 50), (2, a.pk, 30)]
    assert after == [(1, b.pk, 50), (2, a.pk, 40)]
    assert ranking(coffee, "all")[0] == after
    assert ranking(coffee, "month")[0] == [(1, a.pk, 10)]  # December: only A's second purchase


def test_equal_points_go_to_who_got_there_first(coffee):
    with on("2026-11-30", hour=18):
        buy(coffee, "b-1", "20.00", B)
    with on("2026-11-30", hour=19):
        buy(coffee, "a-1", "20.00", A)

    rows, _ = ranking(coffee)

    assert [membership_id for _, membership_id, _ in rows] == [
        membership_of(coffee, B["email"]).pk,
        membership_of(coffee, A["email"]).pk,
    ]


def test_a_refund_lowers_the_points_of_the_period_of_its_purchase(coffee):
    with on("2026-11-30"):
        buy(coffee, "a-1", "30.00", A)
    with on("2026-12-08"):  # the next week
        refund(coffee, "a-1", "10.00", A)

    assert ranking(coffee)[0][0][2] == 20  # the week of the purchase
    assert ranking(coffee, now=dt.datetime(2026, 12, 9, 20, tzinfo=dt.UTC))[0] == []


def test_a_hidden_fan_is_not_listed_but_sees_their_own_rank_and_the_others_move_up(coffee):
    with on("2026-11-30"):
        buy(coffee, "a-1", "60.00", A)
        buy(coffee, "b-1", "50.00", B)
        buy(coffee, "c-1", "40.00", C)
    a, b, c = (membership_of(coffee, who["email"]) for who in (A, B, C))
    FanProfile.objects.create(membership=a, hidden=True)

    rows, board = ranking(coffee, viewer_id=a.pk)
    _, seen_by_c = ranking(coffee, viewer_id=c.pk)

    assert rows == [(1, b.pk, 50), (2, c.pk, 40)]
    assert (board.me.rank, board.me.points) == (1, 60)
    assert seen_by_c.me.rank == 2


def test_flushing_redis_gives_the_same_answer_as_before(coffee):
    with on("2026-11-30", hour=18):
        for n, who in enumerate((A, B, C)):
            buy(coffee, f"o-{n}", "25.00", who)  # three ties, in order
    with on("2026-12-01"):
        buy(coffee, "o-9", "5.00", C)
    before = [ranking(coffee, kind)[0] for kind in leaderboards.PERIODS]

    get_redis_connection("default").flushdb()

    assert [ranking(coffee, kind)[0] for kind in leaderboards.PERIODS] == before
    assert before[0][0][1] == membership_of(coffee, C["email"]).pk


def test_leaderboard_rebuild_rebuilds_from_the_database(coffee):
    buy(coffee, "a-1", "10.00", A)
    get_redis_connection("default").flushdb()
    out = io.StringIO()

    call_command("leaderboard_rebuild", "--brand", "coffee", stdout=out)

    assert "all 1" in out.getvalue()
    assert leaderboards.board(coffee, "all").entries[0].points == 10
    assert FanScore.objects.filter(period="all").get().points == 10


def test_a_late_or_repeated_update_never_overwrites_a_newer_one(coffee):
    buy(coffee, "a-1", "10.00", A)
    leaderboards.board(coffee, "all")  # built
    membership = membership_of(coffee, A["email"])
    row = FanScore.objects.get(membership=membership, period="all")
    old = (coffee.pk, membership.pk, "all", 3, row.reached_at, row.version - 1)

    leaderboards.scores_push([old])

    assert leaderboards.board(coffee, "all").entries[0].points == 10


def test_the_api_gives_the_keys_brand_top_fans_with_their_chosen_names_never_emails(coffee, coffee_api):
    buy(coffee, "a-1", "10.00", A)
    buy(coffee, "b-1", "20.00", B)
    FanProfile.objects.create(membership=membership_of(coffee, B["email"]), display_name="Bee")

    body = coffee_api.get("/api/v1/leaderboard", {"period": "all", "limit": 5}).json()
    other = api_client_for(BrandFactory(slug="other")).get("/api/v1/leaderboard").json()

    a = membership_of(coffee, A["email"])
    assert body == [
        {"rank": 1, "member": {"id": membership_of(coffee, B["email"]).pk, "display_name": "Bee"}, "points": 20},
        {"rank": 2, "member": {"id": a.pk, "display_name": f"Fan #{a.pk}"}, "points": 10},
    ]
    assert other == []


@pytest.mark.parametrize("query", [{"period": "year"}, {"limit": "0"}, {"limit": "101"}, {"limit": "x"}])
def test_a_bad_query_is_a_400(coffee_api, query):
    answer = coffee_api.get("/api/v1/leaderboard", query)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_input"


def test_the_fan_page_shows_the_board_and_lets_a_fan_rename_or_hide(client, coffee):
    buy(coffee, "a-1", "10.00", A)
    membership = membership_of(coffee, A["email"])
    user = UserFactory(email=A["email"])
    membership.member.user = user
    membership.member.save()
    client.force_login(user)

    page = client.get("/b/coffee/leaderboard/?period=all").content.decode()
    assert f"Fan #{membership.pk}" in page and A["email"] not in page
    client.post("/b/coffee/leaderboard/me/", {"display_name": "Ace", "hidden": "on"})
    page = client.get("/b/coffee/leaderboard/?period=all").content.decode()

    assert 'data-testid="my-rank"' in page and "hidden: others do not see you" in page
    assert "Ace" not in page.split('data-testid="my-rank"')[1].split("</section>")[1]  # not on the board
    assert FanProfile.objects.get(membership=membership).display_name == "Ace"


def test_an_empty_parameter_is_a_400_not_the_default(coffee_api):
    answer = coffee_api.get("/api/v1/leaderboard?period=&limit=")

    assert answer.status_code == 400
    assert set(answer.json()["error"]["fields"]) == {"period", "limit"}


def test_points_for_a_board_nobody_has_read_are_not_sent_to_redis(
    coffee, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    script = leaderboards._script
    monkeypatch.setattr(leaderboards, "_script", lambda: sent.append(1) or script())
    with django_capture_on_commit_callbacks(execute=True):
        buy(coffee, "a-1", "10.00", A)  # no board built yet: the database only
    assert not sent
    assert [entry.points for entry in leaderboards.board(coffee, "all").entries] == [10]  # built on first read
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        buy(coffee, "a-2", "5.00", A)  # the all-time board is built now: it, and only it, is sent

    assert len(sent) == 1
    assert [entry.points for entry in leaderboards.board(coffee, "all").entries] == [15]
