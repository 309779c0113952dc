"""Accounts and isolation: every route of the app, walked from its URL map as one customer
against another's ids and as an anonymous visitor; CSRF on every form; security headers;
ingestion that never moves rows between connections; API keys; deleting data. On SQLite and on
PostgreSQL (the live world of test_flow)."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

import espi
from appkit import database
from tests.conftest import DATA
from tests.thirdparty.browsing import PASSWORD, Person
from tests.thirdparty.test_flow import wait, world  # noqa: F401 - the live custodian + third party
from thirdparty_app import db as tp

WEBHOOKS = {"/espi/1_1/Notification", "/providers/<slug>/notify"}
PUBLIC_PAGES = {"/login", "/signup", "/reset", "/reset/<token>", "/api/openapi.json"}


def query(third, fn):
    with third.app_context():
        try:
            return fn(database.session())
        finally:
            database.close_session(None)


def account_id(third, email):
    return query(third, lambda s: s.scalar(select(tp.Account.id).where(tp.Account.email == email)))


def connections_of(third, email):
    return query(
        third,
        lambda s: s.scalars(
            select(tp.Connection)
            .join(tp.Account)
            .where(tp.Account.email == email)
            .order_by(tp.Connection.id)
        ).all(),
    )


def connect_local(live, person):
    """``person`` connects the sandbox's first customer (the test authorize pair); waits."""
    assert person.connect("local").status_code == 200
    wait(lambda: any(c.status == "active" for c in connections_of(live["third"], person.email)), 60)


def readings_of(third, conn_id):
    return query(
        third,
        lambda s: s.execute(
            select(tp.UsagePoint.href, tp.MeterReading.href, tp.Reading.start, tp.Reading.value)
            .join(tp.MeterReading, tp.MeterReading.usage_point_id == tp.UsagePoint.id)
            .join(tp.Reading, tp.Reading.meter_reading_id == tp.MeterReading.id)
            .where(tp.UsagePoint.connection_id == conn_id)
            .order_by(tp.MeterReading.href, tp.Reading.start)
        ).all(),
    )


def snapshot(third, email):
    """Everything an account owns, to compare before and after a request."""

    def take(s):
        acc = s.scalar(select(tp.Account).where(tp.Account.email == email))
        conns = s.scalars(
            select(tp.Connection)
            .where(tp.Connection.account_id == acc.id)
            .order_by(tp.Connection.id)
        ).all()
        ids = [c.id for c in conns]
        ups = s.scalars(select(tp.UsagePoint.id).where(tp.UsagePoint.connection_id.in_(ids))).all()
        return {
            "account": (acc.email, acc.password_hash, acc.session_key),
            "connections": [(c.id, c.status, c.access_token, c.reason) for c in conns],
            "usage_points": sorted(ups),
            "readings": s.scalar(
                select(func.count())
                .select_from(tp.Reading)
                .join(tp.MeterReading)
                .where(tp.MeterReading.usage_point_id.in_(ups))
            ),
            "bills": s.scalar(
                select(func.count()).select_from(tp.Bill).where(tp.Bill.usage_point_id.in_(ups))
            ),
            "rate plans": s.scalar(
                select(func.count())
                .select_from(tp.RatePlan)
                .where(tp.RatePlan.usage_point_id.in_(ups))
            ),
            "keys": sorted(s.scalars(select(tp.ApiKey.id).where(tp.ApiKey.account_id == acc.id))),
            "documents": s.scalar(
                select(func.count())
                .select_from(tp.Document)
                .where(tp.Document.connection_id.in_(ids))
            ),
        }

    return query(third, take)


