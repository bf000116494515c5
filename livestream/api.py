"""The livestream API: the server clock, what a channel is playing, viewing leases and heartbeats.

`/time` and `/live/<slug>/now` are public (every visitor watches the same broadcast). Leases and
heartbeats are for the logged-in fan's own page: session-authenticated, so CSRF-protected.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user, get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.utils.functional import cached_property
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authentication import CSRFCheck, SessionAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import REQUEST_ID_HELP, ApplicationError, error_body
from config.http import client_ip
from config.parsers import json_object_plain
from livestream import clock, leases, selectors, services
from livestream.models import Channel
from livestream.serializers import (
    HeartbeatInputSerializer,
    heartbeat_input,
    heartbeat_input_plain,
    heartbeat_out,
    lease_out,
    on_air_out,
)
from loyalty.selectors import membership_for_user

ERROR_SHAPE = inline_serializer(
    "LiveError",
    {
        "error": inline_serializer(
            "LiveErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(),
                "request_id": serializers.CharField(help_text=REQUEST_ID_HELP),
            },
        )
    },
)
# config.middleware.ApiBodyLimitMiddleware answers it on every /api/ path, before any view.
TOO_LARGE = OpenApiResponse(ERROR_SHAPE, description="payload_too_large: the body is over the limit (`limit` bytes)")
NO_STORE = {"Cache-Control": "no-store"}  # clock readings and schedules must never come from a cache


class CsrfFailedError(ApplicationError):
    status_code = 403
    code = "csrf_failed"


class SessionCookie:
    """What a heartbeat authenticates as: the session cookie it came with, nothing loaded yet."""

    is_authenticated = True
    is_active = True

    def __init__(self, session_key: str) -> None:
        self.session_key = session_key


class FanSessionAuthentication(SessionAuthentication):
    """DRF's session authentication (which enforces CSRF for logged-in users), with its own error code.

    A view with `session_cookie_only = True` (the heartbeat) is authenticated by the session cookie alone,
    without loading the session or its login: the view checks the cookie against its signed lease, and
    the session, login and membership in PostgreSQL regularly (see services.heartbeat_record). CSRF is
    then enforced whenever a session cookie is sent.
    """

    def authenticate(self, request):
        view = (request.parser_context or {}).get("view")
        if not getattr(view, "session_cookie_only", False):
            return super().authenticate(request)
        session_key = request._request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if not session_key:
            return None
        self.enforce_csrf(request)
        return (SessionCookie(session_key), None)

    def enforce_csrf(self, request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as error:  # DRF's "CSRF Failed: <reason>"
            raise CsrfFailedError(message=f"{str(error.detail).rstrip('.')}. Reload the page.") from error
        # Anything else is the body's (Django's CSRF check reads a POST's form fields first, which parses
        # it): malformed JSON is the 400 and another content type the 415 it is everywhere else.


_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class SessionViewer:
    """services.Viewer for a heartbeat's request: its session, loaded only when asked about its login."""

    def __init__(self, request: HttpRequest, session_key: str) -> None:
        self.request = request
        self.session_key = session_key

    @cached_property
    def address(self) -> str:
        return client_ip(self.request)

    def issued_to(self, claims: leases.LeaseClaims) -> bool:
        return claims.session is not None and constant_time_compare(
            claims.session, leases.session_digest(self.session_key)
        )

    @cached_property
    def user_id(self) -> int | None:
        value = self.request.session.get(SESSION_KEY)
        if value is None:
            return None
        try:
            return get_user_model()._meta.pk.to_python(value)
        except ValidationError:
            return None

    def session_valid(self, *, password: str) -> bool:
        """What django.contrib.auth.get_user checks, given the login's password hash: the session was made
        by ModelBackend (which refuses inactive logins: checked by the caller) and its auth hash is the
        current one. Anything else (another backend, a hash of a rotated secret) says no, and the caller
        takes the exact path, which is get_user itself."""
        session = self.request.session
        session_hash = session.get(HASH_SESSION_KEY)
        if not session_hash or session.get(BACKEND_SESSION_KEY) != _MODEL_BACKEND:
            return False
        if _MODEL_BACKEND not in settings.AUTHENTICATION_BACKENDS or self.user_id is None:
            return False
        expected = get_user_model()(pk=self.user_id, password=password).get_session_auth_hash()
        return constant_time_compare(session_hash, expected)

    def membership(self, channel: Channel):
        user = get_user(self.request)  # logs an invalid session out, as the authentication middleware would
        if not user.is_authenticated:
            raise services.NotAuthenticatedError(message="Log in to earn points by watching.")
        return membership_for_user(user=user, brand=channel.brand)


