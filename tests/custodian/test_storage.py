"""The custodian's storage: Alembic migrations and loading real files, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

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


def test_migration_hashes_the_credentials_already_issued(database_url, tmp_path):
    """A database of revision 0001 kept secrets, codes and tokens in plain text: 0003 hashes
    them in place, and each still works, found by its hash."""
    from alembic import command
    from alembic.config import Config

    from datacustodian.migrate import MIGRATIONS
    from datacustodian.oauth import AuthorizationCodeGrant

    app = create_app({"TESTING": True, "DATABASE_URL": database_url,
                      "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite"})  # fmt: skip
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.set_main_option("sqlalchemy.url", database_url)
    command.upgrade(cfg, "0001")
    plain = {"secret": "s3cret-" * 6, "code": "c0de-" * 8, "access": "acc-" * 10,
             "refresh": "ref-" * 10, "registration": "reg-" * 10}  # fmt: skip
    with app.app_context():
        s = db.session()
        s.execute(text(
            "INSERT INTO client (id, client_id, client_secret, name, redirect_uris, notification_uri,"
            " scope, bulk_id, issued_at) VALUES (1, 'cid', :secret, 'Old', '[\"https://tp.test/cb\"]',"
            " 'https://tp.test/n', 'FB=1_3_4_5_13', '7', 0)"), plain)  # fmt: skip
        s.execute(text("INSERT INTO customer (id, username, password_hash, name, dr_programs)"
                       " VALUES (1, 'old', 'x', 'Old', '[]')"))  # fmt: skip
        s.execute(text("INSERT INTO espi_authorization (id, client_id, customer_id, scope, usage_point_ids,"
                       " status, start, duration, created) VALUES (1, 1, 1, 'FB=1_3_4_5_13', '[]', 1, 0, 1, 0)"))  # fmt: skip
        s.execute(text("INSERT INTO auth_code (code, client_id, redirect_uri, scope, authorization_id, auth_time)"
                       " VALUES (:code, 'cid', '', '', 1, :now)"), {**plain, "now": db.now()})  # fmt: skip
        s.execute(text(
            "INSERT INTO token (kind, access_token, refresh_token, client_id, authorization_id, scope,"
            " issued_at, expires_in, revoked) VALUES ('access_token', :access, :refresh, 1, 1, '', :now,"
            " 3600, false), ('registration_access_token', :registration, NULL, 1, NULL, '', 0, 0, false)"),
            {**plain, "now": db.now()})  # fmt: skip
        s.commit()
        db.close_session(None)
    upgrade(app)
    with app.app_context():
        s = db.session()
        client = s.scalar(select(db.Client))
        assert client.check_client_secret(plain["secret"]) and not client.check_client_secret("x")
        for value in (plain["access"], plain["registration"]):
            assert s.scalar(select(db.Token).where(db.Token.access_hash == db.digest(value)))
        assert s.scalar(
            select(db.Token).where(db.Token.refresh_hash == db.digest(plain["refresh"]))
        )
        grant = AuthorizationCodeGrant.__new__(AuthorizationCodeGrant)
        assert grant.query_authorization_code(plain["code"], client) is not None
        stored = repr(s.execute(text("SELECT * FROM token")).all())
        stored += repr(s.execute(text("SELECT * FROM client")).all())
        assert not any(value in stored for value in plain.values())
        db.close_session(None)
    app.extensions["appkit.engine"].dispose()
