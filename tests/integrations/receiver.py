"""A real HTTP receiver on loopback for the sinks to send to: it records every request and answers with
the statuses it is told to (then 200)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 200  # what it answered

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # the statuses of the next answers, then 200s
    down: bool = False  # answers 503 to everything while set

    def bodies(self) -> list:
        return [request.json() for request in self.requests]


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            status = 503 if self.receiver.down else self.receiver.answers.pop(0) if self.receiver.answers else 200
            self.receiver.requests.append(Received(self.path, dict(self.headers), body, status))
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


def receiving() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {}))
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass.receiver = receiver
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
