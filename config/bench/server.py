"""The server under test: the processes `make run` starts, on a throwaway database and Redis databases.

The bench process itself is configured as usual (embedded PostgreSQL and Redis unless URLs are given)
and moves its own connection to the throwaway database (ledger_bench's _throwaway_database). The server
gets that database's URL and a Redis URL whose broker and cache databases are the bench's own, so a
`make run` on the same machine is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from config.supervisor import metrics_dir_prepare, process_commands

# The server's Redis databases: broker REDIS_DB, cache REDIS_DB + 1 (see config.settings).
BENCH_REDIS_DB = 12


def database_url(name: str) -> str:
    """settings.DATABASE_URL with another database name (the throwaway one)."""
    parts = urllib.parse.urlsplit(settings.DATABASE_URL)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


class Server:
    """gunicorn, a Celery worker and Celery beat as `make run` starts them, each restartable with other
    environment variables (e.g. the worker with INGEST_BATCH_SIZE=1)."""

    def __init__(self, *, port: int, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_dir = log_dir
        self.data_dir = Path(tempfile.mkdtemp(prefix="tally-bench-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict["NAME"]),
            "REDIS_URL": settings.REDIS_URL.rsplit("/", 1)[0]
            if settings.REDIS_URL.rsplit("/", 1)[-1].isdigit()
            else settings.REDIS_URL,
            "REDIS_DB": str(BENCH_REDIS_DB),
            "TALLY_DATA_DIR": str(self.data_dir),
            # As `make run` has it: request metrics written to files shared by the processes.
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir_prepare(self.data_dir / "metrics")),
            "DEBUG": "false",
            **(env or {}),
        }
        self.env.pop("CELERY_BROKER_URL", None)
        self.commands = process_commands(host="127.0.0.1", port=port)
        self.children: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> Server:
        self.flush_redis()
        for name in self.commands:
            self.start(name)
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self.children):
            self.stop(name)

    def flush_redis(self) -> None:
        """Empty the server's broker and cache databases (a previous run may have left messages)."""
        for db in (BENCH_REDIS_DB, BENCH_REDIS_DB + 1):
            with redis.Redis.from_url(f"{self.env['REDIS_URL']}/{db}") as client:
                client.flushdb()

    def start(self, name: str, **env: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.children[name] = subprocess.Popen(  # noqa: S603 - our own commands
            self.commands[name],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, name: str) -> None:
        child = self.children.pop(name, None)
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    def restart(self, name: str, **env: str) -> None:
        self.stop(name)
        self.start(name, **env)
        if name == "worker":
            self.wait_worker()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/v1/time", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                pass
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not come up; see {self.log_dir / 'web.log'}")
            time.sleep(0.2)
        self.wait_worker(deadline - time.monotonic())

    def wait_worker(self, timeout: float = 60.0) -> None:
        """Until the worker answers a ping over the server's broker."""
        from celery import Celery

        app = Celery(broker=f"{self.env['REDIS_URL']}/{BENCH_REDIS_DB}")
        deadline = time.monotonic() + timeout
        try:
            while not app.control.ping(timeout=1.0):
                self.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Celery worker did not come up; see {self.log_dir / 'worker.log'}")
        finally:
            app.close()

    def check_alive(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with {child.returncode}; see {self.log_dir / (name + '.log')}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
