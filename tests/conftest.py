"""Shared fixtures: the real Green Button samples, here and in ../shared when present."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SHARED_SAMPLES = HERE.parent.parent / "shared" / "espi-reference" / "samples"
EXPECTED: dict[str, dict[str, bool]] = json.loads((DATA / "expected.json").read_text())


def sample_path(name: str) -> Path:
    """A real sample by file name: the copy in tests/data, else ../shared (skip if absent)."""
    for folder in (DATA, SHARED_SAMPLES):
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} is only in ../shared/espi-reference/samples, which is not here")


def all_sample_names() -> list[str]:
    return sorted(EXPECTED)


@pytest.fixture
def sample():
    return sample_path


PG = os.environ.get("TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TEST_REDIS", "redis://127.0.0.1:6379/13")


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test (dropped after); skips without a server."""
    import psycopg

    try:
        admin = psycopg.connect(PG, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.skip(f"PostgreSQL is not reachable at {PG}: {err}")
    name = f"t_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def fresh_redis() -> str:
    """An emptied Redis database for one test; skips without a server."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.ConnectionError as err:
        pytest.skip(f"Redis is not reachable at {REDIS}: {err}")
    finally:
        client.close()
    return REDIS
