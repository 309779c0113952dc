"""The app driven by the provider registry alone: a provider registered in this test process
(the dummy meter service of tests/providers/test_registry.py, with its own fake) is offered,
connected, synced and disconnected without any change to the app; the jobs layer and the
states it relies on. On SQLite + the SQLite queue and PostgreSQL + Redis."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy import func, select, text

from espi.providers import REGISTRY, register
from fakes.common import Served, serve
from tests.providers import test_registry as dummy
from tests.scripted import Answer, Scripted
from tests.thirdparty.apps import add_connection, custodian, storage, third_party, wait  # noqa: F401
from tests.thirdparty.browsing import Person
from thirdparty_app import create_app, jobs, vault
from thirdparty_app import db as tp

APP = Path(__file__).resolve().parents[2] / "thirdparty_app"


@pytest.fixture
def meters() -> Iterator[Served]:
    """The dummy provider registered (as a library user would register theirs), and its fake."""
    register(dummy.Dummy)
    fake = serve(dummy.dummy_app())
    try:
        yield fake
    finally:
        fake.stop()
        del REGISTRY["dummy"]


@pytest.fixture
def nothing_there() -> Iterator[Scripted]:
    with Scripted(custodian(lambda seen: Answer(404))) as remote:
        yield remote


def test_a_provider_registered_here_is_offered_connected_synced_and_disconnected(
    tmp_path,
    storage,  # noqa: F811
    meters,
    nothing_there,
):
    with third_party(tmp_path, storage, nothing_there.url) as served:
        t = served.url
        person = Person.sign_up(t)
        assert "Dummy meters" not in person.get(t + "/", timeout=30).text  # no settings yet
        assert person.get(t + "/connect/dummy", timeout=30).status_code == 404
        served.app.config["PROVIDERS"]["dummy"] = {"api_key": "k", "base_url": meters.url}
        home = person.get(t + "/", timeout=30).text
        assert '<a href="/connect/dummy">Connect via Dummy meters</a>' in home
        form = person.get(t + "/connect/dummy", timeout=30)
        assert form.status_code == 200 and '<label for="meter">Meter number</label>' in form.text
        bad = person.post(t + "/connect/dummy", data={"meter": "forty-two"}, timeout=30)
        assert bad.status_code == 400
        assert (
            '<p class="error" id="meter-error" role="alert">A meter number is digits.' in bad.text
        )
        done = person.post(t + "/connect/dummy", data={"meter": "42"}, timeout=30)
        assert done.status_code == 200 and done.url == t + "/"

        def active(s):
            return s.scalar(
                select(tp.Connection).where(
                    tp.Connection.profile == "dummy", tp.Connection.status == "active"
                )
            )

        conn = wait(lambda: served.query(active))
        readings = served.query(lambda s: s.scalar(
            select(func.count()).select_from(tp.Reading).join(tp.MeterReading).join(tp.UsagePoint)
            .where(tp.UsagePoint.connection_id == conn.id)))  # fmt: skip
        assert conn.label == "42" and readings == 24
        with served.app.app_context():  # the token is kept sealed
            assert conn.access_token != "t0" and vault.unseal(conn.access_token) == "t0"
        page = person.get(t + "/connections", timeout=30).text
        assert "Dummy meters" in page and "Active" in page
        ended = person.post(f"{t}/connections/{conn.id}/disconnect", timeout=30)
        assert "Dummy meters disconnected: the token was revoked" in ended.text
        after = served.query(lambda s: s.get(tp.Connection, conn.id))
        assert after.status == tp.ConnectionState.REVOKED and after.access_token is None
        assert requests.get(f"{meters.url}/meters", headers={"X-Key": "k"}, timeout=30).json() == []


def test_a_notified_subscription_goes_to_its_active_connection_never_to_one_of_two(
    tmp_path,
    storage,  # noqa: F811
    nothing_there,
):
    """connection_for: an active connection before a revoked one of the same subscription; two
    in the same state are refused (the download fails, saying why) rather than one taken by
    chance."""
    with third_party(tmp_path, storage, nothing_there.url, EMBEDDED_WORKER=False) as served:
        old = add_connection(served, "first@example.com")
        served.query(lambda s: (s.get(tp.Connection, old).__setattr__("status", "revoked"),
                                s.commit()))  # fmt: skip
        new = add_connection(served, "second@example.com")
        uri = f"{served.resource}/Batch/Subscription/1/UsagePoint/1"
        with served.app.app_context():
            assert jobs.connection_for(uri).id == new
        add_connection(served, "third@example.com")
        note = served.query(lambda s: (s.add(n := tp.Notification(uri=uri, profile="remote")),
                                       s.commit(), n.id)[2])  # fmt: skip
        with served.app.app_context():
            with pytest.raises(LookupError, match="all name its subscription"):
                jobs.connection_for(uri)
            jobs.run("fetch", note, 0)
        failed = served.query(lambda s: s.get(tp.Notification, note))
        assert failed.status == tp.NotificationState.FAILED and failed.connection_id is None
        assert "all name its subscription; none is taken" in failed.error
        # states are StrEnums in Python and their text in the database
        raw = served.query(
            lambda s: s.scalar(text("SELECT status FROM notification WHERE id = :id"), {"id": note})
        )
        assert raw == "failed" and type(failed.status) is tp.NotificationState


def test_unknown_provider_settings_are_refused_at_start(tmp_path):
    paths = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
    }
    with pytest.raises(ValueError, match=r"provider pelm: unknown setting\(s\) client_idd"):
        create_app({**paths, "PROVIDERS": {"pelm": {"client_idd": "x", "secret": "s",
                                                    "connect_url": "https://a.example/c"}}})  # fmt: skip
    with pytest.raises(LookupError, match="no provider 'pelmm'; known: "):
        create_app({**paths, "PROVIDERS": {"pelmm": {}}})


def test_no_module_of_the_app_names_a_provider_or_looks_a_task_up():
    """Issue 17's measure: no per-provider tables, no service locator for jobs."""
    found = [
        f"{path.name}:{n}"
        for path in APP.glob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r'SLUGS|FETCHERS|extensions\["tp\.', line)
    ]
    assert found == []


