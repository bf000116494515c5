"""Load generators: wrk (C, for request rates the Python client could not reach itself) and a Python
client for the batch endpoint (five requests a second of 1,000 events each need no C)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    latency_ms: dict[str, float] = field(default_factory=dict)  # "50%", "99%"...
    output: str = ""

    @property
    def rate(self) -> float:
        return (self.requests - self.non_2xx - self.errors) / self.seconds if self.seconds else 0.0


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (Debian package wrk)")
    return found


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int = 32,
    threads: int = 2,
    script: str | None = None,
    script_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> WrkResult:
    """Run wrk with --latency (and a Lua script, given as its source, with `env` added to the environment),
    return what it measured."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    command = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    if script:
        command += ["-s", lua.name]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    environment = {**os.environ, **env} if env else None
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout  # noqa: S603
    Path(lua.name).unlink(missing_ok=True)
    totals = re.search(r"(\d+) requests in ([\d.]+(?:us|ms|s|m)),", output)
    requests, elapsed = int(totals.group(1)), _ms(totals.group(2)) / 1000
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors = sum(int(n) for n in m.groups())
    latency = {p: _ms(v) for p, v in re.findall(r"^\s+(\d+%)\s+([\d.]+\w+)\s*$", output, re.MULTILINE)}
    return WrkResult(requests, elapsed, non_2xx, errors, latency, output)


def lua(name: str, **values: object) -> str:
    """A Lua script of this folder with `{{name}}` placeholders filled (strings, numbers, lists of strings)."""
    text = (LUA_DIR / name).read_text()
    for key, value in values.items():
        if isinstance(value, list | tuple):
            rendered = "{" + ", ".join(json.dumps(item) for item in value) + "}"
        elif isinstance(value, str):
            rendered = json.dumps(value)
        else:
            rendered = str(value)
        text = text.replace("{{" + key + "}}", rendered)
    return text


@dataclass
class BatchRun:
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    failed_requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)


def post_batches(
    *,
    port: int,
    key: str,
    make_batch: Callable[[int, int], list[dict]],
    seconds: float,
    clients: int = 2,
) -> BatchRun:
    """`clients` threads, each on one keep-alive connection, post batches from make_batch(client, n) to
    /api/v1/events/batch as fast as the server answers, for `seconds`."""
    run = BatchRun()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        n = 0
        while time.monotonic() < stop_at:
            events = make_batch(number, n)
            body = json.dumps({"events": events})
            started = time.monotonic()
            conn.request("POST", "/api/v1/events/batch", body, headers)
            answer = conn.getresponse()
            data = answer.read()
            took = time.monotonic() - started
            with lock:
                run.sent += len(events)
                run.latencies.append(took)
                if answer.status != 200:
                    run.failed_requests += 1
                    continue
                summary = json.loads(data)
                run.accepted += summary["accepted"]
                run.refused += summary["refused"]
            n += 1
        conn.close()

    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    run.seconds = time.monotonic() - started
    return run
