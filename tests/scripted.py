"""A loopback HTTP server that answers as a test scripts it and records every request: for what
no fake does on purpose (redirects to another origin, endless 503s, bodies that break off,
documents larger than memory should hold)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query, as sent
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: bytes, or chunks sent one after the other (then ``length`` is the Content-Length sent,
    #: and a shorter body is cut off by closing the connection)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None


class Scripted:
    """``with Scripted(answer) as server:`` -- ``answer(seen)`` gives each request's Answer;
    ``server.seen`` lists the requests in order."""

    def __init__(self, answer: Callable[[Seen], Answer]) -> None:
        self.answer = answer
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(size))
                with scripted.lock:
                    scripted.seen.append(seen)
                got = scripted.answer(seen)
                body = got.body
                self.send_response(got.status)
                for key, value in got.headers.items():
                    self.send_header(key, value)
                length = len(body) if isinstance(body, bytes) else got.length
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                if self.command == "HEAD":
                    return
                try:
                    for chunk in [body] if isinstance(body, bytes) else body:
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: that is what some tests check

            do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = handle_any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def requests(self, method: str | None = None, path: str = "") -> list[Seen]:
        with self.lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method) and s.path.startswith(path)
            ]

    def __enter__(self) -> Scripted:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def always(
    status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None
) -> Callable[[Seen], Answer]:
    """The same answer to every request."""
    return lambda seen: Answer(status, dict(headers or {}), body)