@pytest.fixture(scope="module")
def two(world):  # noqa: F811
    """Customers A and B, each with the same utility customer connected (two connections of
    one subscription's data), B also with an uploaded file, an API key and a rate plan."""
    t = world["t_base"]
    a = world["customer"]
    b = Person.sign_up(t, "bee@example.com", name="Bee Customer")
    connect_local(world, a)
    connect_local(world, b)
    page = b.upload("bee-hydro.xml", (DATA / "burlington_hydro_usage_60min.xml").read_bytes())
    assert 'id="upload-result"' in page.text, page.text[:300]
    b.post(f"{t}/account/keys", data={"name": "bee's script"}, timeout=30)
    b_up = query(
        world["third"],
        lambda s: s.scalar(
            select(tp.UsagePoint.id)
            .join(tp.Connection)
            .join(tp.Account)
            .where(tp.Account.email == b.email)
            .order_by(tp.UsagePoint.id)
        ),
    )
    plan = "66d811ce52c6fe40859130e8"  # the WattShift stand-in's TOU-C
    priced = b.post(
        f"{t}/usage-points/{b_up}/pricing", data={"zip": "95313", "plan": plan}, timeout=60
    )
    assert priced.status_code == 200, priced.text[:300]
    return {"a": a, "b": b}


def b_ids(third, email):
    def take(s):
        acc = s.scalar(select(tp.Account).where(tp.Account.email == email))
        conn = s.scalar(
            select(tp.Connection)
            .where(tp.Connection.account_id == acc.id)
            .order_by(tp.Connection.id)
        )
        up = s.scalar(select(tp.UsagePoint.id).where(tp.UsagePoint.connection_id == conn.id))
        key = s.scalar(select(tp.ApiKey.id).where(tp.ApiKey.account_id == acc.id))
        note = s.scalar(select(tp.Notification.id).where(tp.Notification.connection_id == conn.id))
        upload = s.scalar(select(tp.Upload.id).where(tp.Upload.account_id == acc.id))
        return {
            "up_id": up,
            "conn_id": conn.id,
            "key_id": key,
            "note_id": note,
            "upload_id": upload,
            "name": "local",
            "slug": "wattzon",
            "token": "not-a-token",
            "filename": "style.css",
        }

    return query(third, take)


def rules(third):
    """Every rule and method of the app (signing out last: it ends the walker's session)."""
    for rule in sorted(third.url_map.iter_rules(), key=lambda r: r.endpoint == "accounts.logout"):
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def url_of(rule, ids):
    missing = [a for a in rule.arguments if a not in ids]
    assert not missing, f"{rule.rule}: give the isolation test an id of B's for {missing}"
    path = rule.rule
    for arg in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{arg}>", str(ids[arg]), path)
    return path


def markers(third, email):
    """Text that only B's data would put on a page."""

    def take(s):
        acc = s.scalar(select(tp.Account).where(tp.Account.email == email))
        keys = s.scalars(select(tp.ApiKey.prefix).where(tp.ApiKey.account_id == acc.id)).all()
        return [email, acc.name, "bee-hydro.xml", *keys]

    return query(third, take)


def test_every_route_as_another_customer_and_as_a_visitor(world, two):  # noqa: F811
    third, t = world["third"], world["t_base"]
    a, b = two["a"], two["b"]
    ids = b_ids(third, b.email)
    seen_b = markers(third, b.email)
    before = snapshot(third, b.email)
    a.refresh_token()
    walked = 0
    for rule, method in rules(third):
        path = url_of(rule, ids)
        if rule.rule in WEBHOOKS:
            continue  # machines' posts: their own tests (foreign URIs refused, profiles unknown)
        for who, person in (("A", a), ("anonymous", requests.Session())):
            r = person.request(method, t + path, timeout=60, allow_redirects=False)
            walked += 1
            where = f"{who} {method} {path}: {r.status_code}"
            if who == "anonymous" and rule.rule not in PUBLIC_PAGES:
                if method == "GET" and not path.startswith("/api/") and "/export" not in path:
                    assert r.status_code == 302 and "/login" in r.headers["Location"], where
                else:
                    assert r.status_code in (400, 401), where
            if who == "A" and any(
                x in rule.arguments for x in ("up_id", "conn_id", "key_id", "note_id", "upload_id")
            ):
                assert r.status_code == 404, where  # B's id is, for A, an id that does not exist
            if r.status_code == 200:
                body = r.text
                leaked = [m for m in seen_b if m and m in body]
                assert not leaked, f"{where} shows B's {leaked}"
            assert snapshot(third, b.email) == before, f"{where} changed B's data"
    assert walked > 40
    a.cookies = Person.sign_in(t, a.email).cookies  # the walk ended by signing A out
    a.refresh_token()
    # B still sees all of it
    assert b.get(f"{t}/usage-points/{ids['up_id']}", timeout=30).status_code == 200


