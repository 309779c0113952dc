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
