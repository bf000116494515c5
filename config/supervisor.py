"""`make run`: migrate, load the demo, then run web, Celery worker and Celery beat under one process.

This process owns the embedded PostgreSQL and Redis (when no URLs are given): Django's settings start
them on import, the children get their URLs in the environment, and they stop when this process
exits. Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period) and then the
servers, within 10 seconds. A child that dies on its own (a crash, the OOM killer, a SIGKILL) is
restarted after a pause that grows with each quick death (1 s, 2 s, 4 s... at most 30 s; back to 1 s
once it has run for a minute), and the others keep running: a dead worker leaves the web serving, and
accepted events wait in PostgreSQL until the worker is back. An embedded PostgreSQL or Redis whose
process is gone is started again within a second, where it was (the children's URLs stay right).

The children share a directory for prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, see
config.metrics): emptied here at start, so that /metrics adds up the counts of this run's processes only,
those of restarted children included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

GRACE_SECONDS = 6.0
RESTART_DELAYS_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
STABLE_SECONDS = 60.0  # a child that ran this long has its restart delay start over


def _banner(port: int, host: str) -> str:
    from django.conf import settings

    from loyalty.demo import LOGINS

    shown_host = "localhost" if host in {"127.0.0.1", "0.0.0.0"} else host  # noqa: S104
    base = f"http://{shown_host}:{port}"
    lines = [
        "",
        "Tally is running.",
        f"  Fan site        {base}/",
        f"  Partner portal  {base}/admin/",
        f"  API docs        {base}/api/docs/   (schema: {base}/api/schema/)",
        f"  Health          {base}/healthz",
        "",
        *(
            ["Demo logins:", *(f"  {login.who:<36} {login.email:<24} {login.password}" for login in LOGINS), ""]
            if not settings.PRODUCTION
            else []
        ),
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


SERVERS_CHECK_SECONDS = 1.0  # how often the embedded servers are looked at


class Supervisor:
    def __init__(
        self,
        commands: dict[str, list[str]],
        env: dict[str, str],
        servers: dict[str, Callable[[], bool]] | None = None,
    ) -> None:
        self.commands = commands
        self.env = env
        # Embedded servers this process owns, each with a function that starts it again if it died.
        self.servers = servers or {}
        self.servers_checked = 0.0
        self.children: dict[str, subprocess.Popen] = {}
        self.started_at: dict[str, float] = {}
        self.quick_deaths: dict[str, int] = {}
        self.restart_at: dict[str, float] = {}
        self.stopping = False
        self._lock = threading.Lock()  # no child is started once stop() began

    def start(self) -> None:
        for name in self.commands:
            self._spawn(name)

    def _spawn(self, name: str) -> None:
        with self._lock:
            if self.stopping:
                return
            # Own process group: the terminal's Ctrl-C reaches only us, and we stop children in order.
            self.children[name] = subprocess.Popen(self.commands[name], env=self.env, start_new_session=True)  # noqa: S603
            self.started_at[name] = time.monotonic()

    def stop(self) -> None:
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in self.children.values():
            remaining = max(0.0, deadline - time.monotonic())
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=remaining)
        for child in self.children.values():
            _signal_group(child, signal.SIGKILL)  # also reaps grandchildren (gunicorn workers, pool)
            child.wait()

    def watch(self) -> int:
        """Restart children that die, until stop(); returns 0 then."""
        while not self.stopping:
            now = time.monotonic()
            if self.servers and now - self.servers_checked >= SERVERS_CHECK_SECONDS:
                self.servers_checked = now
                self._servers_revive()
            for name, child in list(self.children.items()):
                if name in self.restart_at:
                    if now >= self.restart_at[name]:
                        del self.restart_at[name]
                        print(f"restarting {name}", file=sys.stderr, flush=True)
                        self._spawn(name)
                    continue
                if not _exited(child):
                    if now - self.started_at[name] >= STABLE_SECONDS:
                        self.quick_deaths[name] = 0
                    continue
                # What it left behind (a pool's processes), while its unreaped pid still names the group.
                _signal_group(child, signal.SIGKILL)
                code = child.wait()
                deaths = self.quick_deaths.get(name, 0)
                delay = RESTART_DELAYS_SECONDS[min(deaths, len(RESTART_DELAYS_SECONDS) - 1)]
                self.quick_deaths[name] = deaths + 1
                self.restart_at[name] = now + delay
                print(f"\n{name} exited with code {code}; restarting it in {delay:g} s", file=sys.stderr, flush=True)
            time.sleep(0.2)
        return 0

    def _servers_revive(self) -> None:
        for name, revive in self.servers.items():
            try:
                if revive():
                    print(f"\nthe embedded {name} had stopped: started it again", file=sys.stderr, flush=True)
            except Exception as error:
                print(f"\ncould not start the embedded {name} again: {error}", file=sys.stderr, flush=True)


def _exited(child: subprocess.Popen) -> bool:
    """Whether the child has exited, without reaping it: until it is reaped its pid (and so its process
    group id) cannot be taken by another process."""
    if child.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return child.poll() is not None


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def process_commands(*, host: str, port: int) -> dict[str, list[str]]:
    """The processes of a running Tally: the web server, a Celery worker and Celery beat. `make run` and
    `make bench` (which measures exactly this layout) both start these."""
    python = sys.executable
    return {
        "web": [
            python,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "2"),
            "--threads",
            # Requests mostly wait (for PostgreSQL, Redis, or a batch of redemptions to commit): more
            # threads than cores keep both cores busy, and let concurrent redemptions of a brand share
            # one commit (perks.batching). Each thread holds a database connection.
            os.environ.get("WEB_THREADS", "16"),
            "--graceful-timeout",
            "4",
            "--access-logfile",
            "-",
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            os.environ.get("CELERY_CONCURRENCY", "2"),
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
        ],
    }


def metrics_dir_prepare(path: Path) -> Path:
    """Create the directory of prometheus_client's multiprocess mode, or empty it of what an earlier run's
    processes left (their counts would otherwise be added to this run's, and the files pile up). Only its
    `*.db` files go: the directory may be one the operator named."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def prepare() -> None:
    """Before the processes start: migrate, collect static files, and load the demo (development) or
    refuse to go on while a login opens with the demo's published password (production)."""
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    if not settings.PRODUCTION:
        call_command("demo")
        return
    from loyalty.demo import demo_logins_present

    if found := demo_logins_present():
        raise SystemExit(
            f"Refusing to start in production: {', '.join(found)} still log in with the demo's published "
            "password. Change their passwords (manage.py changepassword EMAIL) or deactivate them."
        )


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()  # starts (or joins) the embedded PostgreSQL and Redis when no URLs are given
    from django.conf import settings

    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    prepare()

    from config import embedded

    servers = {}
    if not os.environ.get("DATABASE_URL"):
        servers["PostgreSQL"] = embedded.postgres_revive
    if not os.environ.get("REDIS_URL"):
        servers["Redis"] = embedded.redis_revive
    metrics_dir = metrics_dir_prepare(
        Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or embedded.data_dir() / "metrics").resolve()
    )
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        # Before the children start: prometheus_client picks its mode when it is first imported.
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    supervisor = Supervisor(process_commands(host=host, port=port), env, servers)

    def on_signal(signum, frame):
        print("\nStopping Tally...", file=sys.stderr, flush=True)
        supervisor.stop()
        # SystemExit runs atexit, which stops the embedded servers this process started.
        raise SystemExit(0)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    supervisor.start()
    print(_banner(port, host), flush=True)
    return supervisor.watch()


if __name__ == "__main__":
    sys.exit(main())