class FanSessionScheme(SessionScheme):
    """Documents FanSessionAuthentication as the session cookie it is."""

    target_class = "livestream.api.FanSessionAuthentication"
    priority = 0


def _channel(slug: str, *, cached: bool = False) -> Channel:
    channel = (selectors.channel_get_active_cached if cached else selectors.channel_get_active)(slug=slug)
    if channel is None:
        raise Http404("No such channel.")
    return channel


class ServerTime(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="live_time",
        summary="The server's clock, for NTP-style offset estimation",
        description=(
            "`received` and `sent` are the server's clock (ms since 1970) when it received the request and "
            "when it sent the answer. With the client's own send time t0 and receive time t3: "
            "offset = ((received - t0) + (sent - t3)) / 2, round-trip delay = (t3 - t0) - (sent - received). "
            "Keep several samples and trust the one with the lowest delay."
        ),
        responses={
            200: OpenApiResponse(
                inline_serializer(
                    "ServerTime", {"received": serializers.IntegerField(), "sent": serializers.IntegerField()}
                )
            ),
            413: TOO_LARGE,
        },
        examples=[OpenApiExample("clock", value={"received": 1772712000000, "sent": 1772712000001})],
    )
    def get(self, request: Request) -> Response:
        received = clock.to_ms(clock.now())
        return Response({"received": received, "sent": clock.to_ms(clock.now())}, headers=NO_STORE)


NOW_EXAMPLE = {
    "channel": {"slug": "artist-tv", "name": "Nova Lane TV", "brand": "artist", "loop": True},
    "on_air": True,
    "item": {
        "video_id": "dQw4w9WgXcQ",
        "title": "Rick Astley - Never Gonna Give You Up",
        "duration": 213,
        "starts_at": 1772711900000,
        "ends_at": 1772712113000,
    },
    "offset": 100.0,
    "next": {
        "video_id": "kJQP7kiw5Fk",
        "title": "Luis Fonsi - Despacito ft. Daddy Yankee",
        "duration": 282,
        "starts_at": 1772712113000,
        "ends_at": 1772712395000,
    },
    "server_time": 1772712000000,
}


class ChannelNow(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="live_now",
        summary="What a channel plays now, and next",
        description=(
            "The current item with its scheduled start and end (server ms), the offset into it now, the next "
            "item, and the server time. A non-looping channel whose playlist has ended, or a channel with no "
            "videos, is off the air: `on_air` false and `item`, `offset`, `next` null."
        ),
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), 404: OpenApiResponse(ERROR_SHAPE), 413: TOO_LARGE},
        examples=[
            OpenApiExample("on air", value=NOW_EXAMPLE, response_only=True),
            OpenApiExample(
                "off the air",
                value={**NOW_EXAMPLE, "on_air": False, "item": None, "offset": None, "next": None},
                response_only=True,
            ),
        ],
    )
    def get(self, request: Request, slug: str) -> Response:
        channel = _channel(slug)
        return Response(on_air_out(channel, selectors.channel_on_air(channel=channel)), headers=NO_STORE)


class FanApiView(APIView):
    authentication_classes = [FanSessionAuthentication]
    permission_classes: list = []

    def membership(self, request: Request, channel: Channel):
        # UNAUTHENTICATED_USER is None in this project: no session means no user at all.
        if request.user is None or not request.user.is_authenticated:
            raise services.NotAuthenticatedError(message="Log in to earn points by watching.")
        return membership_for_user(user=request.user, brand=channel.brand)


SUMMARY_EXAMPLE = {"points_today": 12, "allotment": 120, "balance": 152, "points_per_minute": 1, "earning": True}
ERRORS_DESCRIPTION = (
    "403 `not_authenticated`, `not_a_member`, `csrf_failed`, `lease_invalid` (forged, another channel's or "
    "another member's), `lease_expired` (ask for a new lease); 409 `lease_superseded` (another tab or device took "
    "over; this page keeps playing but earns nothing); 422 `cap_reached` (today's allotment is used up); 429 "
    "`throttled` (more leases or heartbeats from this member or address than pages send: try again later)."
)


