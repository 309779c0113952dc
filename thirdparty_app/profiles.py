"""Custodian profiles: the app's ``CUSTODIANS`` configuration read into :mod:`espi.client`
profiles (the built-in ``pge``, ``pge-test`` and ``local``, changed or added to). Set them in
the config or the environment: ``THIRDPARTY_CUSTODIANS__local__client_id=...``."""

from __future__ import annotations

from typing import Any

from flask import current_app

from espi import client as espi_client
from espi.client import CustodianProfile


def all_profiles() -> dict[str, CustodianProfile]:
    """Every profile, read once per app (a wrong setting is a ValueError naming it, each time
    it is asked for)."""
    found: dict[str, CustodianProfile] | None = current_app.extensions.get(
        "thirdparty_app.profiles"
    )
    if found is None:
        configured: dict[str, dict[str, Any]] = current_app.config.get("CUSTODIANS") or {}
        found = current_app.extensions["thirdparty_app.profiles"] = espi_client.profiles(configured)
    return found


def get(name: str) -> CustodianProfile:
    profiles = all_profiles()
    if name not in profiles:
        raise KeyError(f"no custodian profile {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


def owners(uri: str) -> list[CustodianProfile]:
    """The profiles whose resource base ``uri`` (normalised) lies under: several may name one
    custodian (its production and test OAuth pairs, or the sandbox through its login pages)."""
    return [p for p in all_profiles().values() if espi_client.within(uri, p.resource_base)]


def owning(uri: str) -> CustodianProfile | None:
    """The first profile whose resource base ``uri`` lies under (None: a foreign URI)."""
    return espi_client.owner(uri, all_profiles().values())
