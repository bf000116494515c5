import json
import os
import subprocess

from config.embedded import EmbeddedRedis


def test_embedded_redis_stops_only_when_its_last_user_leaves(tmp_path):
    embedded = EmbeddedRedis(tmp_path / "redis")
    url = embedded.acquire()
    port = int(url.rsplit(":", 1)[1])
    assert embedded._running_port() == port

    # Another live process is also using it: our leaving must not stop it.
    other = subprocess.Popen(["sleep", "30"])  # noqa: S607
    try:
        embedded._write_users([os.getpid(), other.pid])
        embedded.release()
        assert embedded._running_port() == port
        assert json.loads(embedded.users_path.read_text()) == [other.pid]
    finally:
        other.kill()
        other.wait()

    # The other user died without saying goodbye; the last one to leave still stops the server.
    embedded._write_users([os.getpid(), other.pid])
    embedded.release()
    assert embedded._running_port() is None


def test_embedded_redis_is_reused_not_started_twice(tmp_path):
    first = EmbeddedRedis(tmp_path / "redis")
    second = EmbeddedRedis(tmp_path / "redis")
    try:
        assert first.acquire() == second.acquire()
    finally:
        first.release()