def test_the_same_document_for_two_connections_gives_two_sets_of_rows(world, two):  # noqa: F811
    from thirdparty_app.documents import Kept, record
    from thirdparty_app.ingest import ingest

    third = world["third"]
    a_conn = next(c for c in connections_of(third, two["a"].email) if c.profile == "local")
    b_conn = next(c for c in connections_of(third, two["b"].email) if c.profile == "local")
    a_rows, b_rows = readings_of(third, a_conn.id), readings_of(third, b_conn.id)

    def data(rows):  # the same customer's data, under each connection's own subscription
        return [(up.rsplit("/", 1)[1], start, value) for up, _, start, value in rows]

    assert a_rows and data(a_rows) == data(b_rows)
    # A's very document, fetched again for B: B gets its own rows, A's stay as they were
    with third.app_context():
        s = database.session()
        doc = s.scalar(
            select(tp.Document).where(
                tp.Document.connection_id == a_conn.id, tp.Document.readings > 0
            )
        )
        again = record(
            "local", doc.uri, s.get(tp.Connection, b_conn.id), Kept(doc.path, doc.sha256, doc.size)
        )
        assert ingest(s, again) == doc.readings
        database.close_session(None)
    assert readings_of(third, a_conn.id) == a_rows
    assert {r for r in readings_of(third, b_conn.id)} >= set(a_rows) - set(b_rows) != set()
    # a Bulk of every authorization files each usage point under its own connection
    runner = third.test_cli_runner()
    assert runner.invoke(args=["bulk"]).exit_code == 0

    def bulk_done():
        return query(
            third,
            lambda s: any(
                d.status == "ingested"
                for d in s.scalars(
                    select(tp.Document).where(tp.Document.uri.contains("/Batch/Bulk/"))
                )
            ),
        )

    wait(bulk_done, 90)
    assert readings_of(third, a_conn.id) == a_rows
    assert (
        query(
            third,
            lambda s: s.scalar(
                select(func.count())
                .select_from(tp.UsagePoint)
                .where(tp.UsagePoint.connection_id.is_(None))
            ),
        )
        == 0
    )


def test_a_bulk_usage_point_no_connection_covers_is_refused(world, two, tmp_path, caplog):  # noqa: F811
    """A Bulk feed that holds a subscription no connection of ours has: not stored at all."""
    from thirdparty_app.documents import keeping, record
    from thirdparty_app.ingest import ingest

    third, resource = world["third"], world["resource"]
    up = espi.UsagePoint(
        links=[espi.Link(rel="self", href=f"{resource}/Subscription/999/UsagePoint/9")],
        service_category=espi.ServiceCategory(kind=espi.ServiceKind.ELECTRICITY),
    )
    rt = espi.builder.reading_type(espi.UnitSymbolKind.WH, interval_length=3600)
    espi.builder.meter_reading(up, rt, [(1_700_000_000 + 3600 * i, 3600, 500) for i in range(24)])
    before = query(third, lambda s: s.scalar(select(func.count()).select_from(tp.Reading)))
    with third.app_context(), caplog.at_level(logging.WARNING, "thirdparty_app.ingest"):
        with keeping() as out:
            espi.write(espi.builder.feed(up), out)
        doc = record("local", f"{resource}/Batch/Bulk/x", None, out.kept)
        assert ingest(database.session(), doc) == 0
        database.close_session(None)
    assert query(third, lambda s: s.scalar(select(func.count()).select_from(tp.Reading))) == before
    assert "Subscription/999/UsagePoint/9 belongs to no connection" in caplog.text


