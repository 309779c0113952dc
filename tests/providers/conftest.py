"""Fixtures of the provider tests: a test CA with client certificates (WattzOn's mutual TLS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.certs import make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("wattzon") / "certs")
