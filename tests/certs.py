"""A test CA with server and client certificates, and fakes served over mutual TLS with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from flask import Flask

from appkit.tls import tls_context
from fakes.common import Served, serve

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = {"client": "third party", "revoked": "former customer"}


def make_certs(folder: Path, clients: dict[str, str] = CLIENTS) -> Path:
    """tools/make_certs.py's CA, server (127.0.0.1) and client certificates in ``folder``:
    ``client`` (CN "third party") and ``revoked`` (CN "former customer") by default."""
    spec = importlib.util.spec_from_file_location("make_certs", ROOT / "tools" / "make_certs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.make(folder, clients))


def serve_tls(app: Flask, certs: Path) -> Served:
    ctx = tls_context(str(certs / "server.pem"), str(certs / "server.key"), str(certs / "ca.pem"))
    return serve(app, ssl_context=ctx)
