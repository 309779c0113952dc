"""datacustodian: a local data custodian that behaves like PG&E's Share My Data.

    flask --app datacustodian init-db
    flask --app datacustodian seed
    flask --app datacustodian register-client --name App --redirect-uri URI --notification-uri URI
    flask --app datacustodian run

Configuration: defaults below, then environment variables with the ``DATACUSTODIAN_`` prefix
(``DATACUSTODIAN_SECRET_KEY``, ``DATACUSTODIAN_BASE_URL``...), and ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import click
from flask import Flask

from appkit import database, queue

from . import db, guard, notify, oauth

#: What a third party registers for unless it says otherwise: usage, costs, bills, the REST and
#: bulk blocks, and the customer's basic and account information.
DEFAULT_SCOPE = (
    "FB=1_3_4_5_8_13_14_15_16_18_19_31_32_35_37_38_39_40_51_54_57;IntervalDuration=900_3600;"
    "BlockDuration=Daily;HistoryLength=34128000;SubscriptionFrequency=Daily;AccountCollection=1"
)


class Defaults:
    DATABASE_URL = ""  # default: sqlite file in the instance folder
    BASE_URL = "http://127.0.0.1:5001"  # how third parties reach this custodian
    QUEUE_URL = ""  # "" (SQLite in the instance folder) or redis://host:port/db
    NOTIFY_DELAY = 2.0  # seconds between a 202 and its notification
    NOTIFY_RETRIES = 8
    NOTIFY_RETRY_DELAY = 1  # doubled at each retry
    NOTIFY_TIMEOUT = 10.0
    EMBEDDED_WORKER = False  # run the notification worker inside the web process
    CLIENT_CA = ""  # a CA file: demand client certificates it signed (mutual TLS), as PG&E does
    RATE_LIMIT = "10 per second"  # per third party (flask-limiter syntax); "" turns it off
    MAX_CONTENT_LENGTH = 1 << 20
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "datacustodian_session"  # apps on one host share cookies across ports
    OAUTH2_REFRESH_TOKEN_GENERATOR = True
    #: PG&E's registration-test shortcut, GET /datacustodian/test/oauth/v2/authorize: a code
    #: for the first sandbox customer without a login. Only for a sandbox (make run turns it on).
    SANDBOX_TEST_AUTHORIZE = False


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(Defaults)
    app.config.from_prefixed_env("DATACUSTODIAN")
    if test_config:
        app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["DATABASE_URL"] = database.default_url(app, "datacustodian")
    if not app.config.get("SECRET_KEY"):
        if not (app.debug or app.testing):
            raise RuntimeError(
                "set DATACUSTODIAN_SECRET_KEY (a long random string) to run the custodian"
            )
        app.config["SECRET_KEY"] = os.urandom(32).hex()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    database.init_app(app)
    oauth.init_app(app)
    notify.make_huey(app)
    guard.init_app(app)

    from . import pages, resources

    app.register_blueprint(pages.bp)
    app.register_blueprint(resources.bp)
    register_commands(app)
    if app.config["EMBEDDED_WORKER"]:
        app.extensions["dc.consumer"] = queue.start_embedded(app.extensions["dc.huey"])
    return app


def register_commands(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db() -> None:
        """Create or upgrade the database (Alembic migrations)."""
        from .migrate import upgrade

        upgrade(app)
        click.echo(f"database ready: {app.config['DATABASE_URL']}")

    @app.cli.command("register-client")
    @click.option("--name", required=True)
    @click.option("--redirect-uri", "redirect_uris", required=True, multiple=True)
    @click.option("--notification-uri", required=True)
    @click.option("--scope", default=DEFAULT_SCOPE, show_default=True)
    def register_client(
        name: str, redirect_uris: tuple[str, ...], notification_uri: str, scope: str
    ) -> None:
        """Register a third party; print its credentials as JSON."""
        click.echo(
            json.dumps(register(name, list(redirect_uris), notification_uri, scope), indent=2)
        )

    @app.cli.command("seed")
    def seed_cmd() -> None:
        """Create the sandbox customers and print their logins."""
        from .sandbox import seed

        for login in seed():
            click.echo(f"{login['username']} / {login['password']}: {login['description']}")

    @app.cli.command("load")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--customer", required=True, help="User name of the customer (created if new).")
    def load_cmd(file: str, customer: str) -> None:
        """Load a Green Button file as a customer's data."""
        from espi import ParseError

        from .sandbox import load

        try:
            count = load(file, customer)
        except ParseError as err:
            raise click.ClickException(str(err)) from err
        click.echo(f"{file}: {count} usage point(s) loaded for {customer}")

    @app.cli.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5001, show_default=True)
    @click.option(
        "--cert", type=click.Path(exists=True), help="Server certificate (PEM): serve HTTPS."
    )
    @click.option("--key", type=click.Path(exists=True), help="Its private key (PEM).")
    def serve(host: str, port: int, cert: str | None, key: str | None) -> None:
        """Serve the custodian; with --cert/--key over TLS, asking for client certificates
        signed by DATACUSTODIAN_CLIENT_CA when that is set (mutual TLS)."""
        from werkzeug.serving import run_simple

        from .guard import tls_context

        ctx = tls_context(cert, key, app.config["CLIENT_CA"] or None) if cert and key else None
        run_simple(host, port, app, threaded=True, ssl_context=ctx)

    @app.cli.command("worker")
    def worker() -> None:
        """Run the notification worker (Huey consumer)."""
        queue.run_worker(app.extensions["dc.huey"])


def register(
    name: str, redirect_uris: list[str], notification_uri: str, scope: str
) -> dict[str, Any]:
    """Register a third party: client, registration token, ApplicationInformation id, BulkID.
    The client secret and registration token are in the answer and nowhere else: the
    custodian keeps only their hashes."""
    s = db.session()
    secret, registration_token = db.new_id(32), db.new_id(32)
    client = db.Client(
        name=name,
        secret_hash=db.digest(secret),
        redirect_uris=json.dumps(redirect_uris),
        notification_uri=notification_uri,
        scope=scope,
    )
    s.add(client)
    s.flush()
    s.add(
        db.Token(
            kind=db.REGISTRATION,
            access_hash=db.digest(registration_token),
            client_id=client.id,
            scope="FB=36_40",
            expires_in=0,
        )
    )
    s.commit()
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "registration_access_token": registration_token,
        "application_information_id": client.id,
        "bulk_id": client.bulk_id,
        "scope": scope,
    }
