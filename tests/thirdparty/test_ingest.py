"""Ingestion, on SQLite and PostgreSQL: a missing value stays missing (NULL, null, empty, left
out of sums); two readings at one start are both kept and reported; bills are rows the pages,
the API and the Green Button export read; re-delivery proves what is unchanged and skips it;
a database of the previous schema is upgraded (bills read once from their XML)."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import threading

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

import espi
from appkit import database
from tests.conftest import fresh_postgres
from tests.thirdparty.browsing import PASSWORD, Person
from thirdparty_app import MIGRATIONS, create_app
from thirdparty_app import db as tp
from thirdparty_app.accounts import create_account, new_api_key
from thirdparty_app.documents import keeping, record
from thirdparty_app.ingest import ingest

BASE = "https://utility.example/espi/1_1/resource"
UP = f"{BASE}/Subscription/9/UsagePoint/1"
MR = f"{UP}/MeterReading/1"
DAY = 1_700_006_400  # 2023-11-15T00:00:00Z
HOUR = 3600


def entry(href, content, related=()):
    links = "".join(f'<link rel="related" href="{h}"/>' for h in related)
    return (
        f'<entry><id>urn:uuid:{abs(hash(href)):032x}</id><link rel="self" href="{href}"/>{links}'
        f"<content>{content}</content></entry>"
    )


def reading(start, value, duration=HOUR, cost=None):
    return (
        "<IntervalReading>"
        + (f"<cost>{cost}</cost>" if cost is not None else "")
        + f"<timePeriod><duration>{duration}</duration><start>{start}</start></timePeriod>"
        + (f"<value>{value}</value>" if value is not None else "")
        + "</IntervalReading>"
    )


def document(blocks, bills=()):
    """A Green Button document of one usage point and meter reading: ``blocks`` are lists of
    (start, value) readings (value None: no <value>); ``bills`` UsageSummary XML bodies."""
    e = 'xmlns="http://naesb.org/espi"'
    parts = [
        entry(UP, f"<UsagePoint {e}><ServiceCategory><kind>0</kind></ServiceCategory></UsagePoint>",
              [f"{UP}/MeterReading", f"{UP}/UsageSummary"]),
        entry(f"{BASE}/ReadingType/9", f"<ReadingType {e}><currency>840</currency><intervalLength>3600</intervalLength>"
              "<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>72</uom></ReadingType>"),
        entry(MR, f"<MeterReading {e}/>", [f"{MR}/IntervalBlock", f"{BASE}/ReadingType/9"]),
    ]  # fmt: skip
    for n, block in enumerate(blocks):
        first = min(start for start, _ in block)
        body = "".join(reading(start, value) for start, value in block)
        parts.append(entry(f"{MR}/IntervalBlock/{n}", f"<IntervalBlock {e}><interval><duration>86400</duration>"
                           f"<start>{first}</start></interval>{body}</IntervalBlock>"))  # fmt: skip
    for n, bill in enumerate(bills):
        parts.append(entry(f"{UP}/UsageSummary/{n}", f"<UsageSummary {e}>{bill}</UsageSummary>"))
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:uuid:1</id><title>t</title>'
        + "".join(parts)
        + "</feed>"
    ).encode()


def day(values, first=DAY):
    return [(first + n * HOUR, v) for n, v in enumerate(values)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ingest")
    with contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(fresh_postgres())
            if request.param == "postgresql"
            else f"sqlite:///{folder}/tp.sqlite"
        )
        third = create_app({"TESTING": True, "DATABASE_URL": url, "DOCUMENTS": str(folder / "docs"),
                            "QUEUE_URL": f"sqlite:///{folder}/q.sqlite"})  # fmt: skip
        with third.app_context():
            database.upgrade(third, MIGRATIONS)
        server = make_server("127.0.0.1", 0, third, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        third.config["BASE"] = f"http://127.0.0.1:{server.server_port}"
        yield third
        server.shutdown()
        server.server_close()
        third.extensions["appkit.engine"].dispose()


_n = iter(range(1, 1000))


@pytest.fixture
def customer(app):
    """A new account with an upload connection and an API key: (connection id, key, email)."""
    with app.app_context():
        email = f"ingest{next(_n)}@example.com"
        owner = create_account(email, PASSWORD)
        conn = tp.Connection(account_id=owner.id, profile="upload", status="active")
        s = database.session()
        s.add(conn)
        s.commit()
        key = new_api_key(owner, "test")
        out = conn.id, key, email
        database.close_session(None)
        return out


def deliver(app, conn_id, body):
    """Keep and ingest a document for the connection; the document row's figures."""
    with app.app_context():
        s = database.session()
        with keeping() as out:
            out.write(body)
        doc = record(
            "upload", f"upload:{out.kept.sha256[:16]}", s.get(tp.Connection, conn_id), out.kept
        )
        ingest(s, doc)
        found = (doc.id, doc.readings, doc.written, doc.duplicates, doc.notes)
        database.close_session(None)
        return found


