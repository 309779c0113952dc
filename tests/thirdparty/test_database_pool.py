"""The pool's disconnect handling: a connection that sat idle is pinged and replaced when dead;
one used moments ago is not pinged (a round trip on every request was a quarter of the
Notification webhook's waiting)."""

from __future__ import annotations

import psycopg
from sqlalchemy import create_engine

from appkit import database
from tests.conftest import fresh_postgres


def test_only_connections_idle_for_a_while_are_pinged_and_dead_ones_replaced(monkeypatch):
    pings = []
    with fresh_postgres() as url:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        real_ping = engine.dialect.do_ping
        monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(1) or real_ping(c))
        database.ping_when_idle(engine)
        for _ in range(3):  # in use moments ago, again and again: no ping
            with engine.connect() as conn:
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        assert pings == []
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))  # a server restart, say
        monkeypatch.setattr(database, "PING_AFTER", 0.0)  # now it has been idle long enough
        with engine.connect() as conn:  # pinged, found dead, replaced: the caller sees nothing
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
        assert pings  # it was pinged (and so was the new one: idle "longer" than 0 s)
        engine.dispose()


def test_no_statement_is_prepared_on_the_server():
    """A prepared statement's generic plan is made once and kept: made while the notification
    table of a new install was empty, the webhook's look-up by URI went on scanning the whole
    table as it grew (2.8 ms a look-up at 20,000 rows instead of 0.2). The apps' engines
    prepare nothing (psycopg would after five runs of one statement)."""
    from flask import Flask

    with fresh_postgres() as url:
        app = Flask(__name__)
        app.config["DATABASE_URL"] = url
        database.init_app(app)
        engine = app.extensions["appkit.engine"]
        with engine.connect() as conn:
            for _ in range(10):
                conn.exec_driver_sql("SELECT count(*) FROM pg_class WHERE relname = %(n)s",
                                     {"n": "x"})  # fmt: skip
            prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements")
            assert prepared.scalar() == 0
        engine.dispose()
