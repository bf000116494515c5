"""The partner portal's economics pages: the dashboard on the portal's index, the report and its CSV, the
rule-set simulator.

Brand staff see their own brand (a switcher when they work for several); an operator sees any brand,
chosen with `?brand=<slug>`. Everything shown comes from economics.selectors, i.e. from rollups.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from economics import selectors
from economics.forms import SimulatorForm
from economics.report import range_parse, report_body, report_csv
from economics.simulator import comparison_rows, program_simulate
from loyalty.admin_site import portal_brand_ids
from loyalty.models import Brand

RANGES = (30, 90, 365)
# Chart colours that read on light and dark backgrounds alike.
ISSUED, REDEEMED, EXPIRED, OTHER = "#16a34a", "#2563eb", "#dc2626", "#9333ea"
TIER_COLOURS = ("#84cc16", "#eab308", "#0f766e", "#7c3aed", "#db2777", "#64748b")


def portal_brands(request: HttpRequest) -> list[Brand]:
    """The brands whose economics this portal user may see: their own, or all for an operator."""
    if not (request.user.is_active and request.user.is_staff):
        return []
    brands = Brand.objects.order_by("name")
    if request.user.is_superuser:
        return list(brands)
    return list(brands.filter(pk__in=portal_brand_ids(request)))


def portal_brand(request: HttpRequest, brands: list[Brand] | None = None) -> Brand | None:
    """The brand chosen with `?brand=<slug>` among the user's, else their first."""
    brands = portal_brands(request) if brands is None else brands
    wanted = request.GET.get("brand", "")
    return next((brand for brand in brands if brand.slug == wanted), brands[0] if brands else None)


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", RANGES[0]))
    except ValueError:
        return RANGES[0]
    return days if days in RANGES else RANGES[0]


def _series(start: dt.date, end: dt.date, rows: list[dict]) -> dict:
    by_day = {row["day"]: row for row in rows}
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    moved = [by_day.get(day, {}) for day in days]
    return {
        "labels": [f"{day:%b %d}" for day in days],
        "datasets": [
            {"label": label, "data": [row.get(kind, 0) for row in moved], "borderColor": colour,
             "backgroundColor": colour}
            for label, kind, colour in (
                ("Issued", "issued", ISSUED), ("Redeemed", "redeemed", REDEEMED), ("Expired", "expired", EXPIRED)
            )
        ],
    }  # fmt: skip


# Chart.js options, given whole (Unfold's defaults are for sparklines: 4 px bars, no axis labels).
_CHARTS = {
    "points": {"legend": True},
    "active": {"legend": False},
    "tiers": {"legend": False},
    "events": {"legend": True, "stacked": True},
}


def _chart_options(*, legend: bool, stacked: bool = False) -> dict:
    axis = {"stacked": stacked, "grid": {"display": False}, "ticks": {"color": "#9ca3af"}}
    return {
        "animation": False,
        "responsive": True,
        "maintainAspectRatio": False,
        "interaction": {"mode": "index", "intersect": False},
        "elements": {"point": {"radius": 0}, "line": {"borderWidth": 2}, "bar": {"borderRadius": 4}},
        "datasets": {"bar": {"maxBarThickness": 48}},
        "plugins": {"legend": {"display": legend, "position": "bottom", "labels": {"color": "#9ca3af"}}},
        "scales": {
            "x": {**axis, "ticks": {**axis["ticks"], "maxTicksLimit": 8}},
            "y": {**axis, "beginAtZero": True, "ticks": {**axis["ticks"], "precision": 0}},
        },
    }


def dashboard_context(brand: Brand, days: int) -> dict[str, Any]:
    today = timezone.now().astimezone(brand.zone).date()
    start = today - dt.timedelta(days=days - 1)
    board = selectors.dashboard(brand, start=start, end=today)
    figures = board.figures
    charts = {
        "points": _series(start, today, figures.days),
        "active": {
            "labels": [f"{week:%b %d}" for week, _ in board.active_weeks],
            "datasets": [
                {"label": "Active members", "data": [n for _, n in board.active_weeks], "backgroundColor": REDEEMED}
            ],
        },
        "tiers": {
            "labels": [name for name, _ in board.members_by_tier],
            "datasets": [
                {
                    "label": "Members",
                    "data": [n for _, n in board.members_by_tier],
                    "backgroundColor": [TIER_COLOURS[i % len(TIER_COLOURS)] for i in range(len(board.members_by_tier))],
                }
            ],
        },
        "events": {
            "labels": [row["type"] for row in board.events],
            "datasets": [
                {"label": label, "data": [row.get(status, 0) for row in board.events], "backgroundColor": colour}
                for label, status, colour in (
                    ("Awarded", "awarded", ISSUED),
                    ("Rejected", "rejected", OTHER),
                    ("Failed", "failed", EXPIRED),
                )
            ],
        },
    }
    options = {name: json.dumps(_chart_options(**kwargs)) for name, kwargs in _CHARTS.items()}
    return {
        "brand": brand,
        "days": days,
        "ranges": RANGES,
        "start": start,
        "end": today,
        "board": board,
        "figures": figures,
        "charts": {name: json.dumps(data) for name, data in charts.items()},
        "chart_options": options,
        "keep": [("days", days)],
        "report_url": reverse("economics_report") + f"?brand={brand.slug}&from={start}&to={today}",
        "simulator_url": reverse("economics_simulator") + f"?brand={brand.slug}",
    }


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Unfold's DASHBOARD_CALLBACK: the portal's index shows the chosen brand's economics."""
    brands = portal_brands(request)
    brand = portal_brand(request, brands)
    if brand is not None:
        context.update(dashboard_context(brand, _days(request)), portal_brands=brands)
    return context