def replay(app, doc_id, full=False):
    with app.app_context():
        s = database.session()
        doc = s.get(tp.Document, doc_id)
        ingest(s, doc, full=full)
        found = (doc.readings, doc.written, doc.notes)
        database.close_session(None)
        return found


def stored(app, conn_id):
    with app.app_context():
        rows = database.session().execute(
            select(tp.Reading.start, tp.Reading.seq, tp.Reading.value)
            .join(tp.MeterReading).join(tp.UsagePoint)
            .where(tp.UsagePoint.connection_id == conn_id)
            .order_by(tp.Reading.start, tp.Reading.seq)
        ).all()  # fmt: skip
        database.close_session(None)
        return [tuple(r) for r in rows]


def usage_point_id(app, conn_id):
    with app.app_context():
        found = database.session().scalar(
            select(tp.UsagePoint.id).where(tp.UsagePoint.connection_id == conn_id)
        )
        database.close_session(None)
        return found


def api(app, key, path, **params):
    r = requests.get(f"{app.config['BASE']}{path}", params=params, timeout=30,
                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert r.status_code == 200, r.text[:300]
    return r


def test_a_reading_without_a_value_stays_missing(app, customer):
    conn, key, _ = customer
    deliver(app, conn, document([day([100, None, 300] + [10] * 21)]))
    assert stored(app, conn)[:3] == [(DAY, 0, 100), (DAY + HOUR, 0, None), (DAY + 2 * HOUR, 0, 300)]
    up = usage_point_id(app, conn)
    raw = api(app, key, f"/api/usage-points/{up}/readings").json()["series"][0]["points"]
    assert [p["value"] for p in raw[:3]] == [100.0, None, 300.0]
    daily = api(app, key, f"/api/usage-points/{up}/readings", aggregate="day").json()
    assert [p["value"] for p in daily["series"][0]["points"]] == [100 + 300 + 210.0]
    assert daily["series"][0]["points"][0]["duration"] == 24 * HOUR
    exported = api(app, key, f"/usage-points/{up}/export", format="csv").text
    assert [r["value"] for r in csv.DictReader(io.StringIO(exported))][:3] == ["100", "", "300"]
    xml = api(app, key, f"/usage-points/{up}/export", format="xml").content
    again = [r.value for r in espi.parse(xml).readings()]
    assert again[:3] == [100, None, 300]


def test_two_readings_at_one_start_are_both_kept_and_reported(app, customer):
    """A DST fall-back hour written twice (no hour missing to repair it into): both are kept,
    counted on the document and named in its notes, and the page says so; an exact copy is
    one reading."""
    conn, key, email = customer
    values = [5] * 24
    block = [*day(values), (DAY + 2 * HOUR, 7), (DAY + 3 * HOUR, 5)]  # one differs, one a copy
    doc_id, count, written, duplicates, notes = deliver(app, conn, document([block]))
    assert (count, written, duplicates) == (25, 25, 1)
    assert f"{MR} at 2023-11-15T02:00:00Z" in notes and "the reader: duplicate-start" in notes
    rows = stored(app, conn)
    assert len(rows) == 25 and (DAY + 2 * HOUR, 1, 7) in rows and (DAY + 2 * HOUR, 0, 5) in rows
    up = usage_point_id(app, conn)
    daily = api(app, key, f"/api/usage-points/{up}/readings", aggregate="day").json()
    assert daily["series"][0]["points"][0]["value"] == 5 * 24 + 7
    assert replay(app, doc_id, full=True)[1] == 0 and stored(app, conn) == rows
    page = Person.sign_in(app.config["BASE"], email).get(
        f"{app.config['BASE']}/usage-points/{up}", timeout=30
    )
    assert "1 reading(s) share their start with another reading" in page.text
    # the custodian corrects its file: the second reading was the next day's first hour
    fixed = [day(values), day([7], DAY + 86400)]
    deliver(app, conn, document(fixed))
    assert stored(app, conn) == [(DAY + n * HOUR, 0, 5) for n in range(24)] + [(DAY + 86400, 0, 7)]


def test_blocks_of_one_document_that_overlap(app, customer):
    conn, _, _ = customer
    first = day([1] * 24)
    second = [(DAY + 23 * HOUR, 1), (DAY + 23 * HOUR, 2), *day([3] * 2, DAY + 86400)]
    _, count, _, duplicates, _ = deliver(app, conn, document([first, second]))
    assert (count, duplicates) == (27, 1)  # the copy of hour 23 is one reading; 2 is kept beside
    rows = stored(app, conn)
    assert (DAY + 23 * HOUR, 0, 1) in rows and (DAY + 23 * HOUR, 1, 2) in rows and len(rows) == 27


SUMMARY = (
    "<billingPeriod><duration>2592000</duration><start>{start}</start></billingPeriod>"
    "<billLastPeriod>{amount}</billLastPeriod>"
    "<costAdditionalDetailLastPeriod><amount>1235000</amount><note>Energy charge</note>"
    "<itemKind>1</itemKind></costAdditionalDetailLastPeriod>"
    "<costAdditionalDetailLastPeriod><amount>250000</amount><note>Delivery</note>"
    "<itemKind>2</itemKind></costAdditionalDetailLastPeriod>"
    "<currency>840</currency><overallConsumptionLastPeriod><powerOfTenMultiplier>3"
    "</powerOfTenMultiplier><uom>72</uom><value>412</value></overallConsumptionLastPeriod>"
    "<statusTimeStamp>1700000000</statusTimeStamp>"
)


def test_bills_are_rows_the_page_the_api_and_the_export_read(app, customer):
    conn, key, email = customer
    bills = [SUMMARY.format(start=DAY - 2592000, amount=1485000),
             SUMMARY.format(start=DAY, amount=999)]  # fmt: skip
    deliver(app, conn, document([day([1] * 24)], bills))
    deliver(
        app, conn, document([day([1] * 24)], [bills[0], SUMMARY.format(start=DAY, amount=1485000)])
    )
    with app.app_context():
        rows = database.session().scalars(select(tp.Bill).join(tp.UsagePoint)
                                          .where(tp.UsagePoint.connection_id == conn)
                                          .order_by(tp.Bill.start)).all()  # fmt: skip
        assert [(b.amount, b.consumption, b.consumption_power_of_ten) for b in rows] == [
            (1485000, 412, 3)
        ] * 2
        assert [(li.position, li.note, li.amount, li.kind) for li in rows[1].line_items] == [
            (0, "Energy charge", 1235000, 1), (1, "Delivery", 250000, 2)]  # fmt: skip
        database.close_session(None)
    up = usage_point_id(app, conn)
    summaries = api(app, key, f"/api/usage-points/{up}/summaries").json()
    assert [s["amount"] for s in summaries] == [14.85, 14.85]
    assert summaries[0]["line_items"] == [
        {"note": "Energy charge", "amount": 12.35, "kind": "Energy Generation Fee"},
        {"note": "Delivery", "amount": 2.5, "kind": "Energy Delivery Fee"},
    ]
    assert (
        api(app, key, f"/api/usage-points/{up}/summaries", start=str(DAY)).json()[0]["start"]
        == "2023-11-15T00:00:00Z"
    )
    page = (
        Person.sign_in(app.config["BASE"], email)
        .get(f"{app.config['BASE']}/usage-points/{up}", timeout=30)
        .text
    )
    # the period in local days (its end excluded), the amounts in dollars, each charge as text
    assert "Nov 15, 2023 – Dec 14, 2023" in page and "$14.85" in page and "412 kWh" in page
    assert re.search(
        r"<li><span>Energy charge</span><span class=\"num\">\$12\.35</span></li>"
        r"<li><span>Delivery</span><span class=\"num\">\$2\.50</span></li>",
        page,
    )
    xml = api(app, key, f"/usage-points/{up}/export", format="xml").content
    assert espi.validate(xml) == []
    summary = espi.parse(xml).usage_summaries[-1]
    assert summary.bill_last_period == 1485000
    assert [li.note for li in summary.cost_additional_detail_last_period] == [
        "Energy charge",
        "Delivery",
    ]
    assert summary.overall_consumption_last_period.value == 412


def test_re_delivery_proves_what_is_unchanged(app, customer):
    conn, _, _ = customer
    a = document([day([n] * 24, DAY + n * 86400) for n in range(1, 6)])
    doc_a, count, written, _, _ = deliver(app, conn, a)
    assert count == written == 120
    first = stored(app, conn)
    # the same document again: proven unchanged by its hash, not read
    readings, written, notes = replay(app, doc_a)
    assert (readings, written) == (120, 0) and "not read again" in notes
    again = deliver(app, conn, a)
    assert again[1:3] == (120, 0) and "not read again" in again[4]
    # read in full anyway: every block's digest matches, nothing is written
    readings, written, notes = replay(app, doc_a, full=True)
    assert (readings, written) == (120, 0) and "5 block(s): 5 unchanged" in notes
    # one day changed: only its block is written
    b = document([day([n if n != 3 else 9] * 24, DAY + n * 86400) for n in range(1, 6)])
    _, _, written, _, notes = deliver(app, conn, b)
    assert written == 24 and "5 block(s): 4 unchanged" in notes
    # the first document again: its stamp is gone (b wrote after it), so it is read, and its
    # day 3 block (changed by b) is written back
    readings, written, notes = replay(app, doc_a)
    assert (readings, written) == (120, 24) and stored(app, conn) == first


def fill(c, name, **values):
    """Insert a row of a reflected table: ``values``, and something in every other required
    column (this test does not depend on the earlier migrations' exact columns)."""
    import sqlalchemy as sa

    table = sa.Table(name, sa.MetaData(), autoload_with=c)
    for col in table.columns:
        if col.name not in values and not col.nullable and col.server_default is None:
            values[col.name] = 0 if col.type.python_type is int else ""
    c.execute(table.insert().values(**values))


def test_upgrading_a_database_of_the_previous_schema(tmp_path):
    """0004 -> 0006: readings keep their values (seq 0), a bill's XML becomes its rows."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    for url in (f"sqlite:///{tmp_path}/old.sqlite", None):
        with contextlib.ExitStack() as stack:
            url = url or stack.enter_context(fresh_postgres())
            cfg = Config()
            cfg.set_main_option("script_location", MIGRATIONS)
            cfg.set_main_option("sqlalchemy.url", url)
            command.upgrade(cfg, "0004")
            engine = sa.create_engine(url)
            summary = espi.parse(
                document([], [SUMMARY.format(start=DAY, amount=1485000)])
            ).usage_summaries[0]
            with engine.begin() as c:
                fill(c, "account", id=1, email="a@example.com")
                fill(c, "connection", id=1, account_id=1, profile="upload")
                c.execute(
                    sa.text(
                        "INSERT INTO usage_point (id, href, connection_id, title, zone) VALUES (1, 'u', 1, '', '')"
                    )
                )
                c.execute(
                    sa.text(
                        "INSERT INTO meter_reading (id, href, usage_point_id) VALUES (1, 'm', 1)"
                    )
                )
                c.execute(
                    sa.text(
                        "INSERT INTO reading (meter_reading_id, start, duration, value) VALUES (1, 10, 5, 7)"
                    )
                )
                c.execute(sa.text("INSERT INTO usage_summary (usage_point_id, start, duration, bill, xml)"
                                  " VALUES (1, :s, 2592000, 1485000, :x)"),
                          {"s": DAY, "x": espi.dumps(summary).decode()})  # fmt: skip
            command.upgrade(cfg, "head")
            with engine.connect() as c:
                assert c.execute(
                    sa.text("SELECT meter_reading_id, start, seq, value FROM reading")
                ).all() == [(1, 10, 0, 7)]
                assert c.execute(sa.text("SELECT usage_point_id, start, amount, consumption FROM bill")).all() == [
                    (1, DAY, 1485000, 412)]  # fmt: skip
                assert c.execute(sa.text("SELECT note FROM bill_line_item ORDER BY position")).scalars().all() == [
                    "Energy charge", "Delivery"]  # fmt: skip
            engine.dispose()


def test_migration_0008_moves_plan_estimates_off_the_utilitys_costs(tmp_path):
    """Before 0008 a rate plan's estimate was written over a reading's cost (the utility's):
    the estimates become their plan's rows, the readings they overwrote lose the estimate (the
    next delivery writes the utility's cost back: their block digests and stamps are gone)."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    for url in (f"sqlite:///{tmp_path}/old.sqlite", None):
        with contextlib.ExitStack() as stack:
            url = url or stack.enter_context(fresh_postgres())
            cfg = Config()
            cfg.set_main_option("script_location", MIGRATIONS)
            cfg.set_main_option("sqlalchemy.url", url)
            command.upgrade(cfg, "0006")
            engine = sa.create_engine(url)
            with engine.begin() as c:
                fill(c, "account", id=1, email="a@example.com")
                fill(c, "connection", id=1, account_id=1, profile="local")
                for up in (1, 2):
                    fill(c, "usage_point", id=up, href=f"u{up}", connection_id=1, document_id=7)
                    fill(c, "meter_reading", id=up, href=f"m{up}", usage_point_id=up)
                    # 1: priced (cost and TOU from the plan); 2: no plan, the utility's cost
                    fill(
                        c,
                        "reading",
                        meter_reading_id=up,
                        start=100,
                        duration=900,
                        value=5,
                        cost=5665,
                        tou=2 if up == 1 else None,
                    )
                    fill(
                        c,
                        "reading",
                        meter_reading_id=up,
                        start=1000,
                        duration=900,
                        value=5,
                        cost=None,
                    )
                    fill(
                        c,
                        "reading_block",
                        meter_reading_id=up,
                        start=0,
                        stop=2000,
                        readings=2,
                        digest=b"0" * 16,
                    )
                fill(c, "pricing", usage_point_id=1, provider="wattshift", home_id="h", rate_plan="PG&E TOU-C",
                     status="priced", reason="", priced=1, updated=5)  # fmt: skip
            command.upgrade(cfg, "head")
            with engine.connect() as c:

                def rows(sql):
                    return [tuple(r) for r in c.execute(sa.text(sql))]

                assert rows("SELECT id, usage_point_id, plan, name, home_id, status FROM rate_plan") == [
                    (1, 1, "", "PG&E TOU-C", "h", "priced")]  # fmt: skip
                assert rows("SELECT rate_plan_id, meter_reading_id, start, seq, cost, tou FROM plan_cost") == [
                    (1, 1, 100, 0, 5665, 2)]  # fmt: skip
                assert rows("SELECT meter_reading_id, start, cost, tou FROM reading ORDER BY 1, 2") == [
                    (1, 100, None, None), (1, 1000, None, None), (2, 100, 5665, None), (2, 1000, None, None)]  # fmt: skip
                assert rows("SELECT meter_reading_id FROM reading_block") == [(2,)]
                assert rows("SELECT id, document_id FROM usage_point ORDER BY id") == [
                    (1, None),
                    (2, 7),
                ]
            engine.dispose()
