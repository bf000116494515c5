"""`GET /metrics`: Prometheus's text format, for the requests this installation answered and for what the
database says about the business.

Two kinds of metrics:

- Request counts and latencies, recorded by `config.middleware.MetricsMiddleware` in the process that
  answered. `make run` has several gunicorn worker processes (and Celery's), so the supervisor gives every
  child `PROMETHEUS_MULTIPROC_DIR`: prometheus_client then keeps each process's values in a file there and
  a scrape adds up the files of all processes, those that died too (a counter never loses what a
  restarted worker counted). Without the variable (tests, `manage.py runserver`) the values live in this
  process's default registry. prometheus_client picks the mode when it is first imported, so the variable
  must be in the environment before the process starts. In multiprocess mode a gauge would need a
  `multiprocess_mode` (and `mark_process_dead` when a worker exits, for the live ones): none is kept here.
- Business figures, computed at scrape time from PostgreSQL by the collectors apps register
  (`collector_register`, from their AppConfig.ready): exact whichever process answers the scrape and
  across restarts, because they are read from the rollups the posting path keeps, never counted in memory.
  Each collector runs in a read-only transaction with a statement timeout, one grouped query per metric
  family; one that fails is logged and reported as `tally_scrape_collector_success 0`, and the rest of
  the scrape is still answered.

Open from this host (a loopback client address); from elsewhere only with
`Authorization: Bearer <METRICS_TOKEN>`. Not an /api/ view: no API key, no throttle.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from config.db import read_only_atomic
from config.errors import error_body
from config.http import client_ip

logger = logging.getLogger(__name__)

# --- requests ------------------------------------------------------------------------------------

# Label values come from a closed set: a client choosing the method or the path must not be able to
# create series (each one is a file entry in every process, and a series in Prometheus forever).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Fast API answers are a few milliseconds; ?wait=true waits up to 2 s for an outcome.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# No `_created` series: multiprocess mode has none, and a scrape should read the same in both modes (they
# would also double the number of series).
disable_created_metrics()

REQUESTS = Counter(
    "tally_http_requests",
    "HTTP requests answered, by method, route (the URL pattern) and status class.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "tally_http_request_duration_seconds",
    "Time to answer an HTTP request (until the response is returned to the server), by method and route.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


def request_route(request: HttpRequest) -> str:
    """The URL pattern that answered (e.g. `api/v1/members/<str:external_id>`), never the path itself.
    `static` for static files (WhiteNoise answers them before routing); `unresolved` for what no pattern
    took: an unknown path outside /api/, or a request a middleware answered first (a 413, a redirect)."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.route or match.view_name or "unresolved"
    if request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unresolved"


def request_observe(method: str, route: str, status: int, seconds: float) -> None:
    """Count an answered request and its latency."""
    method = method if method in _METHODS else "other"
    REQUESTS.labels(method, route, f"{status // 100}xx").inc()
    LATENCY.labels(method, route).observe(seconds)


# --- business collectors ------------------------------------------------------------------------

ScrapeCollector = Callable[[], Iterable[Metric]]
_collectors: dict[str, ScrapeCollector] = {}

# A scrape must not pile up behind a slow query (Prometheus gives up after 10 s by default).
COLLECTOR_TIMEOUT_MS = 5000


def collector_register(name: str, collect: ScrapeCollector) -> ScrapeCollector:
    """Add a collector to every scrape: `collect()` returns metric families (prometheus_client's
    `CounterMetricFamily`, `GaugeMetricFamily`...) computed from the database.

    Call it from the app's AppConfig.ready(), so that config imports no app. Keep `collect` cheap, since it
    runs at every scrape (every 15 s or so): one grouped query per metric family, on rollups or partial
    indexes, never a loop over rows. It runs in a read-only transaction under a statement timeout of
    COLLECTOR_TIMEOUT_MS. Registering a name again replaces its collector (ready() may run twice).
    """
    _collectors[name] = collect
    return collect


def _collected(name: str, collect: ScrapeCollector) -> tuple[list[Metric], bool, float]:
    started = time.perf_counter()
    try:
        with read_only_atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(COLLECTOR_TIMEOUT_MS)])
            families = list(collect())
    except Exception:
        logger.exception("The metrics collector %s failed", name)
        return [], False, time.perf_counter() - started
    return families, True, time.perf_counter() - started


class _Scrape:
    """What one scrape exposes: the request metrics (of every process, or of this one), then each
    registered collector's families and whether it worked."""

    def collect(self) -> Iterator[Metric]:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        # MultiProcessCollector(None, ...) registers itself nowhere: the files are read at collect().
        yield from (MultiProcessCollector(None, path=directory) if directory else REGISTRY).collect()
        success = GaugeMetricFamily(
            "tally_scrape_collector_success",
            "Whether the collector's queries worked at this scrape.",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            "tally_scrape_collector_duration_seconds",
            "Time the collector took at this scrape.",
            labels=["collector"],
        )
        for name, collect in list(_collectors.items()):
            families, ok, seconds = _collected(name, collect)
            yield from families
            success.add_metric([name], 1.0 if ok else 0.0)
            duration.add_metric([name], seconds)
        yield success
        yield duration


def scrape() -> bytes:
    """The text format of everything /metrics exposes."""
    return generate_latest(_Scrape())


# --- the view -----------------------------------------------------------------------------------


def _from_this_host(request: HttpRequest) -> bool:
    # With no trusted proxy, an X-Forwarded-For header means a proxy on this host forwarded the request
    # (its own address is loopback): the client is elsewhere. A client sending one only shuts itself out.
    if not settings.TRUSTED_PROXIES and "HTTP_X_FORWARDED_FOR" in request.META:
        return False
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _token_given(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    keyword, _, token = request.headers.get("Authorization", "").partition(" ")
    # Bytes: compare_digest refuses str with non-ASCII characters, which a client may send.
    return bool(expected) and keyword == "Bearer" and hmac.compare_digest(token.encode(), expected.encode())


def metrics_allowed(request: HttpRequest) -> bool:
    """From this host, or with `Authorization: Bearer <METRICS_TOKEN>` (with no token set: this host only)."""
    return _from_this_host(request) or _token_given(request)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return JsonResponse(
            error_body(
                "permission_denied",
                "Metrics are open from this host only, or with Authorization: Bearer <METRICS_TOKEN>.",
            ),
            status=403,
        )
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
