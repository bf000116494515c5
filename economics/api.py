"""The economics report over the API, for the key's brand."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from economics.report import range_parse, report_body
from economics.selectors import figures
from loyalty.api import BrandApiView, error_responses

DATE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"

REPORT_EXAMPLE = {
    "from": "2026-11-01",
    "to": "2026-11-30",
    "point_value": "0.033333",
    "point_value_source": "menu",
    "currency": "USD",
    "tiers": [
        {"name": "Green", "multiplier": "1.00", "return_rate": "3.33"},
        {"name": "Gold", "multiplier": "1.20", "return_rate": "4.00"},
        {"name": "Reserve", "multiplier": "1.70", "return_rate": "5.67"},
    ],
    "issued": 770,
    "redeemed": 60,
    "expired": 0,
    "adjusted": 0,
    "outstanding": 710,
    "liability": "23.67",
    "spend": "750.00",
    "redeemed_value": "2.00",
    "cost_pct_of_revenue": "0.27",
    "redemption_rate": "7.79",
    "breakage_rate": "0.00",
    "projected_breakage": 0,
    "by_tier": [
        {"name": "Green", "issued": 650, "redeemed": 0, "expired": 0, "spend": "650.00", "return_rate": "3.33"},
        {"name": "Gold", "issued": 120, "redeemed": 60, "expired": 0, "spend": "100.00", "return_rate": "4.00"},
    ],
}


class EconomicsReport(BrandApiView):
    @extend_schema(
        operation_id="economics_report_retrieve",
        summary="What the key's brand's program costs and returns over a range of days",
        description=(
            "Figures of the brand days `from` to `to` (both included, the brand's timezone; by default the "
            "last 30 days), read from rollups the posting path keeps. `point_value` is the brand's own setting, "
            "else the median cash value per point of its active perks (`point_value_source`: override, menu "
            "or none, in which case the money figures are null). Each tier's `return_rate` is points per "
            "currency unit x multiplier x point value, in percent. `issued` is net of refunds, `redeemed` of "
            "cancelled redemptions; `outstanding` is what members held at the end of the range (pending "
            "points included) and `liability` its value; `cost_pct_of_revenue` is the cash value of the perks "
            "redeemed over the spend (awarded purchases minus refunds); `breakage_rate` is expired over "
            "issued; `projected_breakage` is how many of the outstanding points will likely never be "
            "redeemed, at the brand's share of expired among all points settled so far. Amounts are decimal "
            "strings; rates are percent strings with two places. `from` after `to`, or a range over ten "
            "years, is a 400."
        ),
        parameters=[
            OpenApiParameter("from", {"type": "string", "pattern": DATE_PATTERN}, description="YYYY-MM-DD"),
            OpenApiParameter("to", {"type": "string", "pattern": DATE_PATTERN}, description="YYYY-MM-DD"),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the report"),
            **error_responses(400, 401, 429),
        },
        examples=[OpenApiExample("report", response_only=True, value=REPORT_EXAMPLE)],
    )
    def get(self, request: Request) -> Response:
        brand = self.brand
        today = timezone.now().astimezone(brand.zone).date()
        start, end, errors = range_parse(request.query_params.get("from"), request.query_params.get("to"), today=today)
        if errors:
            raise serializers.ValidationError(errors)
        return Response(report_body(figures(brand, start=start, end=end)))
