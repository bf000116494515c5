"""GET /api/v1/leaderboard for the key's brand."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engagement import leaderboards
from loyalty.api import BrandApiView, error_responses


class LeaderboardQuery(serializers.Serializer):
    period = serializers.ChoiceField(choices=leaderboards.PERIODS, default="week")
    limit = serializers.IntegerField(min_value=1, max_value=leaderboards.MAX_LIMIT, default=leaderboards.MAX_LIMIT)


class Leaderboard(BrandApiView):
    @extend_schema(
        operation_id="leaderboard_list",
        summary="The brand's top fans by points earned this week, this month or all time",
        description=(
            "Points earned (net of refunds; spending never lowers them) in the brand's current ISO week or "
            "month, or all time, in the brand's timezone. Ties go to who got there first. Fans who hid "
            "themselves are left out, and ranks count the others. `display_name` is the name the fan chose, "
            'else "Fan #<id>".'
        ),
        parameters=[
            OpenApiParameter("period", str, enum=list(leaderboards.PERIODS), description="week (default), month, all"),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": leaderboards.MAX_LIMIT},
                description=f"1 to {leaderboards.MAX_LIMIT} (default)",
            ),
        ],
        responses={
            200: inline_serializer(
                "LeaderboardEntry",
                {
                    "rank": serializers.IntegerField(),
                    "member": inline_serializer(
                        "LeaderboardMember",
                        {"id": serializers.IntegerField(), "display_name": serializers.CharField()},
                    ),
                    "points": serializers.IntegerField(),
                },
                many=True,
            ),
            **error_responses(400, 401, 429),
        },
    )
    def get(self, request: Request) -> Response:
        # A parameter sent empty is refused, not read as missing (DRF takes "" for "not given" in query data).
        blank = {name: ["May not be blank."] for name in ("period", "limit") if request.query_params.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        query = LeaderboardQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        board = leaderboards.board(self.brand, query.validated_data["period"], limit=query.validated_data["limit"])
        return Response(
            [
                {
                    "rank": row.rank,
                    "member": {"id": row.membership_id, "display_name": row.display_name},
                    "points": row.points,
                }
                for row in board.entries
            ]
        )
