"""Fixtures of the provider tests: a test CA with client certificates (WattzOn's mutual TLS)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from flask import Flask

from appkit.tls import tls_context
from fakes.common import Served, serve

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = {"client": "third party", "revoked": "former customer"}


def make_certs(folder: Path, clients: dict[str, str] = CLIENTS) -> Path:
    spec = importlib.util.spec_from_file_location("make_certs", ROOT / "tools" / "make_certs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.make(folder, clients))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("wattzon") / "certs")


def serve_tls(app: Flask, certs: Path) -> Served:
    ctx = tls_context(str(certs / "server.pem"), str(certs / "server.key"), str(certs / "ca.pem"))
    return serve(app, ssl_context=ctx)
