"""The economics report as data: the API's body and the portal's CSV, from economics.selectors.Figures."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from economics.selectors import Figures

MAX_RANGE_DAYS = 3660  # ten years: a range is read from daily rollups, one row per day, tier and kind


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _value(value: Decimal | None) -> str | None:
    """A point's value: the digits it has (a thirtieth of a dollar is 0.033333), not rounded to cents."""
    return None if value is None else f"{value.quantize(Decimal('0.000001')).normalize():f}"


def report_body(figures: Figures) -> dict:
    """`GET /api/v1/reports/economics`: amounts as decimal strings, rates as percent strings of two places."""
    return {
        "from": figures.start.isoformat(),
        "to": figures.end.isoformat(),
        "point_value": _value(figures.point_value.value),
        "point_value_source": figures.point_value.source,
        "currency": figures.point_value.currency,
        "tiers": [
            {"name": tier.name, "multiplier": f"{tier.multiplier:.2f}", "return_rate": _amount(tier.return_rate)}
            for tier in figures.tiers
        ],
        "issued": figures.issued,
        "redeemed": figures.redeemed,
        "expired": figures.expired,
        "adjusted": figures.adjusted,
        "outstanding": figures.outstanding,
        "liability": _amount(figures.liability),
        "spend": _amount(figures.spend),
        "redeemed_value": _amount(figures.redeemed_value),
        "cost_pct_of_revenue": _amount(figures.cost_pct_of_revenue),
        "redemption_rate": _amount(figures.redemption_rate),
        "breakage_rate": _amount(figures.breakage_rate),
        "projected_breakage": figures.projected_breakage,
        "by_tier": [
            {
                "name": row.name,
                "issued": row.issued,
                "redeemed": row.redeemed,
                "expired": row.expired,
                "spend": _amount(row.spend),
                "return_rate": _amount(row.return_rate),
            }
            for row in figures.by_tier
        ],
    }


def report_csv(figures: Figures) -> str:
    """The report as a spreadsheet: the figures, one per line, then the tiers' planned and realised rates."""
    body = report_body(figures)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["figure", "value"])
    for name in (
        "from", "to", "currency", "point_value", "issued", "redeemed", "expired", "adjusted", "outstanding",
        "liability", "spend", "redeemed_value", "cost_pct_of_revenue", "redemption_rate", "breakage_rate",
        "projected_breakage",
    ):  # fmt: skip
        writer.writerow([name, "" if body[name] is None else body[name]])
    writer.writerow([])
    writer.writerow(["tier", "multiplier", "return_rate", "issued", "redeemed", "expired", "spend", "realised_rate"])
    realised = {row["name"]: row for row in body["by_tier"]}
    for tier in body["tiers"]:
        row = realised.pop(tier["name"], {})
        writer.writerow(
            [tier["name"], tier["multiplier"], tier["return_rate"] or "",
             row.get("issued", 0), row.get("redeemed", 0), row.get("expired", 0), row.get("spend") or "0.00",
             row.get("return_rate") or ""]
        )  # fmt: skip
    for name, row in realised.items():  # tiers since renamed or deleted, and refunds of no tier
        writer.writerow(
            [name, "", "", row["issued"], row["redeemed"], row["expired"], row["spend"], row["return_rate"] or ""]
        )
    return out.getvalue()


def range_parse(start: str | None, end: str | None, *, today: dt.date, default_days: int = 30) -> tuple:
    """(start, end, errors) from `from` / `to` as YYYY-MM-DD; each missing one defaults to the last
    `default_days` days up to `today`. Errors is a dict of field -> messages (empty when all is well)."""
    errors: dict[str, list[str]] = {}
    parsed = {}
    for name, value in (("from", start), ("to", end)):
        if value is None:
            parsed[name] = None
            continue
        try:
            parsed[name] = dt.date.fromisoformat(value) if len(value) == 10 else None
        except ValueError:
            parsed[name] = None
        if parsed[name] is None:
            errors[name] = ["A date as YYYY-MM-DD, for example 2026-11-30."]
    if errors:
        return None, None, errors
    last = parsed["to"] or today
    first = parsed["from"] or last - dt.timedelta(days=default_days - 1)
    if first > last:
        errors["from"] = ["Must not be after 'to'."]
    elif (last - first).days >= MAX_RANGE_DAYS:
        errors["from"] = [f"A range of at most {MAX_RANGE_DAYS} days."]
    return first, last, errors
