"""Rate limits kept where every process of the app sees them (``RATE_LIMIT_STORAGE``: memory
for one process, ``redis://...`` for several): a custodian's request rate, sign-in attempts."""

from __future__ import annotations

from flask import current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


def limiter() -> MovingWindowRateLimiter:
    found = current_app.extensions.get("tp.limiter")
    if found is None:
        storage = storage_from_string(current_app.config.get("RATE_LIMIT_STORAGE") or "memory://")
        found = current_app.extensions["tp.limiter"] = MovingWindowRateLimiter(storage)
    return found  # type: ignore[no-any-return]


def count(limit: str, *keys: str) -> bool:
    """Count one more event under ``keys``; False once ``limit`` ("10 per minute") is spent."""
    return limiter().hit(parse(limit), *keys)


def clear(limit: str, *keys: str) -> None:
    """Forget what was counted under ``keys``."""
    limiter().clear(parse(limit), *keys)
