"""Custodian profiles: where a custodian's OAuth and resources are, and how it behaves.

Built in: ``pge`` (PG&E Share My Data, production URLs), ``pge-test`` (PG&E's test OAuth pair)
and ``local`` (this project's datacustodian, the default). Configuration adds profiles or
overrides fields: ``THIRDPARTY_CUSTODIANS__local__client_id=...`` in the environment, or a
``CUSTODIANS`` dict in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from flask import current_app

PGE = "https://api.pge.com"


@dataclass(frozen=True)
class Profile:
    name: str
    title: str = ""
    authorize_url: str = ""  # not needed for bulk-only or client-only use
    token_url: str = ""
    resource_base: str = ""  # .../espi/1_1/resource
    client_id: str = ""
    client_secret: str = ""
    scope: str = ""
    bulk_id: str = ""
    registration_token: str = ""  # for reading our ApplicationInformation
    application_information_id: str = ""
    pkce: bool = False  # PG&E does not document PKCE
    client_cert: str = ""  # PEM file for mutual TLS
    client_key: str = ""
    ca_bundle: str = ""  # verify the custodian against this CA (default: the system's)
    published_format: str = "iso"  # "iso" (2024-01-01T00:00:00Z) or "epoch"
    requests_per_second: float = 1.0  # PG&E's limit
    quirks: tuple[str, ...] = field(default=())

    @property
    def cert(self) -> tuple[str, str] | None:
        return (self.client_cert, self.client_key) if self.client_cert else None

    @property
    def verify(self) -> str | bool:
        return self.ca_bundle or True


BUILT_IN = {
    "pge": Profile(
        "pge",
        "PG&E Share My Data",
        f"{PGE}/datacustodian/oauth/v2/authorize",
        f"{PGE}/datacustodian/oauth/v2/token",
        f"{PGE}/GreenButtonConnect/espi/1_1/resource",
        quirks=(
            "client_access_token key",
            "mutual TLS required",
            "Batch answers 202 then notifies",
        ),
    ),
    "pge-test": Profile(
        "pge-test",
        "PG&E Share My Data (test OAuth)",
        f"{PGE}/datacustodian/test/oauth/v2/authorize",
        f"{PGE}/datacustodian/test/oauth/v2/token",
        f"{PGE}/GreenButtonConnect/espi/1_1/resource",
    ),
    "local": Profile(
        "local",
        "Local sandbox (datacustodian)",
        "http://127.0.0.1:5001/datacustodian/oauth/v2/authorize",
        "http://127.0.0.1:5001/datacustodian/oauth/v2/token",
        "http://127.0.0.1:5001/GreenButtonConnect/espi/1_1/resource",
        pkce=True,
        requests_per_second=10.0,
    ),
}


def coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Profile)}
    kind = str(kinds.get(name, "str"))
    if "bool" in kind and isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    if "float" in kind:
        return float(value)
    if "tuple" in kind and isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def all_profiles() -> dict[str, Profile]:
    configured: dict[str, dict[str, Any]] = current_app.config.get("CUSTODIANS") or {}
    out = dict(BUILT_IN)
    for name, overrides in configured.items():
        known = {f.name for f in fields(Profile)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"custodian {name}: unknown setting(s) {', '.join(sorted(unknown))}")
        values = {k: coerce(k, v) for k, v in overrides.items()}
        base = out.get(name)
        profile = replace(base, **values) if base else Profile(name=name, title=name, **values)
        lacking = [k for k in ("token_url", "resource_base") if not getattr(profile, k)]
        if lacking:
            raise ValueError(f"custodian {name}: set {', '.join(lacking)}")
        out[name] = profile
    return out


def get(name: str) -> Profile:
    profiles = all_profiles()
    if name not in profiles:
        raise KeyError(f"no custodian profile {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


def owners(uri: str) -> list[Profile]:
    """The configured custodian profiles whose resource base ``uri`` lies under (several
    profiles may name one custodian, e.g. its production and test OAuth pairs)."""
    return [
        profile
        for profile in all_profiles().values()
        if profile.resource_base and uri.startswith(profile.resource_base.rstrip("/") + "/")
    ]


def owning(uri: str) -> Profile | None:
    """The first configured custodian whose resource base ``uri`` lies under (None: a foreign
    URI)."""
    found = owners(uri)
    return found[0] if found else None
