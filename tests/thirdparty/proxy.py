"""A forwarding proxy in front of a server, told by the test to fail the next N requests whose
path contains a string (503, as an overloaded custodian answers)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import requests
from werkzeug.wrappers import Request, Response

HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-encoding",
    "content-length",
    "host",
}


@dataclass
class Flaky:
    target: str = ""
    failures: dict[str, int] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path_part: str, times: int) -> None:
        with self.lock:
            self.failures[path_part] = times

    def __call__(self, environ, start_response):
        req = Request(environ)
        with self.lock:
            self.seen.append(f"{req.method} {req.full_path}")
            for part, left in self.failures.items():
                if left > 0 and part in req.full_path:
                    self.failures[part] = left - 1
                    return Response("busy", status=503)(environ, start_response)
        upstream = requests.request(
            req.method, self.target + req.full_path.rstrip("?"), data=req.get_data(),
            headers={k: v for k, v in req.headers.items() if k.lower() not in HOP},
            allow_redirects=False, timeout=60,
        )  # fmt: skip
        headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP]
        return Response(upstream.content, status=upstream.status_code, headers=headers)(
            environ, start_response
        )
