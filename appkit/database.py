"""One SQLAlchemy engine per app, one session per app context (request, CLI command, job)."""

from __future__ import annotations

import os
import time
from typing import Any, cast

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g
from sqlalchemy import create_engine, event, exc, make_url
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

#: A pooled connection idle longer than this is pinged before it is used again.
PING_AFTER = 10.0


def init_app(app: Flask) -> None:
    url = make_url(app.config["DATABASE_URL"])
    # PostgreSQL: no server-side prepared statements (psycopg prepares a statement run five
    # times). A prepared statement's generic plan, made while a table was small, is kept as
    # the table grows: the webhook's look-up by URI seq-scanned a new install's notification
    # table, 2.8 ms at 20,000 rows instead of 0.3 (until an ANALYZE). PgBouncer's transaction
    # pooling needs them off too.
    unprepared = {"prepare_threshold": None} if url.get_driver_name() == "psycopg" else {}
    engine = create_engine(url, connect_args=unprepared)
    ping_when_idle(engine)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    app.extensions["appkit.engine"] = engine
    app.extensions["appkit.sessions"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)


def ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat in the pool: one idle more
    than :data:`PING_AFTER` seconds (where a server restart, a proxy's or firewall's idle
    timeout strike) is pinged when it is checked out, and a dead one replaced (SQLAlchemy
    retries the checkout). One in use moments ago is not: ``pool_pre_ping`` cost every
    request a round trip, a quarter of the Notification webhook's waiting. Should such a
    connection still have died, its error is seen as a disconnect and the pool refreshed."""

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in", 0.0) <= PING_AFTER:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as err:  # any failure: the connection is not to be used
            raise exc.DisconnectionError(f"stale pooled connection: {err}") from err

    def fresh(_dbapi_connection: Any, record: Any) -> None:  # "connect", then "checkin"
        record.info["checked_in"] = time.monotonic()

    event.listen(engine, "connect", fresh)
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", fresh)


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite shared by a web app and a worker: WAL lets readers go on while a long ingestion
    writes, and writers wait for each other instead of failing at once. ``synchronous=NORMAL``
    is WAL's recommended setting: no fsync per commit, only at checkpoints (a power cut may
    lose the last commits, never corrupt the file; a crash of the app loses nothing). A 64 MiB
    page cache (the default is 2 MiB) keeps the readings' b-tree pages being written in
    memory; temporary tables and sorts stay in memory."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (its result is a CursorResult)."""
    return cast("CursorResult[Any]", result).rowcount


def engine() -> Engine:
    return current_app.extensions["appkit.engine"]  # type: ignore[no-any-return]


def session() -> Session:
    """The app context's session, opened on first use and closed with the context."""
    if "appkit_session" not in g:
        g.appkit_session = current_app.extensions["appkit.sessions"]()
    return g.appkit_session  # type: ignore[no-any-return]


def close_session(exc: BaseException | None) -> None:
    s: Any = g.pop("appkit_session", None)
    if s is not None:
        if exc is not None:
            s.rollback()
        s.close()


def upgrade(app: Flask, migrations: str) -> None:
    """Bring the app's database to the newest schema of the Alembic folder ``migrations``."""
    cfg = Config()
    cfg.set_main_option("script_location", migrations)
    cfg.set_main_option("sqlalchemy.url", app.config["DATABASE_URL"].replace("%", "%%"))
    command.upgrade(cfg, "head")


def default_url(app: Flask, name: str) -> str:
    """``DATABASE_URL`` from the config or the environment, else a SQLite file in the instance
    folder."""
    return (
        app.config.get("DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or "sqlite:///" + os.path.join(app.instance_path, f"{name}.sqlite")
    )


def run_migrations(metadata: Any) -> None:
    """The body of an app's Alembic ``env.py``: run its migrations online or offline."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    eng = create_engine(str(url))
    with eng.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    eng.dispose()
