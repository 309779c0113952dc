"""A reviewer's walk through the pages as a new customer and as an operator: each test is one
finding, over real HTTP (``Person``) or in headless Chromium where it is about what renders,
on SQLite and on PostgreSQL. Each failed on the code it was written against (main at 3729ad3).
"""

from __future__ import annotations

import html
import re
import time

import pytest
import requests
from sqlalchemy import select

from tests.scripted import Answer, Scripted
from tests.thirdparty.apps import add_connection, custodian, storage, third_party, wait
from tests.thirdparty.browsing import PASSWORD, Person
from tests.thirdparty.test_browser import CHROMIUM, DRIVER
from tests.thirdparty.test_dashboard import browser
from thirdparty_app import db as tp
from thirdparty_app.accounts import create_account

__all__ = ["browser", "storage"]
OPERATOR = "staff@example.com"


@pytest.fixture
def served(tmp_path, storage):
    """The app (its custodian profile ``remote`` answers 404 to everything) with an operator."""
    with (
        Scripted(custodian(lambda seen: Answer(404))) as remote,
        third_party(tmp_path, storage, remote.url) as app,
    ):
        with app.app.app_context():
            app.query(lambda s: create_account(OPERATOR, PASSWORD, "Support", role="operator"))
        yield app


def text_of(page: str) -> str:
    """What a person reads: the tags gone, the entities read, the spaces folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def rows_of(page: str, table: str) -> list[str]:
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body.split("<tbody>", 1)[1], re.S)


def usage_point(served, conn_id: int, title: str, kind: int | None) -> int:
    def add(s):
        up = tp.UsagePoint(
            connection_id=conn_id,
            href=f"{served.resource}/Subscription/1/UsagePoint/{conn_id}{kind}",
            kind=kind,
            title=title,
        )
        s.add(up)
        s.commit()
        return up.id

    return served.query(add)


def with_values(served, conn_id: int, **values) -> None:
    def change(s):
        s.execute(
            tp.Connection.__table__.update().where(tp.Connection.id == conn_id).values(**values)
        )
        s.commit()

    served.query(change)


# --------------------------------------------------------------------------- operator's customers


def test_the_customers_list_links_each_customers_pages_in_words(served):
    """MEDIUM. The rows had no link (an operator could not open a customer's usage points or
    authorization from the list) and showed the codes as stored: ``active``, ``failed``, the
    profile's name, no service kind."""
    t = served.url
    customer = Person.sign_up(t, "dana@example.com", name="Dana Customer")
    conn = add_connection(served, customer.email)
    with_values(served, conn, profile="pelm", label="pelm-user-7", customer_name="DANA CUSTOMER")
    house = usage_point(served, conn, "Dana's house", 0)
    gas = usage_point(served, conn, "", 1)
    failed = add_connection(served, customer.email)
    with_values(served, failed, status="failed", reason="provider HTTP 500: boom")
    staff = Person.sign_in(t, OPERATOR)
    page = staff.get(f"{t}/operator/customers", timeout=30).text
    rows = {
        int(re.search(r'data-connection="(\d+)"', r).group(1)): r
        for r in rows_of(page, "customers")
    }

    active = rows[conn]
    assert f'href="/usage-points/{house}"' in active and f'href="/usage-points/{gas}"' in active
    assert f'href="/connections#connection-{conn}"' in active
    words = text_of(active)
    assert "Dana's house" in words and "Gas, usage point" in words  # usage_point_name
    assert "Pelm" in words and "pelm " not in words  # the source's title, not its slug
    assert "electricity, gas" in words  # the services in words
    assert "Active" in words and " active" not in words
    assert "Failed" in text_of(rows[failed]) and " failed" not in text_of(rows[failed])
    # the state filter offers the states as the customer pages name them
    assert '<option value="waiting">Waiting for data</option>' in page

    # the links open the customer's pages for the operator
    opened = staff.get(f"{t}/usage-points/{house}", timeout=30)
    assert opened.status_code == 200 and "Dana's house" in text_of(opened.text)
    connections = staff.get(f"{t}/connections", timeout=30).text
    assert f'id="connection-{conn}"' in connections and f'id="connection-{failed}"' in connections


