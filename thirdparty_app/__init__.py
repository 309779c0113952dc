"""thirdparty_app: the third party's side of Green Button Connect My Data.

    flask --app thirdparty_app init-db
    flask --app thirdparty_app create-operator EMAIL   # the third party's staff
    flask --app thirdparty_app run            # connect customers, receive notifications
    flask --app thirdparty_app worker         # downloads and ingestion (the job queue)
    flask --app thirdparty_app sync           # ask for fresh data for every connection

Configuration: defaults below, then ``THIRDPARTY_*`` environment variables (Flask's prefixed
env: ``THIRDPARTY_SECRET_KEY``, ``THIRDPARTY_TOKEN_KEY``,
``THIRDPARTY_CUSTODIANS__local__client_id``) and ``DATABASE_URL``. Outside development and
tests it refuses to start without ``SECRET_KEY`` and ``TOKEN_KEY``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

import click
from cryptography.fernet import Fernet
from flask import Flask, Response, request
from sqlalchemy import event, inspect, select
from werkzeug.middleware.proxy_fix import ProxyFix

from appkit import database
from appkit.http import SessionOverHttps, redact_access_logs, security_headers

from . import db, jobs, providers, queueing, views, webhook

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


class Defaults:
    DATABASE_URL = ""  # default: sqlite file in the instance folder
    QUEUE_URL = ""  # "" (SQLite in the instance folder) or redis://host:port/db
    RATE_LIMIT_STORAGE = ""  # "" (per process) or redis://...: the custodians' rate limits
    DOCUMENTS = ""  # where fetched documents are kept (default: instance/documents)
    JOB_RETRIES = 6  # a job is tried at most 7 times (jobs.py)
    JOB_RETRY_DELAY = 2  # seconds before the first retry, doubled at each
    JOB_MAX_DELAY = 3600  # the longest wait between attempts (a 429's Retry-After included)
    EMBEDDED_WORKER = False
    WORKER_THREADS = 2  # jobs a worker process runs at once (`flask ... worker`)
    MAX_CONTENT_LENGTH = 64 << 20  # uploads; notifications are held to 1 MiB on their own
    NOTIFICATION_LIMIT = "600 per minute"  # new resources announced, per source address
    UPLOAD_SCHEMA_LIMIT = 16 << 20  # larger uploads are linted, not checked against the XSD
    DATABASE_BUSY_TIMEOUT = 30.0  # seconds a SQLite write waits for another (then 503)
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "thirdparty_session"  # apps on one host share cookies across ports
    CUSTODIANS: ClassVar[dict[str, dict[str, Any]]] = {}  # profile overrides (profiles.py)
    PROVIDER_HISTORY_DAYS = 0  # a provider connection's first sync: 0 = the provider's default
    PROVIDER_NOT_READY_DELAY = 30  # seconds between asks while a provider is still syncing
    PROVIDERS: ClassVar[dict[str, dict[str, Any]]] = {}  # registered providers' settings, by slug
    CONNECT_EXPIRY = 3600  # seconds a connect waits for the source's answer (then removed)
    BASE_URL = ""  # https://your-host: links in mails point there (required outside development)
    SIGNIN_LIMIT = "10 per minute"  # failed sign-ins per client address and per email address
    MAIL_SERVER = ""  # host[:port] of an SMTP relay for password resets ("" : instance/outbox)
    MAIL_FROM = ""
    PROXY_FIX = 0  # proxies in front (their X-Forwarded-* headers are trusted): 1 behind one
    SESSION_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = None  # a token lives as long as the session


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(Defaults)
    # this app's own dicts: prefixed-env loading fills them in place
    app.config["CUSTODIANS"], app.config["PROVIDERS"] = {}, {}
    app.config.from_prefixed_env("THIRDPARTY")
    if test_config:
        app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["DATABASE_URL"] = database.default_url(app, "thirdparty")
    app.config["DOCUMENTS"] = app.config["DOCUMENTS"] or os.path.join(
        app.instance_path, "documents"
    )
    for key in ("SECRET_KEY", "TOKEN_KEY"):
        if not app.config.get(key):
            if not (app.debug or app.testing):
                raise RuntimeError(f"set THIRDPARTY_{key} to run the third-party app (see README)")
            app.config[key] = (
                Fernet.generate_key().decode() if key == "TOKEN_KEY" else os.urandom(32).hex()
            )
    if not (app.config["BASE_URL"] or app.debug or app.testing):
        raise RuntimeError(
            "set THIRDPARTY_BASE_URL to the app's public address (https://...): password-reset "
            "mails link there, never to whatever Host a request named"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    redact_access_logs()
    webhook.init_app(app)  # in front of Flask, behind ProxyFix (the source is the client's)
    if app.config["PROXY_FIX"]:
        hops = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.session_interface = SessionOverHttps()

    @app.after_request
    def headers(response: Response) -> Response:
        return security_headers(response, request.is_secure)

    providers.check_settings(app.config)
    database.init_app(app)
    busy_timeout(app)
    queueing.make(app)
    views.init_app(app)
    register_commands(app)
    if app.config["EMBEDDED_WORKER"]:
        start_worker(app, embedded=True)
    return app


def busy_timeout(app: Flask) -> None:
    """How long a SQLite write waits for another process's (``DATABASE_BUSY_TIMEOUT``)."""
    engine = app.extensions["appkit.engine"]
    if engine.dialect.name != "sqlite":
        return
    millis = int(float(app.config["DATABASE_BUSY_TIMEOUT"]) * 1000)

    def pragma(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={millis}")

    event.listen(engine, "connect", pragma)


def register_commands(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db() -> None:
        """Create or upgrade the database (Alembic migrations)."""
        database.upgrade(app, MIGRATIONS)
        click.echo(f"database ready: {app.config['DATABASE_URL']}")

    @app.cli.command("sync")
    def sync_cmd() -> None:
        """Ask every custodian for fresh data for every connection (queued)."""
        conns = db.session().scalars(
            select(db.Connection).where(
                db.Connection.status.in_(jobs.SYNCING), db.Connection.profile != db.UPLOAD
            )
        )
        n = 0
        for conn in conns:
            jobs.enqueue("sync", conn.id)
            n += 1
        click.echo(f"{n} connection(s) queued for sync")

    @app.cli.command("bulk")
    @click.option("--profile", "name", default="local", show_default=True)
    def bulk_cmd(name: str) -> None:
        """Ask a custodian for the Bulk of all our authorizations (queued)."""
        jobs.enqueue("bulk", name)
        click.echo(f"bulk request for {name} queued")

    @app.cli.command("status")
    @click.option("--profile", "name", default="local", show_default=True)
    def status_cmd(name: str) -> None:
        """Is the custodian up, and how many authorizations does it hold for us?"""
        import json

        from . import clients

        click.echo(json.dumps(clients.health(name), indent=2))

    @app.cli.command("replay")
    @click.argument("document_id", type=int)
    @click.option(
        "--full",
        is_flag=True,
        help="Read the document even when the same content was ingested before and nothing "
        "since changed its rows (blocks proven unchanged are still not written again).",
    )
    def replay_cmd(document_id: int, full: bool) -> None:
        """Ingest a kept document again."""
        click.echo(f"{jobs.replay(document_id, full=full)} readings")

    @app.cli.command("worker")
    def worker() -> None:
        """Run the job queue's worker (first re-queueing what a stopped worker left)."""
        start_worker(app, embedded=False)


def start_worker(app: Flask, embedded: bool) -> None:
    with app.app_context():
        if inspect(database.engine()).has_table("upload"):  # not before `init-db`
            try:
                jobs.recover()
            except Exception:  # a broken document must not keep the worker from starting
                logging.getLogger(__name__).exception("recovery failed")
    queueing.start(app, embedded)
