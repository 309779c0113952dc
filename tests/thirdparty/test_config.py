"""Configuration: secrets from the environment, never defaults outside development and tests."""

from __future__ import annotations

import pytest

from thirdparty_app import create_app


def test_refuses_to_start_without_its_secrets(tmp_path, monkeypatch):
    for name in ("THIRDPARTY_SECRET_KEY", "THIRDPARTY_TOKEN_KEY", "THIRDPARTY_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    paths = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
    }
    with pytest.raises(RuntimeError, match="THIRDPARTY_SECRET_KEY"):
        create_app(paths)
    with pytest.raises(RuntimeError, match="THIRDPARTY_TOKEN_KEY"):
        create_app({**paths, "SECRET_KEY": "s"})
    with pytest.raises(RuntimeError, match="THIRDPARTY_BASE_URL"):
        create_app({**paths, "SECRET_KEY": "s", "TOKEN_KEY": "0" * 43 + "="})
    monkeypatch.setenv("THIRDPARTY_CUSTODIANS__mine__token_url", "https://c.test/token")
    app = create_app({**paths, "TESTING": True})
    with app.app_context(), pytest.raises(ValueError, match="custodian mine: set resource_base"):
        from thirdparty_app import profiles

        profiles.get("mine")


def test_refuses_a_profile_name_longer_than_its_rows_hold(tmp_path):
    """A name over 40 characters fits no connection or notification row: on PostgreSQL every
    insert naming it would fail, and a webhook batch with it."""
    paths = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
    }
    long = "a-custodian-whose-name-is-rather-long-indeed"
    with pytest.raises(ValueError, match="at most 40 characters"):
        create_app({**paths, "CUSTODIANS": {long: {"resource_base": "https://c.test/r"}}})
    assert create_app({**paths, "CUSTODIANS": {long[:40]: {"resource_base": "https://c.test/r"}}})