def test_searching_for_percent_or_underscore_finds_only_who_has_one(served):
    """MEDIUM. The search was ``LIKE '%' || q || '%'`` unescaped: "%" or "_" matched every
    customer. They are searched as themselves (ESCAPE, on SQLite and PostgreSQL)."""
    t = served.url
    for email in ("plain@example.com", "under_score@example.com", "other@example.com"):
        Person.sign_up(t, email)
        add_connection(served, email)
    with_values(
        served,
        served.query(
            lambda s: s.scalar(
                select(tp.Connection.id)
                .join(tp.Account)
                .where(tp.Account.email == "other@example.com")
            )
        ),
        customer_name="100% Green Ltd",
    )
    staff = Person.sign_in(t, OPERATOR)

    def found(q: str) -> set[str]:
        page = staff.get(f"{t}/operator/customers", params={"q": q}, timeout=30).text
        if "No customer matches" in page:
            return set()
        return set(re.findall(r"[\w.%]+@example\.com", text_of(page.split('id="customers"', 1)[1])))

    assert found("_") == {"under_score@example.com"}
    assert found("%") == {"other@example.com"}
    assert found("0% g") == {"other@example.com"}
    assert found("r_s") == {"under_score@example.com"}
    assert found("/") == set()  # the escape character is searched as itself too
    assert found("plain") == {"plain@example.com"}
    assert found("a%e") == set()


# --------------------------------------------------------------------------- a connection's reason

#: what the custodian answers the subscription: a JSON body
REFUSAL = b'{"error": "invalid_token", "error_description": "token 7f3a revoked (row 12)"}'


def test_a_connections_reason_is_a_sentence_for_the_customer_and_the_detail_for_operators(
    tmp_path, storage, caplog
):
    """The Authorizations page showed the source's raw text as a failed connection's reason (a
    JSON body, an exception's message), and as a failed download's. The customer reads what
    happened and what to do; the raw detail stays in the log and on the operator's page."""

    down = {"subscription": False}  # the subscription refused (403), then not answered (503)

    def answer(seen):
        mine = "/Batch/Subscription/1?" in seen.path or seen.path.endswith("/Batch/Subscription/1")
        if mine and not down["subscription"]:
            return Answer(403, {"Content-Type": "application/json"}, REFUSAL)
        return Answer(503, {"Content-Type": "text/plain"}, b"KeyError: 'usage_point'")

    with (
        Scripted(custodian(answer)) as remote,
        third_party(tmp_path, storage, remote.url, JOB_RETRIES=1) as app,
    ):
        t = app.url
        customer = Person.sign_up(t)
        conn = add_connection(app, customer.email)
        with app.app.app_context():
            from thirdparty_app import jobs

            create_account(OPERATOR, PASSWORD, role="operator")
            jobs.enqueue("sync", conn)
        staff = Person.sign_in(t, OPERATOR)

        def seen_by(person) -> tuple[str, str, str]:
            """The connection's row, the whole page and the status JSON's reasons, as read."""
            page = person.get(f"{t}/connections", timeout=30).text
            row = next(r for r in rows_of(page, "connections") if f'"{conn}"' in r)
            status = person.get(f"{t}/connections/status", timeout=30).json()
            return text_of(row), text_of(page), " ".join(c["reason"] for c in status)

        # the subscription refused (403, a JSON body): authorize again
        wait(lambda: app.query(lambda s: s.get(tp.Connection, conn).status) == "failed")
        detail = app.query(lambda s: s.get(tp.Connection, conn).reason)
        assert "invalid_token: token 7f3a revoked" in detail  # the source's text, recorded
        row, page, status = seen_by(customer)
        refused = (
            "remote did not give your data. Press Retry; if it fails again, authorize again (the "
            "authorization may have ended, or its password changed)."
        )
        assert "Failed" in row and refused in row and status == refused
        for raw in ("invalid_token", "7f3a", "HTTP 403", "{"):
            assert raw not in page and raw not in status, raw
        row, _, _ = seen_by(staff)
        assert refused in row and detail in row  # the operator reads both

        # a download that failed twice (503): its own row, in words (the connection is left as
        # it was: a notification is anyone's word)
        note_uri = f"{app.resource}/Batch/Subscription/1/UsagePoint/9?correlationID=1"
        assert app.notify(note_uri).status_code == 200
        wait(lambda: app.query(lambda s: s.scalar(select(tp.Notification.status))) == "failed")
        failed = app.query(lambda s: s.scalar(select(tp.Notification.error)))
        assert "HTTP 503" in failed and "(gave up after 2 attempts)" in failed
        assert app.query(lambda s: s.get(tp.Connection, conn).reason) == detail
        row, page, status = seen_by(customer)
        assert refused in row and status == refused
        assert "The download did not succeed: press Retry to try again." in page
        for raw in ("HTTP 503", "KeyError", "gave up"):
            assert raw not in page and raw not in status, raw
        row, page, _ = seen_by(staff)
        assert "HTTP 503" in page.split("Downloads that failed", 1)[1]

        # the customer's Retry: the custodian does not answer (503, twice): Retry later
        down["subscription"] = True
        assert customer.post(f"{t}/connections/{conn}/retry", timeout=30).status_code == 200
        wait(lambda: app.query(lambda s: s.get(tp.Connection, conn).status) == "failed")
        detail = app.query(lambda s: s.get(tp.Connection, conn).reason)
        assert "HTTP 503" in detail and "(gave up after 2 attempts)" in detail
        row, page, status = seen_by(customer)
        unreachable = "remote could not be reached, even after several attempts. Press Retry."
        assert unreachable in row and status == unreachable
        for raw in ("HTTP 503", "KeyError", "gave up"):
            assert raw not in row and raw not in status, raw
        row, _, _ = seen_by(staff)
        assert unreachable in row and detail in row
        assert "token 7f3a revoked" in caplog.text and "HTTP 503" in caplog.text