class ChannelLease(FanApiView):
    @extend_schema(
        operation_id="live_lease",
        summary="Take a viewing lease (this page becomes the member's only earning one)",
        description="Session-authenticated (send the CSRF token). Any other lease of the member stops earning.",
        request=None,
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT),
            403: OpenApiResponse(ERROR_SHAPE, description=ERRORS_DESCRIPTION),
            404: OpenApiResponse(ERROR_SHAPE),
            413: TOO_LARGE,
            429: OpenApiResponse(ERROR_SHAPE, description="throttled"),
        },
        examples=[
            OpenApiExample(
                "lease",
                response_only=True,
                status_codes=["201"],
                value={
                    "lease": "eyJsIjoiN2YxYyIsIm0iOjQyLCJjIjozLCJpIjoxNzcyNzEyMDAwMDAwfQ:1vB:sig",
                    "lease_id": "7f1c0e6d2a4b4e0f9d35a1c2b3e4f5a6",
                    "minute_seconds": 60.0,
                    "heartbeat_seconds": 30.0,
                    **SUMMARY_EXAMPLE,
                },
            )
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        channel = _channel(slug)
        membership = self.membership(request, channel)
        grant = services.lease_issue(
            channel=channel,
            membership=membership,
            user_id=request.user.pk,
            session_key=request._request.session.session_key,
            address=client_ip(request._request),
        )
        return Response(lease_out(grant), status=201, headers=NO_STORE)


class ChannelHeartbeat(FanApiView):
    session_cookie_only = True  # see FanSessionAuthentication

    @classmethod
    def as_view(cls, **initkwargs):
        """DRF's view, behind heartbeat_plain (which answers what a page sends without DRF's machinery)."""
        view = super().as_view(**initkwargs)

        def heartbeat(request: HttpRequest, slug: str) -> HttpResponse:
            answer = heartbeat_plain(request, slug)
            return answer if answer is not None else view(request, slug=slug)

        heartbeat.cls = view.cls  # what drf-spectacular documents
        heartbeat.initkwargs = view.initkwargs
        heartbeat.csrf_exempt = True  # as DRF's views: CSRF is the authentication's to enforce
        return heartbeat

    @extend_schema(
        operation_id="live_heartbeat",
        summary="Report the player's state; counts watched time",
        description=(
            "Send every `heartbeat_seconds`. Time counts between two consecutive heartbeats of the live lease at "
            "most 0.75 minute apart, both playing, visible, on the scheduled video and within the tolerance of "
            "the scheduled position; each whole minute earns the `watch_minute` rule's points. A heartbeat that "
            "is fine but did not count answers `counted: false` with a `reason`: first_heartbeat, resumed, "
            "gap_too_long, not_playing, hidden, off_air, wrong_video, off_schedule, out_of_order, no_rule, "
            "rule_inactive."
        ),
        request=HeartbeatInputSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT),
            400: OpenApiResponse(ERROR_SHAPE, description="invalid_input"),
            403: OpenApiResponse(ERROR_SHAPE, description=ERRORS_DESCRIPTION),
            404: OpenApiResponse(ERROR_SHAPE),
            409: OpenApiResponse(ERROR_SHAPE, description="lease_superseded"),
            413: TOO_LARGE,
            415: OpenApiResponse(ERROR_SHAPE, description="unsupported_media_type: send JSON"),
            422: OpenApiResponse(ERROR_SHAPE, description="cap_reached, with the summary"),
            429: OpenApiResponse(ERROR_SHAPE, description="throttled"),
        },
        examples=[
            OpenApiExample(
                "heartbeat",
                request_only=True,
                value={
                    "lease": "eyJsIjoiN2YxYyIsIm0iOjQyLCJjIjozLCJpIjoxNzcyNzEyMDAwMDAwfQ:1vB:sig",
                    "state": "playing",
                    "video_id": "dQw4w9WgXcQ",
                    "position": 100.2,
                    "visible": True,
                },
            ),
            OpenApiExample(
                "counted",
                response_only=True,
                status_codes=["200"],
                value={
                    "counted": True,
                    "reason": None,
                    "counted_seconds": 30.01,
                    "progress_seconds": 0.02,
                    "minutes_completed": 1,
                    "minute_seconds": 60.0,
                    "heartbeat_seconds": 30.0,
                    **SUMMARY_EXAMPLE,
                    "server_time": 1772712000000,
                },
            ),
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        channel = _channel(slug, cached=True)
        if request.user is None:  # UNAUTHENTICATED_USER is None in this project
            raise services.NotAuthenticatedError(message="Log in to earn points by watching.")
        data = heartbeat_input(request.data)
        now = clock.now()
        result = services.heartbeat_record(
            channel=channel,
            viewer=SessionViewer(request._request, request.user.session_key),
            token=data["lease"],
            report=services.PlayerReport(
                state=data["state"], video_id=data["video_id"], position=data["position"], visible=data["visible"]
            ),
            now=now,
        )
        return Response(heartbeat_out(result, now), headers=NO_STORE)


class DurationInput(serializers.Serializer):
    lease = serializers.CharField(min_length=1, max_length=1000)
    video_id = serializers.RegexField(r"^[A-Za-z0-9_-]{11}$")
    duration = serializers.FloatField(min_value=1, max_value=48 * 3600, help_text="Seconds, as the player says.")


class ChannelDuration(FanApiView):
    @extend_schema(
        operation_id="live_duration",
        summary="Report the length of a video as the page's player sees it",
        description=(
            "Sent once per video and page, with the page's viewing lease. Once "
            f"{services.DURATION_REPORTS_NEEDED} viewers' players agree (within "
            f"{services.DURATION_TOLERANCE_SECONDS} s) on a length more than that far from the stored one, the "
            "video takes their length from the next programme on, and staff see it in the portal."
        ),
        request=DurationInput,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT),
            400: OpenApiResponse(ERROR_SHAPE, description="invalid_input"),
            403: OpenApiResponse(ERROR_SHAPE, description=ERRORS_DESCRIPTION),
            404: OpenApiResponse(ERROR_SHAPE, description="not_found: no such channel, or the video is not on it"),
            413: TOO_LARGE,
            415: OpenApiResponse(ERROR_SHAPE, description="unsupported_media_type: send JSON"),
            429: OpenApiResponse(ERROR_SHAPE, description="throttled"),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        channel = _channel(slug, cached=True)
        membership = self.membership(request, channel)
        data = DurationInput(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = services.duration_report(
            channel=channel,
            membership=membership,
            token=data.validated_data["lease"],
            video_id=data.validated_data["video_id"],
            seconds=data.validated_data["duration"],
        )
        return Response(
            {"recorded": outcome.recorded, "corrected": outcome.corrected, "duration": outcome.duration},
            headers=NO_STORE,
        )


# --- the heartbeat as a page sends it, without DRF's request and response machinery ------------------------

_RENDERER = JSONRenderer()
_PLAIN_MAX_BYTES = 4096  # a heartbeat is a few hundred bytes; anything bigger is DRF's to judge
_ALLOW = "POST, OPTIONS"  # what DRF's view answers in Allow


def _no_response(request):  # pragma: no cover - CSRFCheck wants a get_response it never calls here
    return None


def _json_response(body: dict, status: int, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(_RENDERER.render(body), status=status, content_type="application/json")
    response["Allow"] = _ALLOW
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def heartbeat_plain(request: HttpRequest, slug: str) -> HttpResponse | None:
    """Answer a heartbeat as the TV page sends it (a POST of plainly valid JSON with the session cookie and
    the CSRF token) without DRF's request, negotiation and response objects: what ChannelHeartbeat would
    answer, byte for byte, for a fraction of the cost (heartbeats come by the thousand a second).

    None for anything else (no session cookie, a CSRF failure, an unknown channel, input the serializer
    has to judge...), before anything was done: DRF's view then answers it as it always did.
    """
    data = json_object_plain(request, max_bytes=_PLAIN_MAX_BYTES)
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if data is None or not session_key:
        return None
    check = CSRFCheck(_no_response)  # what FanSessionAuthentication.enforce_csrf runs
    check.process_request(request)
    if check.process_view(request, None, (), {}):
        return None
    channel = selectors.channel_get_active_cached(slug=slug)
    if channel is None:
        return None
    fields = heartbeat_input_plain(data)
    if fields is None:
        return None
    now = clock.now()
    try:
        result = services.heartbeat_record(
            channel=channel,
            viewer=SessionViewer(request, session_key),
            token=fields["lease"],
            report=services.PlayerReport(
                state=fields["state"],
                video_id=fields["video_id"],
                position=fields["position"],
                visible=fields["visible"],
            ),
            now=now,
        )
    except ApplicationError as error:  # as config.errors.api_exception_handler answers it
        return _json_response(error_body(error.code, error.message, error.fields, **error.extra), error.status_code)
    return _json_response(heartbeat_out(result, now), 200, NO_STORE)
