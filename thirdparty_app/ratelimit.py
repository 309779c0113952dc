"""Rate limits kept where every process of the app sees them (``RATE_LIMIT_STORAGE``: memory
for one process, ``redis://...`` for several): a custodian's request rate, sign-in attempts,
new resources announced to the Notification webhook."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import current_app
from limits import RateLimitItemPerSecond, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

import espi

#: the longest a request waits for its turn under a custodian's rate limit
PACE_LIMIT = 300.0


def limiter() -> MovingWindowRateLimiter:
    found = current_app.extensions.get("thirdparty_app.limiter")
    if found is None:
        storage = storage_from_string(current_app.config.get("RATE_LIMIT_STORAGE") or "memory://")
        found = current_app.extensions["thirdparty_app.limiter"] = MovingWindowRateLimiter(storage)
    return found


def count(limit: str, *keys: str, cost: int = 1) -> bool:
    """Count ``cost`` more events under ``keys``; False (nothing counted) once ``limit``
    ("10 per minute") would be exceeded."""
    return limiter().hit(parse(limit), *keys, cost=cost)


def retry_in(limit: str, *keys: str) -> int:
    """Whole seconds until ``limit`` under ``keys`` has room again (at least 1)."""
    stats = limiter().get_window_stats(parse(limit), *keys)
    return max(1, math.ceil(stats.reset_time - time.time()))


def pacer(name: str, per_second: float) -> Callable[[], None]:
    """A custodian client's throttle: each request waits for its turn under the custodian's
    rate limit (PG&E: one a second), counted in the shared storage, so every worker and web
    process together keep it. A turn that does not come within :data:`PACE_LIMIT` seconds is
    :class:`espi.Unavailable`."""
    shared = limiter()
    item = RateLimitItemPerSecond(max(int(per_second), 1), max(int(1 / per_second), 1))

    def wait_turn() -> None:
        deadline = time.monotonic() + PACE_LIMIT
        while not shared.hit(item, "custodian", name):
            if time.monotonic() > deadline:
                raise espi.Unavailable(
                    f"no turn under the rate limit of {name} within {PACE_LIMIT:.0f} s",
                    provider="custodian",
                )
            time.sleep(0.05)

    return wait_turn


def clear(limit: str, *keys: str) -> None:
    """Forget what was counted under ``keys``."""
    limiter().clear(parse(limit), *keys)
