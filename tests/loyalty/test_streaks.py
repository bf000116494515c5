"""A custom-event rule may pay a bonus for N consecutive brand days with an awarded event, once per streak."""

import pytest

from loyalty.models import EarnRule
from tests.loyalty.lifecycle import balance, books_clean, check_in, on

pytestmark = pytest.mark.django_db


@pytest.fixture
def coffee_streak(coffee):
    EarnRule.objects.filter(brand=coffee, event_type="check_in").update(streak_length=7, streak_bonus=50)
    return coffee


def test_a_seven_day_check_in_streak_pays_its_bonus_once_on_day_7_and_not_again_on_day_8(coffee_streak):
    points = []
    for day in range(1, 9):
        with on(f"2026-06-{day:02d}"):
            points.append(check_in(coffee_streak).points)
    assert points == [5, 5, 5, 5, 5, 5, 55, 5]
    assert balance(coffee_streak) == 8 * 5 + 50
    books_clean()


def test_a_missed_day_starts_the_streak_again(coffee_streak):
    points = []
    for day in [1, 2, 3, 5, 6, 7, 8, 9, 10, 11]:
        with on(f"2026-06-{day:02d}"):
            points.append(check_in(coffee_streak).points)
    assert points[-1] == 55  # 5..11 June: seven days in a row
    assert sum(points) == 10 * 5 + 50


def test_a_second_check_in_on_a_day_counts_that_day_once(coffee_streak):
    EarnRule.objects.filter(brand=coffee_streak, event_type="check_in").update(cap_per_day=None)
    for day in range(1, 7):
        with on(f"2026-06-{day:02d}"):
            check_in(coffee_streak)
            check_in(coffee_streak)
    with on("2026-06-07"):
        assert check_in(coffee_streak).points == 55


def test_days_are_the_brands_days(coffee_streak):
    # 07:00 UTC is still the evening before in Los Angeles: these are seven LA days, 1 to 7 June.
    points = []
    for day in range(2, 9):
        with on(f"2026-06-{day:02d}", hour=7):
            points.append(check_in(coffee_streak).points)
    assert points[-1] == 55
