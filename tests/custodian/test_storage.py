"""The custodian's storage: Alembic migrations and loading real files, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

import espi
from datacustodian import create_app, db
from datacustodian.migrate import upgrade
from datacustodian.sandbox import seed
from tests.conftest import fresh_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/dc.sqlite"
        return
    with fresh_postgres() as url:
        yield url


def test_migrate_seed_and_load(database_url, tmp_path, sample):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
        }
    )
    runner = app.test_cli_runner()
    with app.app_context():
        upgrade(app)
        upgrade(app)  # twice: nothing to do the second time
        logins = seed(months=1)
        assert [x["username"] for x in logins] == ["alice", "bob", "carol", "dave"]
        s = db.session()
        assert s.scalar(select(func.count()).select_from(db.UsagePoint)) == 7
        blocks = s.scalar(select(func.count()).select_from(db.Block))
        assert blocks > 100
        seed(months=1)  # again: the customers exist, nothing is added
        assert s.scalar(select(func.count()).select_from(db.Block)) == blocks
        db.close_session(None)
    good = runner.invoke(args=["load", str(sample("pgesmd_2019-10-23.xml")), "--customer", "eve"])
    assert good.exit_code == 0 and "1 usage point(s) loaded for eve" in good.output
    bad = runner.invoke(args=["load", str(sample("PGEUsageSummary.xml")), "--customer", "mallory"])
    assert (
        bad.exit_code == 1 and "not well-formed XML" in bad.output and "Traceback" not in bad.output
    )
    with app.app_context():
        s = db.session()
        names = set(s.scalars(select(db.Customer.username)))
        assert "eve" in names and "mallory" not in names, "a bad file leaves nothing behind"
        eve = s.scalar(select(db.Customer).where(db.Customer.username == "eve"))
        from datacustodian import store

        up = store.usage_point(s, eve.usage_points[0])
        assert sum(1 for _ in up.readings()) == 48
        assert espi.validate(espi.dumps(espi.builder.feed(up))) == []
        db.close_session(None)
    app.extensions["appkit.engine"].dispose()
