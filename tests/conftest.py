"""Shared fixtures: the real Green Button samples, here and in ../shared when present."""

from __future__ import annotations

import json
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
