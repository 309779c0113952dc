"""Data providers mapped into the ESPI model: each module holds one provider's API client and
its mapping into :mod:`espi.model`, nothing else.

    from espi import providers
    pelm = providers.get("pelm")(client_id, secret)
    feed = pelm.fetch(access_token)          # an espi.Feed: write it with espi.write
"""

from __future__ import annotations

from typing import TypeVar

from ..errors import EspiError
from .base import Provider
from .griddy import Griddy
from .pelm import Pelm
from .wattshift import WattShift
from .wattzon import WattzOn

P = TypeVar("P", bound=type[Provider])
REGISTRY: dict[str, type[Provider]] = {cls.slug: cls for cls in (Pelm, WattShift, WattzOn, Griddy)}


class UnknownProvider(EspiError, LookupError):
    pass


def register(cls: P) -> P:
    """Add a provider class to :data:`REGISTRY` under its slug (usable as a class decorator)."""
    REGISTRY[cls.slug] = cls
    return cls


def get(slug: str) -> type[Provider]:
    """The provider class registered under ``slug``."""
    try:
        return REGISTRY[slug]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownProvider(f"no provider {slug!r}; known: {known}") from None


__all__ = [
    "REGISTRY",
    "Griddy",
    "Pelm",
    "Provider",
    "UnknownProvider",
    "WattShift",
    "WattzOn",
    "get",
    "register",
]

from .. import client as client  # noqa: E402 - the custodian client registers itself
