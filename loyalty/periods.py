"""Calendar periods in a brand's timezone: "per day" means the brand's day, "a month" the brand's month."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo


def month_floor(when: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.date:
    """First day of the month `when` falls in, in `zone`."""
    return when.astimezone(zone).date().replace(day=1)


# Years 0001 to 9999 (a date has no year 0), months 01 to 12; no look-ahead, so that the OpenAPI schema's
# pattern is one every client (and the schema fuzzer) can use.
MONTH_PATTERN = r"^([1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])-(0[1-9]|1[0-2])$"


def month_parse(value: str) -> dt.date | None:
    """`YYYY-MM` as the first day of that month (None if it is not one)."""
    found = re.match(MONTH_PATTERN, value)
    if found is None:
        return None
    return dt.date(int(found.group(1)), int(found.group(2)), 1)


def months_add(month: dt.date, months: int) -> dt.date:
    """The first day of the month `months` after (or before, when negative) the month of `month`."""
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def tier_window(
    *, when: dt.datetime, zone: zoneinfo.ZoneInfo, calendar_year: bool, months: int
) -> tuple[dt.date, dt.date]:
    """The first and last month whose earned points qualify for a tier at `when`: this calendar year, or
    the last `months` months, the current one included either way (brand timezone)."""
    current = month_floor(when, zone)
    if calendar_year:
        return current.replace(month=1), current
    return months_add(current, 1 - months), current


def cap_periods(*, when: dt.datetime, zone: zoneinfo.ZoneInfo) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """The day, ISO week (from Monday) and calendar month around `when`, in the brand's timezone."""
    local = when.astimezone(zone)
    # Arithmetic on zone-aware datetimes is wall-clock arithmetic: a DST day keeps its real length.
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - dt.timedelta(days=day.weekday())
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    return {
        "day": (day, day + dt.timedelta(days=1)),
        "week": (week, week + dt.timedelta(days=7)),
        "month": (month, next_month),
    }


def period_bounds(*, when: dt.datetime, zone: zoneinfo.ZoneInfo) -> dict[str, tuple[dt.date, dt.date]]:
    """cap_periods as brand days: [first day, first day after) of the day, ISO week and month."""
    day = when.astimezone(zone).date()
    week = day - dt.timedelta(days=day.weekday())
    month = day.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    return {
        "day": (day, day + dt.timedelta(days=1)),
        "week": (week, week + dt.timedelta(days=7)),
        "month": (month, next_month),
    }
