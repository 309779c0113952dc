"""The third party against the local data custodian, both live on loopback with their workers."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

import espi
from appkit import database
from datacustodian import DEFAULT_SCOPE, register
from datacustodian import create_app as create_custodian
from datacustodian import store as custodian_store
from datacustodian.migrate import upgrade as upgrade_custodian
from datacustodian.sandbox import seed
from fakes import griddy as fake_griddy
from fakes import pelm as fake_pelm
from fakes import wattshift as fake_wattshift
from fakes import wattzon as fake_wattzon
from fakes.common import serve as serve_fake
from tests.certs import make_certs, serve_tls
from tests.conftest import fresh_postgres, fresh_redis
from tests.thirdparty.browsing import Person
from tests.thirdparty.proxy import Flaky
from thirdparty_app import MIGRATIONS, create_app, queueing
from thirdparty_app import db as tp


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="module", params=["sqlite + embedded queue", "postgresql + redis queue"])
def world(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("flow")
    with contextlib.ExitStack() as stack:
        if request.param.startswith("postgresql"):
            storage = {
                "DATABASE_URL": stack.enter_context(fresh_postgres()),
                "QUEUE_URL": fresh_redis(),
            }
        else:
            storage = {
                "DATABASE_URL": f"sqlite:///{folder}/tp.sqlite",
                "QUEUE_URL": f"sqlite:///{folder}/tpq.sqlite",
            }
        yield from make_world(folder, storage)


def make_world(folder, storage):
    third_server = make_server("127.0.0.1", 0, None, threaded=True)  # reserve the port first
    third_base = f"http://127.0.0.1:{third_server.server_port}"
    third_server.server_close()

    custodian = create_custodian({
        "TESTING": True, "DATABASE_URL": f"sqlite:///{folder}/dc.sqlite", "QUEUE_URL": f"sqlite:///{folder}/dcq.sqlite",
        "NOTIFY_DELAY": 0, "EMBEDDED_WORKER": True, "RATE_LIMIT": "", "SANDBOX_TEST_AUTHORIZE": True,
    })  # fmt: skip
    c_server, direct = serve(custodian)
    flaky = Flaky(target=direct)  # third parties reach the custodian through a proxy that can fail
    p_server, c_base = serve(flaky)
    custodian.config["BASE_URL"] = c_base
    with custodian.app_context():
        upgrade_custodian(custodian)
        seed(months=1)
        creds = register("Flow test", [f"{third_base}/callback/local", f"{third_base}/callback/login"],
                         f"{third_base}/espi/1_1/Notification", DEFAULT_SCOPE)  # fmt: skip

    pelm = serve_fake(fake_pelm.create_app(data_delay=1))
    wattshift = serve_fake(fake_wattshift.create_app())
    certs = make_certs(folder / "certs")
    wattzon = serve_tls(
        fake_wattzon.create_app(
            step_seconds=0.2, notify_url=f"{third_base}/providers/wattzon/notify"
        ),
        certs,
    )
    griddy = serve_fake(fake_griddy.create_app())
    resource = f"{c_base}/GreenButtonConnect/espi/1_1/resource"
    third = create_app({
        "TESTING": True, **storage, "DOCUMENTS": str(folder / "documents"), "EMBEDDED_WORKER": True, "JOB_RETRY_DELAY": 1,
        "CUSTODIANS": {"local": {
            "authorize_url": f"{c_base}/datacustodian/test/oauth/v2/authorize",
            "token_url": f"{c_base}/datacustodian/oauth/v2/token", "resource_base": resource,
            "client_id": creds["client_id"], "client_secret": creds["client_secret"], "bulk_id": creds["bulk_id"],
            "registration_token": creds["registration_access_token"],
            "application_information_id": str(creds["application_information_id"]),
        }, "login": {  # the same custodian through its real login and consent pages
            "authorize_url": f"{c_base}/datacustodian/oauth/v2/authorize",
            "token_url": f"{c_base}/datacustodian/oauth/v2/token", "resource_base": resource + "/",
            "client_id": creds["client_id"], "client_secret": creds["client_secret"], "scope": DEFAULT_SCOPE,
        }},
        "PROVIDERS": {
            "pelm": {"base_url": pelm.url, "connect_url": f"{pelm.url}/connect",
                     "client_id": "pelm-sandbox-client", "secret": "pelm-sandbox-secret"},
            "wattshift": {"base_url": wattshift.url, "api_key": "ws-sandbox-key"},
            "wattzon": {"base_url": wattzon.url, "client_cert": str(certs / "client.pem"),
                        "client_key": str(certs / "client.key"), "ca_bundle": str(certs / "ca.pem")},
            "griddy": {"base_url": griddy.url},
        },
        "PROVIDER_NOT_READY_DELAY": 1,
        "SIGNIN_LIMIT": "1000 per minute",  # many test customers sign up from one address
        "BASE_URL": third_base,
    })  # fmt: skip
    with third.app_context():
        database.upgrade(third, MIGRATIONS)
    t_server = make_server("127.0.0.1", int(third_base.rsplit(":", 1)[1]), third, threaded=True)
    threading.Thread(target=t_server.serve_forever, daemon=True).start()
    customer = Person.sign_up(third_base, "first@example.com", name="First Customer")
    yield {"custodian": custodian, "third": third, "c_base": c_base, "t_base": third_base, "resource": resource,
           "creds": creds, "flaky": flaky, "pelm": pelm, "wattshift": wattshift,
           "wattzon": wattzon, "griddy": griddy, "customer": customer}  # fmt: skip
    for server in (
        c_server,
        p_server,
        t_server,
        pelm.server,
        wattshift.server,
        wattzon.server,
        griddy.server,
    ):
        server.shutdown()
        server.server_close()
    custodian.extensions["dc.consumer"].stop()
    queueing.of(third).consumer.stop()
    third.extensions["appkit.engine"].dispose()


def wait(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def stored_readings(third):
    with third.app_context():
        s = database.session()
        rows = s.execute(select(tp.Reading.start, tp.Reading.duration, tp.Reading.value, tp.Reading.cost)
                         .order_by(tp.Reading.meter_reading_id, tp.Reading.start)).all()  # fmt: skip
        database.close_session(None)
        return [tuple(r) for r in rows]


def custodian_bills(custodian):
    with custodian.app_context():
        s = database.session()
        from datacustodian import db as dc

        auth = s.scalar(select(dc.Authorization).order_by(dc.Authorization.id))
        out = []
        for row in auth.usage_points(s):
            for bill in custodian_store.usage_point(s, row, blocks=False).usage_summaries:
                out.append(
                    (
                        bill.billing_period.start,
                        bill.bill_last_period,
                        len(bill.cost_additional_detail_last_period),
                    )
                )
        database.close_session(None)
        return sorted(out)


def stored_bills(third):
    with third.app_context():
        s = database.session()
        out = [(b.start, b.amount, len(b.line_items)) for b in s.scalars(select(tp.Bill))]
        database.close_session(None)
        return sorted(out)


def custodian_readings(custodian):
    with custodian.app_context():
        s = database.session()
        from datacustodian import db as dc

        auth = s.scalar(select(dc.Authorization).order_by(dc.Authorization.id))
        out = []
        for row in auth.usage_points(s):
            up = custodian_store.usage_point(s, row)
            for mr in up.meter_readings:
                out += [(r.start, r.duration, r.value, r.cost) for r in mr.readings()]
        database.close_session(None)
        return sorted(out)


def connect(world) -> None:
    """The world's customer connects the sandbox's first customer through the test authorize
    pair; wait for the data."""
    r = world["customer"].connect("local")
    assert r.status_code == 200 and "Authorizations" in r.text
    third = world["third"]

    def active():
        with third.app_context():
            conn = database.session().scalar(select(tp.Connection))
            status = conn.status if conn else None
            database.close_session(None)
            return status == "active"

    wait(active)


def test_connect_202_notification_fetch_and_store(world):
    connect(world)
    third = world["third"]
    assert sorted(stored_readings(third)) == custodian_readings(world["custodian"])
    assert stored_bills(third) == custodian_bills(world["custodian"]) != []
    with third.app_context():
        s = database.session()
        conn = s.scalar(select(tp.Connection))
        assert conn.subscription_uri.startswith(world["resource"] + "/Batch/Subscription/")
        assert "access_token" not in (conn.access_token or "") and not conn.access_token.startswith(
            "ey"
        )
        bills = s.scalar(select(func.count()).select_from(tp.Bill))
        assert bills >= 1
        database.close_session(None)


def test_connecting_through_the_login_and_consent_pages(world):
    """One browser, two apps on one host: their session cookies must not clash."""
    import re

    browser = Person.sign_up(world["t_base"])
    login = browser.connect("login")
    assert "Sign in to share your energy data" in login.text
    consent = browser.post(
        login.url, data={"username": "bob", "password": "sandbox-bob"}, timeout=30
    )
    ids = re.findall(r'name="usage_point" value="(\d+)"', consent.text)
    done = browser.post(
        consent.url, data={"decision": "approve", "usage_point": ids[:1]}, timeout=30
    )
    assert done.status_code == 200 and done.url == f"{world['t_base']}/"
    with world["third"].app_context():
        conns = (
            database.session()
            .scalars(select(tp.Connection).where(tp.Connection.profile == "login"))
            .all()
        )
        assert len(conns) == 1 and conns[0].subscription_uri
        database.close_session(None)
    denied = Person.sign_up(world["t_base"])
    page = denied.connect("login")
    page = denied.post(page.url, data={"username": "bob", "password": "sandbox-bob"}, timeout=30)
    refused = denied.post(page.url, data={"decision": "deny"}, timeout=30)
    assert refused.status_code == 400 and "You chose not to share your data" in refused.text


def quiet(third) -> bool:
    """Nothing queued, nothing fetched and not yet ingested."""
    with third.app_context():
        s = database.session()
        busy = s.scalar(
            select(func.count())
            .select_from(tp.Notification)
            .where(tp.Notification.status == "queued")
        )
        busy += s.scalar(
            select(func.count()).select_from(tp.Document).where(tp.Document.status == "fetched")
        )
        database.close_session(None)
        return busy == 0


def test_the_same_notification_ten_times_adds_nothing(world):
    third = world["third"]
    wait(lambda: quiet(third))

    def of(uri):
        """The notifications and documents of one URI, and the readings of its connection."""
        with third.app_context():
            s = database.session()
            notes = s.scalar(
                select(func.count()).select_from(tp.Notification).where(tp.Notification.uri == uri)
            )
            docs = s.scalars(select(tp.Document).where(tp.Document.uri == uri)).all()
            conn = docs[0].connection_id
            readings = s.execute(
                select(tp.Reading.start, tp.Reading.value).join(tp.MeterReading).join(tp.UsagePoint)
                .where(tp.UsagePoint.connection_id == conn).order_by(tp.Reading.meter_reading_id, tp.Reading.start)
            ).all()  # fmt: skip
            database.close_session(None)
            return notes, len(docs), [tuple(r) for r in readings]

    with third.app_context():
        uri = database.session().scalar(select(tp.Notification.uri).order_by(tp.Notification.id))
        database.close_session(None)
    before = of(uri)
    assert before[0] == 1 and before[1] == 1 and before[2]
    body = espi.dumps(espi.BatchList(resources=[uri]))
    for _ in range(10):
        r = requests.post(f"{world['t_base']}/espi/1_1/Notification", data=body, timeout=10)
        assert r.status_code == 200
    wait(lambda: quiet(third))
    assert of(uri) == before


def test_a_foreign_notification_is_refused_and_never_fetched(world):
    body = espi.dumps(espi.BatchList(resources=["http://169.254.169.254/latest/meta-data"]))
    r = requests.post(f"{world['t_base']}/espi/1_1/Notification", data=body, timeout=10)
    assert r.status_code == 400 and "no configured custodian" in r.json()["error_description"]
    junk = requests.post(f"{world['t_base']}/espi/1_1/Notification", data=b"<html/>", timeout=10)
    assert junk.status_code == 400
    with world["third"].app_context():
        uris = database.session().scalars(select(tp.Notification.uri)).all()
        assert not any("169.254" in u for u in uris)
        database.close_session(None)


def test_one_post_naming_the_bulk_costs_one_202_and_one_download(world):
    """The issue's attack: one unauthenticated POST naming ``{base}/Batch/Bulk/{id}?x=1`` caused
    7 custodian 202s and 6 full Bulk downloads in 90 s, still growing. Now the variant is
    refused, and the plain URI costs one 202 and the one download the custodian announces."""
    from thirdparty_app import jobs

    third, flaky = world["third"], world["flaky"]
    wait(lambda: quiet(third))
    bulk = f"{world['resource']}/Batch/Bulk/{world['creds']['bulk_id']}"
    post = f"{world['t_base']}/espi/1_1/Notification"
    refused = requests.post(
        post, data=espi.dumps(espi.BatchList(resources=[bulk + "?x=1"])), timeout=10
    )
    assert (
        refused.status_code == 400 and "query parameter(s) x" in refused.json()["error_description"]
    )
    with third.app_context():
        last = database.session().scalar(select(func.max(tp.Document.id))) or 0
        database.close_session(None)
    mark = len(flaky.seen)
    assert (
        requests.post(
            post, data=espi.dumps(espi.BatchList(resources=[bulk])), timeout=10
        ).status_code
        == 200
    )

    def downloaded():
        with third.app_context():
            docs = (
                database.session().scalars(select(tp.Document).where(tp.Document.id > last)).all()
            )
            database.close_session(None)
        return any("/Batch/Bulk/" in d.uri and d.status == "ingested" for d in docs)

    wait(downloaded, 60)
    wait(lambda: quiet(third))
    with third.app_context():
        jobs.recover()  # a worker starting again adds nothing
    time.sleep(2)
    wait(lambda: quiet(third))
    asked = [line for line in flaky.seen[mark:] if "/Batch/Bulk/" in line]
    assert len([line for line in asked if "correlationID" not in line]) == 1, asked  # the 202
    assert len([line for line in asked if "correlationID" in line]) == 1, asked  # the download


def test_replaying_a_document_changes_nothing(world):
    third = world["third"]
    before = stored_readings(third)
    with third.app_context():
        doc = database.session().scalar(select(tp.Document).order_by(tp.Document.id))
        runner = third.test_cli_runner()
        result = runner.invoke(args=["replay", str(doc.id)])
        database.close_session(None)
    assert result.exit_code == 0, result.output
    assert stored_readings(third) == before


def connection(third):
    with third.app_context():
        conn = database.session().scalar(select(tp.Connection).order_by(tp.Connection.id))
        database.close_session(None)
        return conn


def test_a_document_that_breaks_off_leaves_no_rows_of_it(world, tmp_path):
    """Ingestion is one transaction: a document cut off halfway adds none of its readings."""
    import gzip

    from thirdparty_app import jobs

    third = world["third"]
    before = stored_readings(third)
    with third.app_context():
        s = database.session()
        good = s.scalar(select(tp.Document).order_by(tp.Document.id))
        with gzip.open(good.path, "rb") as f:
            text = f.read()
        cut = tmp_path / "cut.xml.gz"
        with gzip.open(cut, "wb") as f:
            f.write(
                text[: len(text) // 2].replace(b"<value>", b"<value>9", 1000)
            )  # new values, then cut
        broken = tp.Document(uri=good.uri, profile=good.profile, connection_id=good.connection_id,
                             path=str(cut), sha256="0" * 64, size=len(text) // 2)  # fmt: skip
        s.add(broken)
        s.commit()
        with pytest.raises(espi.ParseError):
            jobs.replay(broken.id)
        assert s.get(tp.Document, broken.id).status == "failed"
        assert "not well-formed" in s.get(tp.Document, broken.id).error
        database.close_session(None)
    assert stored_readings(third) == before


def test_a_custodian_answering_503_twice_is_retried(world):
    """The next sync asks each known usage point for its new readings (synchronous row); the
    custodian answers 503 twice, then the data."""
    third, flaky = world["third"], world["flaky"]
    with third.app_context():
        docs_before = database.session().scalar(select(func.max(tp.Document.id)))
        database.close_session(None)
    flaky.fail("/UsagePoint/", 2)
    with third.app_context():
        from thirdparty_app import jobs

        jobs.enqueue("sync", connection(third).id)

    def fetched():
        with third.app_context():
            docs = (
                database.session()
                .scalars(select(tp.Document).where(tp.Document.id > docs_before))
                .all()
            )
            database.close_session(None)
            return any("/UsagePoint/" in d.uri and d.status == "ingested" for d in docs)

    wait(fetched, timeout=60)
    tries = [
        line for line in flaky.seen if "/Batch/Subscription/" in line and "/UsagePoint/" in line
    ]
    assert len(tries) >= 3 and flaky.failures["/UsagePoint/"] == 0
    assert all("published-min=" in line for line in tries), "incremental: only what is new"


def test_expired_tokens_are_refreshed(world):
    third = world["third"]
    from thirdparty_app import jobs, vault

    with third.app_context():
        s = database.session()
        conn = s.scalar(select(tp.Connection))
        old_access, old_refresh = vault.unseal(conn.access_token), vault.unseal(conn.refresh_token)
        conn.expires_at = int(time.time()) - 10  # expired
        s.commit()
        jobs.sync(conn.id)  # refreshes first, then asks for new data
        s.refresh(conn)
        assert vault.unseal(conn.access_token) != old_access
        assert vault.unseal(conn.refresh_token) != old_refresh
        assert conn.expires_at > time.time()
        database.close_session(None)
    stale = requests.get(f"{world['resource']}/Batch/Subscription/1", timeout=10,
                         headers={"Authorization": f"Bearer {old_access}"})  # fmt: skip
    assert stale.status_code == 401, "refreshing retires the old tokens at the custodian"


def test_customer_information_and_bulk(world):
    third = world["third"]
    with third.app_context():
        s = database.session()
        kinds = set(s.scalars(select(tp.CustomerInfo.kind)))
        assert {"Customer", "CustomerAccount"} <= kinds  # fetched with the subscription
        readings_before = s.scalar(select(func.count()).select_from(tp.Reading))
        docs_before = s.scalar(select(func.count()).select_from(tp.Document))
        last_doc = s.scalar(select(func.max(tp.Document.id)))
        database.close_session(None)
    runner = third.test_cli_runner()
    status = runner.invoke(args=["status"])
    assert status.exit_code == 0 and '"service_status": "Normal"' in status.output
    assert '"client_name": "Flow test"' in status.output and '"active": 2' in status.output
    assert runner.invoke(args=["bulk"]).exit_code == 0

    def bulk_fetched():
        with third.app_context():
            docs = (
                database.session()
                .scalars(
                    select(tp.Document).where(
                        tp.Document.uri.contains("/Batch/Bulk/"), tp.Document.id > last_doc
                    )
                )
                .all()
            )
            database.close_session(None)
            return any(d.status == "ingested" for d in docs)

    wait(bulk_fetched, timeout=60)
    with third.app_context():
        s = database.session()
        assert s.scalar(select(func.count()).select_from(tp.Document)) > docs_before
        bulk = s.scalars(select(tp.Document).where(tp.Document.uri.contains("/Batch/Bulk/"))).all()[
            -1
        ]
        assert bulk.readings > 1000  # the bulk holds the same data again...
        assert s.scalar(select(func.count()).select_from(tp.Reading)) == readings_before  # ...once
        database.close_session(None)


def test_a_connection_authorized_again_keeps_its_usage_points(world):
    """Re-authorizing a failed custodian connection gives it a new subscription at the
    custodian; what it stored moves with it (the same usage points and meter readings), so the
    sync that follows adds no second copy of them."""
    t, third = world["t_base"], world["third"]
    person = Person.sign_up(t)
    assert person.connect("local").status_code == 200

    def stored():
        with third.app_context():
            s = database.session()
            conn = s.scalar(
                select(tp.Connection).join(tp.Account).where(tp.Account.email == person.email)
            )
            ups = s.execute(
                select(tp.UsagePoint.id, tp.UsagePoint.href)
                .where(tp.UsagePoint.connection_id == conn.id)
                .order_by(tp.UsagePoint.id)
            ).all()
            meters = s.scalar(
                select(func.count())
                .select_from(tp.MeterReading)
                .join(tp.UsagePoint)
                .where(tp.UsagePoint.connection_id == conn.id)
            )
            out = (
                conn.id,
                conn.status,
                conn.subscription_uri,
                conn.last_sync,
                [tuple(u) for u in ups],
                meters,
            )
            database.close_session(None)
            return out  # fmt: skip

    wait(lambda: stored()[1] == "active" and stored()[4])
    conn_id, _, before_sub, _, before_ups, before_meters = stored()
    with third.app_context():
        s = database.session()
        s.get(tp.Connection, conn_id).status = "failed"
        s.commit()
        database.close_session(None)
    again = person.connect("local", connection=str(conn_id))
    assert again.status_code == 200
    wait(lambda: stored()[1] == "active" and stored()[2] != before_sub)  # synced after
    _, _, after_sub, _, after_ups, after_meters = stored()
    assert [up_id for up_id, _ in after_ups] == [up_id for up_id, _ in before_ups]
    assert all(after_sub.replace("/Batch", "") + "/" in href for _, href in after_ups), (
        before_sub,
        after_sub,
        after_ups,
    )
    assert after_meters == before_meters


def test_disconnect_revokes_and_stops_syncing(world):
    third = world["third"]
    conn = connection(third)
    r = world["customer"].post(f"{world['t_base']}/connections/{conn.id}/disconnect", timeout=30)
    assert r.status_code == 200 and "disconnected" in r.text and "Revoked" in r.text
    from thirdparty_app import jobs, vault

    with third.app_context():
        s = database.session()
        conn = s.get(tp.Connection, conn.id)
        assert conn.status == "revoked"
        token = vault.unseal(conn.access_token)
        readings_before = s.scalar(select(func.count()).select_from(tp.Reading))
        jobs.sync(conn.id)  # does nothing for a revoked connection
        database.close_session(None)
    gone = requests.get(
        conn.subscription_uri, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert gone.status_code == 401
    with third.app_context():
        assert (
            database.session().scalar(select(func.count()).select_from(tp.Reading))
            == readings_before
        )
        database.close_session(None)
