"""GET /metrics (config.metrics): Prometheus's text format, open from this host, from elsewhere with the
token; request metrics of every process in multiprocess mode; business figures read from the database."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config import metrics
from config.settings import BASE_DIR
from loyalty import selectors
from loyalty.models import EarnRule, Event
from tests.loyalty.events import accept, process
from tests.loyalty.factories import BrandFactory

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value of a scrape, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: Client | None = None, **extra: str) -> dict[tuple[str, tuple], float]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content.decode())


@pytest.fixture
def brand():
    brand = BrandFactory(slug="metered")
    EarnRule.objects.create(brand=brand, event_type="purchase", points_per_unit=Decimal("1"), currency="USD")
    EarnRule.objects.create(brand=brand, event_type="check_in", points=5, cap_per_day=1)
    EarnRule.objects.create(brand=brand, event_type="watch_minute", points=1, cap_per_day=2)
    return brand


def custom(type_: str, email: str = "fan@example.com") -> dict:
    return {"type": type_, "member": {"email": email}, "idempotency_key": uuid.uuid4().hex}


def purchase(order_id: str, amount: str, email: str = "fan@example.com") -> dict:
    return {"type": "purchase", "member": {"email": email}, "order_id": order_id, "amount": amount, "currency": "USD"}


def test_from_this_host_it_is_the_text_format_with_the_request_metrics():
    client = Client()
    assert client.get("/login/").status_code == 200
    client.get("/api/v1/no-such-thing")

    found = scrape(client)

    assert found[("tally_http_requests_total", (("method", "GET"), ("route", "login/"), ("status", "2xx")))] >= 1
    assert found[("tally_http_requests_total", (("method", "GET"), ("route", "^api/"), ("status", "4xx")))] >= 1
    assert found[("tally_http_request_duration_seconds_count", (("method", "GET"), ("route", "login/")))] >= 1
    # The path itself is never a label: an unknown path outside /api/ is one series, whatever it is.
    client.get(f"/no-such-page-{uuid.uuid4().hex}")
    unresolved = ("tally_http_requests_total", (("method", "GET"), ("route", "unresolved"), ("status", "4xx")))
    assert scrape(client)[unresolved] >= 1


def test_events_and_points_totals_are_the_brands_processed_events(brand):
    accept(brand, purchase("O-1", "12.00"), purchase("O-2", "3.00", email="two@example.com"))
    accept(brand, custom("check_in"), custom("check_in"))  # the second is over the day's cap
    accept(brand, custom("watch_minute"), custom("watch_minute"), custom("watch_minute"))  # cap 2 a day
    process(brand)

    found = scrape()

    def events(type_: str, status: str) -> float:
        return found[("tally_events_total", (("brand", "metered"), ("status", status), ("type", type_)))]

    assert events("purchase", "awarded") == 2
    assert events("check_in", "awarded") == 1
    assert events("check_in", "rejected") == 1
    assert events("watch_minute", "awarded") == 2
    assert events("watch_minute", "rejected") == 1
    assert found[("tally_points_total", (("brand", "metered"), ("kind", "issued")))] == 12 + 3 + 5 + 2
    assert found[("tally_watch_minutes_total", (("brand", "metered"),))] == 2
    assert found[("tally_events_pending", (("brand", "metered"),))] == 0
    assert found[("tally_events_pending_oldest_seconds", (("brand", "metered"),))] == 0
    for collector in ("loyalty", "livestream"):
        assert found[("tally_scrape_collector_success", (("collector", collector),))] == 1


def test_pending_events_are_counted_with_the_age_of_the_oldest(brand):
    accept(brand, purchase("P-1", "1.00"), purchase("P-2", "2.00"), custom("check_in"))
    Event.objects.filter(brand=brand, order_id="P-1").update(created_at=timezone.now() - dt.timedelta(seconds=90))

    found = scrape()

    assert found[("tally_events_pending", (("brand", "metered"),))] == 3
    assert 90 <= found[("tally_events_pending_oldest_seconds", (("brand", "metered"),))] < 120
    assert ("tally_events_total", (("brand", "metered"), ("status", "awarded"), ("type", "purchase"))) not in found


def test_the_pending_figures_read_the_partial_index_of_pending_events(brand):
    accept(brand, purchase("X-1", "1.00"))
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        selectors.events_pending_by_brand()
    with connection.cursor() as cursor:
        # Sequential scans priced out, as on a table of millions of events where one would be a disaster:
        # the plan shows what the statement can be answered with.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + statements[-1])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert plan.count("event_pending_idx") == 2, plan  # the count and each brand's oldest
    assert "Seq Scan on loyalty_event" not in plan, plan


def test_from_elsewhere_it_takes_the_token(settings):
    settings.METRICS_TOKEN = TOKEN
    outside = {"REMOTE_ADDR": "203.0.113.9"}

    refused = Client().get("/metrics", **outside)
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token", **outside)
    odd = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer t\u00f6ken", **outside)
    allowed = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **outside)

    for answer in (refused, wrong, odd):
        assert answer.status_code == 403
        error = answer.json()["error"]
        assert error["code"] == "permission_denied"
        assert error["fields"] == {}
        assert error["request_id"] == answer["X-Request-ID"]
    assert allowed.status_code == 200
    assert b"tally_http_requests_total" in allowed.content


def test_without_a_token_set_only_this_host_gets_in(settings):
    settings.METRICS_TOKEN = ""

    assert Client().get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer ").status_code == 403
    assert Client().get("/metrics", REMOTE_ADDR="::1").status_code == 200
    # Forwarded by a proxy on this host: the client is elsewhere.
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_behind_a_trusted_proxy_the_client_address_decides(settings):
    settings.TRUSTED_PROXIES = 1
    settings.METRICS_TOKEN = ""
    proxied = {"REMOTE_ADDR": "127.0.0.1"}

    assert Client().get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9", **proxied).status_code == 403
    assert Client().get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1", **proxied).status_code == 200


def test_a_collector_that_fails_is_reported_and_the_rest_still_answered(monkeypatch):
    def broken():
        raise RuntimeError("the outbox is on fire")
        yield  # pragma: no cover

    monkeypatch.setitem(metrics._collectors, "broken", broken)

    found = scrape()

    assert found[("tally_scrape_collector_success", (("collector", "broken"),))] == 0
    assert found[("tally_scrape_collector_success", (("collector", "loyalty"),))] == 1


def test_a_collector_reads_in_a_read_only_transaction(monkeypatch, caplog):
    def writing():
        Event.objects.filter(pk=-1).update(points=1)
        return []

    monkeypatch.setitem(metrics._collectors, "writing", writing)

    assert scrape()[("tally_scrape_collector_success", (("collector", "writing"),))] == 0
    assert any("read-only transaction" in str(record.exc_info[1]) for record in caplog.records if record.exc_info)


RECORD = (
    "import sys; from config import metrics\n"
    "for _ in range(int(sys.argv[1])): metrics.request_observe('GET', 'multi', 200, 0.01)\n"
)


def test_in_multiprocess_mode_the_counts_of_every_process_add_up(tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    children = [
        subprocess.Popen([sys.executable, "-c", RECORD, str(count)], cwd=BASE_DIR, env=env)  # noqa: S603
        for count in (3, 4)
    ]
    assert [child.wait(timeout=60) for child in children] == [0, 0]
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # a file per process
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    found = scrape()

    assert found[("tally_http_requests_total", (("method", "GET"), ("route", "multi"), ("status", "2xx")))] == 7
    assert found[("tally_http_request_duration_seconds_count", (("method", "GET"), ("route", "multi")))] == 7
    # This process's own counts are not in the files; the database's figures are still there.
    assert not any(name == "tally_http_requests_total" and ("route", "multi") not in labels for name, labels in found)
    assert found[("tally_scrape_collector_success", (("collector", "loyalty"),))] == 1