def test_every_form_post_needs_its_csrf_token(world, two):  # noqa: F811
    third, t = world["third"], world["t_base"]
    a = two["a"]
    own = b_ids(third, a.email)  # A's own ids: only the missing token is wrong
    before = snapshot(third, a.email)
    posts = 0
    for rule, method in rules(third):
        if method != "POST" or rule.rule in WEBHOOKS:
            continue
        token, a.token = a.token, ""
        try:
            r = a.post(
                t + url_of(rule, own),
                data={"password": PASSWORD, "delete_data": "yes"},
                timeout=30,
                allow_redirects=False,
            )
        finally:
            a.token = token
        posts += 1
        assert r.status_code in (400, 403), f"POST {rule.rule} without a token: {r.status_code}"
        assert "This form was not accepted" in r.text  # the page says so in words
    assert posts >= 10
    assert snapshot(third, a.email) == before
    # and a cross-site form (the attack of the issue) changes nothing either
    conn = own["conn_id"]
    forged = requests.post(
        f"{t}/connections/{conn}/disconnect",
        headers={"Origin": "http://evil.example"},
        cookies=a.cookies,
        timeout=30,
        allow_redirects=False,
    )
    assert forged.status_code == 400 and snapshot(third, a.email) == before


def test_security_headers_on_every_page(world, two):  # noqa: F811
    third, t = world["third"], world["t_base"]
    a = two["a"]
    own = b_ids(third, a.email)
    for rule, method in rules(third):
        if method != "GET":
            continue
        r = a.get(t + url_of(rule, own), timeout=60, allow_redirects=False)
        where = f"GET {rule.rule}: {r.status_code}"
        csp = r.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, where
        assert "unsafe-inline" not in csp, where
        assert r.headers.get("X-Frame-Options") == "DENY", where
        assert r.headers.get("X-Content-Type-Options") == "nosniff", where
        assert r.headers.get("Referrer-Policy") == "same-origin", where
        assert "Strict-Transport-Security" not in r.headers, where  # plain HTTP here
        if "text/html" in r.headers.get("Content-Type", ""):
            assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), f"{where}: inline script"
            assert " style=" not in r.text and " on" + "click=" not in r.text, where
    # over HTTPS (a proxy in front, or TLS here): HSTS and Secure cookies
    client = third.test_client()
    page = client.get("/login", base_url="https://third.example")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]


def test_oauth_codes_and_states_never_reach_the_access_log(world, caplog):  # noqa: F811
    person = Person.sign_up(world["t_base"])
    with caplog.at_level(logging.INFO, "werkzeug"):
        connect_local(world, person)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    callbacks = [line for line in lines if "GET /callback/local?" in line]
    assert callbacks and all(
        "code=[redacted]" in line and "state=[redacted]" in line for line in callbacks
    ), callbacks


