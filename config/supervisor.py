"""`make run`: migrate, load the demo, then run web, Celery worker and Celery beat under one process.

This process owns the embedded PostgreSQL and Redis (when no URLs are given): Django's settings start
them on import, the children get their URLs in the environment, and they stop when this process
exits. Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period) and then the
servers, within 10 seconds. If a child dies on its own, the others are stopped too: a half-running
platform is worse than a stopped one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 6.0


def _banner(port: int, host: str) -> str:
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
        "Demo logins:",
        *(f"  {login.who:<36} {login.email:<24} {login.password}" for login in LOGINS),
        "",
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


class Supervisor:
    def __init__(self, commands: dict[str, list[str]], env: dict[str, str]) -> None:
        self.commands = commands
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def start(self) -> None:
        for name, argv in self.commands.items():
            # Own process group: the terminal's Ctrl-C reaches only us, and we stop children in order.
            self.children[name] = subprocess.Popen(argv, env=self.env, start_new_session=True)  # noqa: S603

    def stop(self) -> None:
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
        while not self.stopping:
            for name, child in self.children.items():
                code = child.poll()
                if code is not None:
                    print(f"\n{name} exited with code {code}; stopping Tally.", file=sys.stderr, flush=True)
                    self.stop()
                    return 1
            time.sleep(0.5)
        return 0


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

    env = {**os.environ, "DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL}
    supervisor = Supervisor(process_commands(host=host, port=port), env)

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
