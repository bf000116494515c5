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


def test_an_embedded_redis_that_was_killed_is_started_again_on_its_port_with_its_data(tmp_path):
    import signal
    import time

    import redis

    embedded = EmbeddedRedis(tmp_path / "redis")
    url = embedded.acquire()
    try:
        client = redis.Redis.from_url(url)
        client.set("kept", "yes")
        client.save()  # what the server's own `save 60 1` does within a minute
        assert embedded.revive() is False  # running: left alone
        os.kill(int(embedded.pid_path.read_text()), signal.SIGKILL)
        deadline = time.monotonic() + 5
        while embedded._server_alive():
            assert time.monotonic() < deadline
            time.sleep(0.05)

        assert embedded.revive() is True
        assert embedded.acquire() == url  # the same port: every process's REDIS_URL still works
        assert redis.Redis.from_url(url).get("kept") == b"yes"
    finally:
        embedded.release()
        embedded.release()


def test_an_embedded_postgresql_whose_server_was_killed_is_started_again_on_the_same_url(tmp_path):
    import signal
    import time

    import pgserver
    import psycopg
    from pgserver.utils import PostmasterInfo

    from config.embedded import postgres_revive

    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    try:
        url = server.get_uri("postgres")
        assert postgres_revive(tmp_path / "pg") is False  # running: left alone
        os.kill(PostmasterInfo.read_from_pgdata(server.pgdata).pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (info := PostmasterInfo.read_from_pgdata(server.pgdata)) is not None and info.is_running():
            assert time.monotonic() < deadline
            time.sleep(0.1)

        assert postgres_revive(tmp_path / "pg") is True
        assert server.get_uri("postgres") == url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.cleanup()
