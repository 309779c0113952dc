"""Data providers mapped into the ESPI model: each module holds one provider's API client and
its mapping into :mod:`espi.model`, nothing else. Every provider keeps one contract
(:mod:`espi.providers.base`) and registers itself, so an application drives any of them the
same way:

    from espi import providers
    cls = providers.get("pelm")                # or providers.registered(): also espi.client's
                                               # Custodian (a Green Button custodian, OAUTH)
    pelm = cls.from_settings({"client_id": ..., "secret": ..., "connect_url": ...})
    start = pelm.begin_connect("user-42", "https://app.example/callback")   # a Redirect
    credentials = pelm.finish_connect(start.state, callback_query)
    feed = pelm.fetch(credentials, since=None)            # an espi.Feed: write it with espi.write
"""

from __future__ import annotations

from .base import (
    REGISTRY,
    Capabilities,
    ConnectKind,
    Credentials,
    DataKind,
    Field,
    FieldError,
    Provider,
    Redirect,
    Setting,
    UnknownProvider,
    get,
    register,
    registered,
)
from .griddy import Griddy
from .pelm import Pelm
from .wattshift import WattShift
from .wattzon import WattzOn

__all__ = [
    "REGISTRY",
    "Capabilities",
    "ConnectKind",
    "Credentials",
    "DataKind",
    "Field",
    "FieldError",
    "Griddy",
    "Pelm",
    "Provider",
    "Redirect",
    "Setting",
    "UnknownProvider",
    "WattShift",
    "WattzOn",
    "get",
    "register",
    "registered",
]

from .. import client as client  # last: espi.client registers its Custodian with register()