# --------------------------------------------------------------------------- uploads


def test_an_empty_file_is_refused_at_the_upload_form_and_nothing_is_stored(served, tmp_path):
    """An upload of 0 bytes: the form again, saying the file is empty; no upload, no source,
    no file kept. (Already so on main at 3729ad3, over HTTP and in Chromium: this pins it.)"""
    t = served.url
    customer = Person.sign_up(t)
    sent = customer.post(f"{t}/upload", files={"file": ("empty.xml", b"")}, timeout=30)
    assert sent.status_code == 400 and sent.url == f"{t}/upload"
    assert "empty.xml is empty." in text_of(sent.text) and 'id="upload-form"' in sent.text
    assert served.query(lambda s: s.scalars(select(tp.Upload)).all()) == []
    assert served.query(lambda s: s.scalars(select(tp.Connection)).all()) == []
    kept = [p for p in (tmp_path / "documents").rglob("*") if p.is_file()]
    assert kept == []


def test_a_file_without_data_is_refused_and_nothing_is_kept(served, tmp_path):
    """A Green Button file with no entry (a Download My Data for days without data) was "0
    readings in 0 usage point(s)" on a page of success, and an empty source stayed on the
    customer's Authorizations. It is refused, and nothing of it is kept."""
    t = served.url
    customer = Person.sign_up(t)
    feed = (
        b'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<id>urn:uuid:0</id><title>Green Button Download</title>"
        b"<updated>2026-03-01T00:00:00Z</updated></feed>"
    )
    page = customer.upload("march.xml", feed)
    words = text_of(page.text)
    assert "march.xml was not ingested: march.xml holds no energy data: nothing was kept" in words
    assert 'id="upload-result"' not in page.text
    assert served.query(lambda s: s.scalars(select(tp.Connection)).all()) == []
    assert served.query(lambda s: s.scalars(select(tp.Document)).all()) == []
    kept = [p for p in (tmp_path / "documents").rglob("*") if p.is_file()]
    assert kept == []
    assert "No authorization yet" in customer.get(f"{t}/connections", timeout=30).text


# --------------------------------------------------------------------------- error pages


def error_page(answer, status: int, heading: str) -> str:
    """An error answer to a browser: a page in the app's layout with a heading in words, what
    to do next and a link home; no werkzeug page, no internals. Its text."""
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    assert answer.headers["Content-Type"].startswith("text/html")
    page = answer.text
    assert '<header class="site">' in page and "/static/style.css" in page
    assert f"<h1>{heading}</h1>" in page
    assert '<a href="/">Go to the home page</a>' in page
    for internal in ("Werkzeug", "Traceback", "requested URL", "server encountered"):
        assert internal not in page
    return text_of(page.split('<main id="main">', 1)[1])


def test_errors_are_pages_of_the_app_for_people_and_problems_for_machines(served):
    """Error answers to browsers were werkzeug's bare pages (400, 403, 404, 405); the JSON API
    and the webhooks keep their problem answers."""
    t = served.url
    customer = Person.sign_up(t, "erin@example.com")
    other = Person.sign_up(t, "other@example.com")
    conn = add_connection(served, other.email)
    theirs = usage_point(served, conn, "Their house", 0)

    nowhere = error_page(Person(t).get(f"{t}/no-such-page", timeout=30), 404, "Page not found")
    assert "home page" in nowhere
    words = error_page(
        customer.get(f"{t}/usage-points/{theirs}", timeout=30), 404, "Page not found"
    )
    assert f"no usage point {theirs}" not in words and "Their house" not in words

    wrong = customer.get(f"{t}/logout", timeout=30)
    error_page(wrong, 405, "This page cannot be opened that way")
    assert "POST" in wrong.headers["Allow"]

    unsigned = requests.post(
        f"{t}/account/keys", data={"name": "x"}, cookies=customer.cookies, timeout=30
    )
    words = error_page(unsigned, 400, "This request could not be understood")
    assert "This form was not accepted" in words and "Reload the page" in words
    assert "CSRF" not in words

    staff = Person.sign_in(t, OPERATOR)
    refused = staff.post(
        f"{t}/connections/{conn}/disconnect", data={"delete_data": "yes"}, timeout=30
    )
    assert "Only the customer can do this." in error_page(refused, 403, "You cannot do this")

    # machines: the JSON API, the webhooks, a page's script asking for JSON
    for answer, status in (
        (customer.get(f"{t}/api/no-such-thing", timeout=30), 404),
        (customer.get(f"{t}/api/usage-points/{theirs}/readings", timeout=30), 404),
        (requests.get(f"{t}/espi/1_1/Notification", timeout=30), 405),
        (requests.post(f"{t}/espi/1_1/Notification", data=b"<nope", timeout=30), 400),
        (requests.get(f"{t}/providers/wattzon/notify", timeout=30), 405),
        (
            customer.get(
                f"{t}/uploads/999999/status", headers={"Accept": "application/json"}, timeout=30
            ),
            404,
        ),
    ):
        assert answer.status_code == status, (answer.url, answer.status_code)
        assert answer.headers["Content-Type"] == "application/json", answer.url
        assert answer.json()["error"], answer.url


