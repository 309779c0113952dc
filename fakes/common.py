"""What the fake servers share: the app around a fake's blueprint, injected faults (failing, slow
and rate-limited answers) and a threaded loopback server."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, jsonify
from werkzeug.serving import BaseWSGIServer, make_server

HOUR = 3600
DAY = 86400


@dataclass
class Fault:
    """An answer given instead of the real one (``status`` 0: only the delay, then the real one)."""

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Faults:
    """Faults answered to the next requests, in order; the tests and the sandbox add them."""

    def __init__(self) -> None:
        self.queue: deque[Fault] = deque()
        self.lock = threading.Lock()
        self.requests = 0  # requests seen, faults included

    def add(self, *faults: Fault) -> None:
        with self.lock:
            self.queue.extend(faults)

    def clear(self) -> None:
        with self.lock:
            self.queue.clear()

    def next(self) -> Fault | None:
        with self.lock:
            self.requests += 1
            return self.queue.popleft() if self.queue else None

    def install(self, app: Flask) -> None:
        app.extensions["fake.faults"] = self

        @app.before_request
        def inject() -> Response | None:
            fault = self.next()
            if fault is None:
                return None
            if fault.delay:
                time.sleep(fault.delay)
            if not fault.status:
                return None
            resp = jsonify(fault.body) if fault.body is not None else Response(status=fault.status)
            resp.status_code = fault.status
            resp.headers.update(fault.headers)
            return resp


def blueprint_app(bp: Blueprint, state: Any, *, strict_slashes: bool = True) -> Flask:
    """A fake's app: its blueprint of routes, its state under the blueprint's name (the routes
    read it from ``current_app.extensions``) and injectable faults, answered first."""
    app = Flask(bp.import_name)
    app.url_map.strict_slashes = strict_slashes
    app.extensions[bp.name] = state
    Faults().install(app)
    app.register_blueprint(bp)
    return app


def faults(app: Flask) -> Faults:
    found: Faults = app.extensions["fake.faults"]
    return found


class Limiter:
    """At most ``per_second`` requests a second per key (a sliding one-second window)."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def wait_needed(self, key: str) -> float:
        """0 when the request may go ahead (and it is counted), else seconds to wait."""
        if self.per_second <= 0:
            return 0.0
        now = time.monotonic()
        with self.lock:
            window = self.seen.setdefault(key, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.per_second:
                return max(0.001, window[0] + 1.0 - now)
            window.append(now)
            return 0.0


@dataclass
class Served:
    url: str
    server: BaseWSGIServer
    app: Flask

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(app: Flask, host: str = "127.0.0.1", port: int = 0, ssl_context: Any = None) -> Served:
    """Serve ``app`` on a thread; port 0 picks a free one."""
    server = make_server(host, port, app, threaded=True, ssl_context=ssl_context)
    scheme = "https" if ssl_context else "http"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Served(f"{scheme}://{host}:{server.server_port}", server, app)


# --------------------------------------------------------------------------- made-up usage


def noise(key: str, t: int) -> float:
    """A stable pseudo-random number in [0, 1) for an account and an instant."""
    digest = hashlib.blake2b(f"{key}:{t}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32


def kwh(account_id: str, t: int, step: int, offset: int = -8) -> float:
    """A household's use over [t, t + step): seasonal base, evening peak, noise. ``offset``: the
    local standard time's hours from UTC (Pacific by default; near enough for a fake)."""
    hour = ((t // HOUR) + offset) % 24
    day = (t // DAY) % 365
    base = 0.35 + 0.25 * math.cos(2 * math.pi * (day - 200) / 365)
    evening = 0.9 * math.exp(-(((hour - 19) / 2.5) ** 2))
    return (base + evening + 0.3 * noise(account_id, t)) * step / HOUR


def therms(account_id: str, t: int) -> float:
    day = (t // DAY) % 365
    return 0.6 + 1.8 * max(0.0, math.cos(2 * math.pi * (day - 15) / 365)) + noise(account_id, t)


def solar_kwh(t: int, step: int, size_kw: float, offset: int = -8) -> float:
    """A rooftop system's output over [t, t + step): a noon-centred bell, none at night."""
    hour = ((t + step / 2) / HOUR + offset) % 24
    return (
        size_kw
        * 0.8
        * math.pow(max(0.0, math.cos(math.pi * (hour - 12.5) / 13)), 1.5)
        * step
        / HOUR
    )