def test_api_keys_see_their_own_accounts_data_only(world, two):  # noqa: F811
    third, t = world["third"], world["t_base"]
    a, b = two["a"], two["b"]
    made = a.post(f"{t}/account/keys", data={"name": "my spreadsheet"}, timeout=30)
    key = re.search(r'id="new-key">([^<]+)<', made.text).group(1)
    assert (
        "my spreadsheet" in made.text and key not in a.get(f"{t}/account", timeout=30).text
    )  # once
    mine = requests.get(
        f"{t}/api/usage-points", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert mine.status_code == 200
    a_conns = {c.id for c in connections_of(third, a.email)}
    assert mine.json() and {u["connection"] for u in mine.json()} <= a_conns
    b_up = b_ids(third, b.email)["up_id"]
    for path in (
        f"/api/usage-points/{b_up}/readings",
        f"/api/usage-points/{b_up}/summaries",
        f"/usage-points/{b_up}/export?format=csv",
    ):
        r = requests.get(t + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 404, path
    own_up = mine.json()[0]["id"]
    csv = requests.get(
        f"{t}/usage-points/{own_up}/export",
        params={"format": "csv"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert csv.status_code == 200 and csv.text.startswith("usage_point,")
    # a key is for the API and exports only: not for pages or forms
    page = requests.get(
        f"{t}/", headers={"Authorization": f"Bearer {key}"}, timeout=30, allow_redirects=False
    )
    assert page.status_code == 302
    used = query(
        third,
        lambda s: s.scalar(select(tp.ApiKey.last_used).where(tp.ApiKey.name == "my spreadsheet")),
    )
    assert used > 0
    # revoked: refused at once
    key_id = query(
        third, lambda s: s.scalar(select(tp.ApiKey.id).where(tp.ApiKey.name == "my spreadsheet"))
    )
    a.post(f"{t}/account/keys/{key_id}/revoke", timeout=30)
    gone = requests.get(
        f"{t}/api/usage-points", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_token"
    assert "WWW-Authenticate" in gone.headers


def test_operators_see_and_search_every_customer(world, two):  # noqa: F811
    third, t = world["third"], world["t_base"]
    runner = third.test_cli_runner()
    done = runner.invoke(
        args=["create-operator", "staff@example.com", "--name", "Support"],
        env={"THIRDPARTY_OPERATOR_PASSWORD": PASSWORD},
    )
    assert done.exit_code == 0, done.output
    staff = Person.sign_in(t, "staff@example.com")
    everyone = staff.get(f"{t}/operator/customers", timeout=30).text
    assert two["a"].email in everyone and two["b"].email in everyone
    customer = connections_of(third, two["b"].email)[0]
    assert customer.customer_name and customer.account_number  # from the RetailCustomer data
    for q in (customer.customer_name.split()[0], customer.account_number, two["b"].email):
        found = staff.get(f"{t}/operator/customers", params={"q": q}, timeout=30).text
        assert two["b"].email in found, q
    none = staff.get(f"{t}/operator/customers", params={"q": "no such customer"}, timeout=30).text
    assert "No customer matches" in none
    revoked = staff.get(f"{t}/operator/customers", params={"state": "revoked"}, timeout=30).text
    assert two["b"].email not in revoked
    gas = staff.get(f"{t}/operator/customers", params={"kind": "1"}, timeout=30)
    assert gas.status_code == 200
    # the operator sees B's usage point and key-less API, but cannot delete B's data
    b_up = b_ids(third, two["b"].email)["up_id"]
    assert staff.get(f"{t}/usage-points/{b_up}", timeout=30).status_code == 200
    api = staff.get(f"{t}/api/usage-points", timeout=30).json()
    assert b_up in {u["id"] for u in api}
    conn = b_ids(third, two["b"].email)["conn_id"]
    refused = staff.post(
        f"{t}/connections/{conn}/disconnect", data={"delete_data": "yes"}, timeout=30
    )
    assert refused.status_code == 403
    # customers do not have the operators' page
    assert two["a"].get(f"{t}/operator/customers", timeout=30).status_code == 404


def test_password_reset_by_a_signed_expiring_link(world, two):  # noqa: F811
    third, t = world["third"], world["t_base"]
    person = Person.sign_up(t)
    other_session = Person.sign_in(t, person.email)
    outbox = Path(third.instance_path) / "outbox"
    before = set(outbox.glob("*.eml")) if outbox.exists() else set()
    anon = Person(t)
    from tests.thirdparty.browsing import csrf_token

    page = anon.get(f"{t}/reset", timeout=30)
    sent = anon.post(
        f"{t}/reset", data={"email": person.email, "csrf_token": csrf_token(page.text)}, timeout=30
    )
    assert "on its way" in sent.text
    unknown = anon.post(
        f"{t}/reset",
        data={"email": "nobody@example.com", "csrf_token": csrf_token(page.text)},
        timeout=30,
    )
    assert "on its way" in unknown.text  # the same answer: no telling who has an account
    mails = sorted(set(outbox.glob("*.eml")) - before)
    assert len(mails) == 1
    mail = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    assert mail["To"] == person.email and mail["Subject"] == "Reset your password"
    link = re.search(r"(http://\S+/reset/\S+)", mail.get_content()).group(1)
    form = anon.get(link, timeout=30)
    done = anon.post(
        link,
        data={"password": "a brand new password", "csrf_token": csrf_token(form.text)},
        timeout=30,
    )
    assert done.url == f"{t}/" and "Your password was changed" in done.text
    again = anon.get(link, timeout=30)
    assert again.status_code == 400 and "expired or was used" in again.text  # single use
    # every other session ended; the old password no longer works, the new one does
    assert other_session.get(f"{t}/account", timeout=30, allow_redirects=False).status_code == 302
    with pytest.raises(AssertionError):
        Person.sign_in(t, person.email)
    Person.sign_in(t, person.email, "a brand new password")


def test_sign_in_starts_a_new_session_and_guessing_is_slowed(world):  # noqa: F811
    from tests.thirdparty.browsing import csrf_token

    third, t = world["third"], world["t_base"]
    person = Person.sign_up(t)
    visitor = Person(t)
    page = visitor.get(f"{t}/login", timeout=30)
    old_token, old_cookie = csrf_token(page.text), visitor.cookies.get("thirdparty_session")
    visitor.post(
        f"{t}/login",
        data={"email": person.email, "password": PASSWORD, "csrf_token": old_token},
        timeout=30,
    )
    assert visitor.cookies.get("thirdparty_session") != old_cookie
    stale = visitor.post(f"{t}/account/keys", data={"csrf_token": old_token}, timeout=30)
    assert stale.status_code == 400  # nothing from before signing in carries over
    third.config["SIGNIN_LIMIT"] = "3 per minute"
    try:
        target = Person.sign_up(t)
        guesser = Person(t)
        token = csrf_token(guesser.get(f"{t}/login", timeout=30).text)
        codes = [
            guesser.post(
                f"{t}/login",
                timeout=30,
                data={"email": target.email, "password": f"guess {i}", "csrf_token": token},
            ).status_code
            for i in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        right = guesser.post(
            f"{t}/login",
            timeout=30,
            data={"email": target.email, "password": PASSWORD, "csrf_token": token},
        )
        assert right.status_code == 429  # even the right password waits
    finally:
        third.config["SIGNIN_LIMIT"] = "1000 per minute"
        from thirdparty_app.ratelimit import limiter

        with third.app_context():
            limiter().storage.reset()


def test_deleting_a_sources_data_and_the_whole_account(world, two):  # noqa: F811
    third, t = world["third"], world["t_base"]
    person = Person.sign_up(t)
    connect_local(world, person)
    conn = connections_of(third, person.email)[0]
    token = query(third, lambda s: s.get(tp.Connection, conn.id).access_token)
    paths = query(
        third,
        lambda s: s.scalars(
            select(tp.Document.path).where(tp.Document.connection_id == conn.id)
        ).all(),
    )
    a_before = snapshot(third, two["a"].email)
    confirm = person.get(f"{t}/connections/{conn.id}/disconnect", timeout=30)
    assert "Disconnect" in confirm.text and "readings" in confirm.text
    done = person.post(
        f"{t}/connections/{conn.id}/disconnect", data={"delete_data": "yes"}, timeout=30
    )
    assert "its data was deleted" in done.text
    assert connections_of(third, person.email) == []
    assert all(
        not Path(p).exists()
        for p in paths
        if not query(
            third, lambda s, p=p: s.scalar(select(tp.Document.id).where(tp.Document.path == p))
        )
    )
    with third.app_context():
        from thirdparty_app import vault

        access = vault.unseal(token)
        database.close_session(None)
    refused = requests.get(
        f"{world['resource']}/Batch/Subscription/1",
        headers={"Authorization": f"Bearer {access}"},
        timeout=30,
    )
    assert refused.status_code in (401, 403)  # revoked at the custodian
    assert snapshot(third, two["a"].email) == a_before  # the other customer's copy stays
    # the whole account: sharing ended first, then everything
    connect_local(world, person)
    person.upload("day.xml", (DATA / "espi_1_day.xml").read_bytes())
    person.post(f"{t}/account/keys", data={"name": "k"}, timeout=30)
    wrong = person.post(f"{t}/account/delete", data={"password": "not it"}, timeout=30)
    assert "nothing was deleted" in wrong.text and connections_of(third, person.email)
    gone = person.post(f"{t}/account/delete", data={"password": PASSWORD}, timeout=30)
    assert "Your account and all its data were deleted" in gone.text
    assert account_id(third, person.email) is None
    assert (
        query(
            third,
            lambda s: s.scalar(
                select(func.count()).select_from(tp.ApiKey).where(tp.ApiKey.name == "k")
            ),
        )
        == 0
    )
    with pytest.raises(AssertionError):
        Person.sign_in(t, person.email)
    assert snapshot(third, two["a"].email) == a_before


def test_openapi_describes_the_key_scheme(world):  # noqa: F811
    doc = requests.get(f"{world['t_base']}/api/openapi.json", timeout=30).json()
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert {"apiKey": []} in doc["security"]
    assert json.dumps(doc)  # served without a session