def test_migration_0007_keeps_a_connections_running_jobs_sealed(tmp_path, storage):  # noqa: F811
    """0006's ``pending`` (WattzOn's running jobs) becomes ``extra``: sealed JSON, read back as
    the connection's Credentials.extra; a database with none needs no key."""
    from alembic import command
    from alembic.config import Config

    from appkit import database
    from thirdparty_app import MIGRATIONS, providers

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.set_main_option("sqlalchemy.url", storage["DATABASE_URL"].replace("%", "%%"))
    command.upgrade(cfg, "0006")
    engine = sa.create_engine(storage["DATABASE_URL"])
    with engine.begin() as c:
        c.execute(text("INSERT INTO account (id, email, name, role, created, last_login,"
                       " session_key) VALUES (1, 'a@example.com', '', 'customer', 1, 0, 'k')"))  # fmt: skip
        c.execute(text("INSERT INTO connection (id, account_id, profile, label, scope, status,"
                       " reason, created, last_sync, pending, customer_name, account_number,"
                       " service_address, attempts, refreshing, expires_at) VALUES (1, 1,"
                       " 'wattzon', '17', '', 'waiting', '', 1, 0, 'job-a job-b', '', '', '', 0,"
                       " 0, 0)"))  # fmt: skip
    engine.dispose()
    app = create_app({"TESTING": True, **storage, "DOCUMENTS": str(tmp_path / "documents")})
    with app.app_context():
        database.upgrade(app, MIGRATIONS)
        conn = database.session().get(tp.Connection, 1)
        assert conn.extra and "job-a" not in conn.extra
        creds = providers.credentials(providers.source("wattzon"), conn)
        assert (creds.account, creds.extra) == ("17", {"jobs": "job-a job-b"})
        database.close_session(None)
    app.extensions["appkit.engine"].dispose()