def report_view(request: HttpRequest) -> HttpResponse:
    """The economics report of a range of days, in the portal (and as CSV with `format=csv`)."""
    brands = portal_brands(request)
    brand = portal_brand(request, brands)
    if brand is None:
        raise Http404("No brand to report on.")
    today = timezone.now().astimezone(brand.zone).date()
    start, end, errors = range_parse(request.GET.get("from"), request.GET.get("to"), today=today)
    if errors:
        start, end = today - dt.timedelta(days=29), today
    figures = selectors.figures(brand, start=start, end=end)
    if request.GET.get("format") == "csv" and not errors:
        response = HttpResponse(report_csv(figures), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{brand.slug}-economics-{start}-{end}.csv"'
        return response
    from django.contrib import admin

    report = report_body(figures)
    context = {
        **admin.site.each_context(request),
        "title": f"Program economics: {brand.name}",
        "brand": brand,
        "portal_brands": brands,
        "figures": figures,
        "report": report,
        "lines": _report_lines(brand, report),
        "errors": errors,
        "keep": [("from", start), ("to", end)],
        "start": start,
        "end": end,
    }
    return TemplateResponse(request, "admin/economics/report.html", context)


def _report_lines(brand: Brand, report: dict) -> list[tuple[str, str, str]]:
    """(label, key, text) of each figure, as the report page shows it."""
    points, currency = brand.points_name, report["currency"]

    def text(key: str, unit: str = "") -> str:
        value = report[key]
        return "—" if value is None else f"{value}{unit}"

    return [
        (f"{points.capitalize()} issued (net of refunds)", "issued", text("issued")),
        (f"{points.capitalize()} redeemed (net of cancellations)", "redeemed", text("redeemed")),
        (f"{points.capitalize()} expired", "expired", text("expired")),
        (f"{points.capitalize()} adjusted by staff", "adjusted", text("adjusted")),
        (f"Outstanding at the end (liability in {points})", "outstanding", text("outstanding")),
        ("Liability", "liability", text("liability", f" {currency}")),
        ("Spend (purchases minus refunds)", "spend", text("spend", f" {currency}")),
        ("Value redeemed (the perks' cash value)", "redeemed_value", text("redeemed_value", f" {currency}")),
        ("Cost as % of revenue", "cost_pct_of_revenue", text("cost_pct_of_revenue", "%")),
        ("Redemption rate", "redemption_rate", text("redemption_rate", "%")),
        ("Breakage (expired / issued)", "breakage_rate", text("breakage_rate", "%")),
        (f"Outstanding {points} likely never redeemed", "projected_breakage", text("projected_breakage")),
    ]


def simulator_view(request: HttpRequest) -> HttpResponse:
    """The simulator: a form of the range and the other rules; once sent, both rule sets side by side with
    a chart of the points each issues per month. A GET (it writes nothing): a comparison can be bookmarked."""
    brands = portal_brands(request)
    brand = portal_brand(request, brands)
    if brand is None:
        raise Http404("No brand to simulate.")
    today = timezone.now().astimezone(brand.zone).date()
    sent = "start" in request.GET
    form = SimulatorForm(request.GET if sent else None, initial=SimulatorForm.initial_for(today))
    comparison = chart = None
    if sent and form.is_valid():
        data = form.cleaned_data
        comparison = program_simulate(brand, start=data["start"], end=data["end"], alternative=form.alternative())
        chart = _comparison_chart(comparison)
    from django.contrib import admin

    context = {
        **admin.site.each_context(request),
        "title": f"Rule-set simulator: {brand.name}",
        "brand": brand,
        "portal_brands": brands,
        "keep": [],
        "form": form,
        "comparison": comparison,
        "rows": comparison_rows(comparison) if comparison else [],
        "chart": json.dumps(chart) if chart else "",
        "chart_options": json.dumps(_chart_options(legend=True)),
    }
    return TemplateResponse(request, "admin/economics/simulator.html", context)


def _comparison_chart(comparison) -> dict:
    """Points issued per month under each rule set."""
    current, other = dict(comparison.current.months), dict(comparison.alternative.months)
    months = sorted(set(current) | set(other))
    return {
        "labels": [f"{month:%b %Y}" for month in months],
        "datasets": [
            {"label": "Current rules", "data": [current.get(m, 0) for m in months], "backgroundColor": REDEEMED},
            {"label": "Alternative", "data": [other.get(m, 0) for m in months], "backgroundColor": ISSUED},
        ],
    }