def test_a_file_too_large_and_an_error_of_ours_are_pages_too(tmp_path, storage, caplog):
    """413 (an upload over MAX_CONTENT_LENGTH) and 500 (an error of ours): pages that say what
    to do, the exception's text in the log only."""

    def fails():
        raise RuntimeError("secret internals: /srv/app/thing.py line 12")

    with third_party(
        tmp_path, storage, "http://127.0.0.1:9", MAX_CONTENT_LENGTH=8192, PROPAGATE_EXCEPTIONS=False
    ) as app:
        app.app.add_url_rule("/fails", "fails", fails)  # a page whose code raises
        t = app.url
        customer = Person.sign_up(t)
        big = customer.post(f"{t}/upload", files={"file": ("big.xml", b"x" * 20000)}, timeout=30)
        assert "at most 8 KB" in error_page(big, 413, "The file is too large")
        failed = customer.get(f"{t}/fails", timeout=30)
        words = error_page(failed, 500, "Something went wrong on our side")
        assert "secret internals" not in failed.text and "Try again" in words
        assert "secret internals" in caplog.text  # for us, in the log
        api = customer.get(f"{t}/api/usage-points", timeout=30)
        assert api.status_code == 200  # the app still answers


# --------------------------------------------------------------------------- the custodian's pages


@pytest.fixture
def custodian_site(tmp_path):
    """The data custodian (the sandbox), migrated, on a loopback port."""
    from datacustodian import create_app as create_custodian
    from datacustodian.migrate import upgrade
    from tests.thirdparty.test_flow import serve

    app = create_custodian({
        "TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/dc.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/dcq.sqlite", "RATE_LIMIT": "",
    })  # fmt: skip
    with app.app_context():
        upgrade(app)
    server, url = serve(app)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["appkit.engine"].dispose()


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")
def test_the_custodians_pages_have_a_favicon(custodian_site, browser):
    """LOW. The custodian's pages named no icon: the browser asked for /favicon.ico, a 404, an
    error in the console on every page."""
    browser.get_log("browser")  # what earlier pages left
    browser.get(custodian_site + "/")
    assert "sandbox" in browser.title.lower()
    time.sleep(1)  # the icon is asked for once the page is shown
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    icon = browser.execute_script(
        "const l = document.querySelector('link[rel~=icon]'); return l && l.href"
    )
    got = requests.get(icon, timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("image/svg+xml")


def test_a_token_exchange_that_fails_says_so_without_the_custodians_answer(tmp_path, storage):
    """The custodian's token endpoint fails (500, its own text in the body): the customer reads
    that the connection was not completed and to try later, not the custodian's answer (it is
    in the log); the connection is failed, ready to be authorized again."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    def answer(seen):
        path = urlsplit(seen.path)
        if path.path == "/authorize":
            asked = {k: v[0] for k, v in parse_qs(path.query).items()}
            back = f"{asked['redirect_uri']}?{urlencode({'code': 'c', 'state': asked['state']})}"
            return Answer(302, {"Location": back})
        if path.path == "/token":
            return Answer(500, {"Content-Type": "text/plain"}, b"Traceback: KeyError 'tenant-42'")
        return Answer(404)

    with Scripted(answer) as remote, third_party(tmp_path, storage, remote.url) as app:
        customer = Person.sign_up(app.url)
        page = customer.connect("remote")
        assert page.status_code == 400 and "/callback/remote" in page.url
        read = text_of(page.text)
        assert "did not complete the connection" in read and "try again later" in read
        for raw in ("Traceback", "tenant-42", "HTTP 500"):
            assert raw not in page.text, raw
        assert app.query(lambda s: s.scalar(select(tp.Connection.status))) == "failed"
