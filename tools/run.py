"""`make run`: both apps on this machine, from nothing.

Creates ``var/`` (SQLite databases, generated secrets), migrates, seeds the sandbox customers,
registers a demo third party, and serves the data custodian (5001) and the third-party app
(5002), each with its worker. Prints the URL to open and the logins. Ctrl-C stops it.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from pathlib import Path

from cryptography.fernet import Fernet
from werkzeug.serving import make_server, run_simple

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
CUSTODIAN_PORT = int(os.environ.get("CUSTODIAN_PORT", "5001"))
THIRD_PARTY_PORT = int(os.environ.get("THIRD_PARTY_PORT", "5002"))
PELM_PORT = int(os.environ.get("PELM_PORT", "5003"))
WATTSHIFT_PORT = int(os.environ.get("WATTSHIFT_PORT", "5004"))
WATTZON_PORT = int(os.environ.get("WATTZON_PORT", "5005"))
GRIDDY_PORT = int(os.environ.get("GRIDDY_PORT", "5006"))


def secret(name: str, make: str = "hex") -> str:
    """A random secret kept in var/ (never in the repository), the same on every run."""
    path = VAR / f"{name}.secret"
    if not path.exists():
        path.write_text(
            Fernet.generate_key().decode() if make == "fernet" else secrets.token_hex(32)
        )
        path.chmod(0o600)
    return path.read_text().strip()


def test_certificates() -> Path:
    """A test CA, server and client certificates in var/certs (WattzOn's mutual TLS), made
    by tools/make_certs.py once, and anew when they are about to expire."""
    import time

    from make_certs import make  # beside this script (python tools/run.py)

    folder = VAR / "certs"
    ca = folder / "ca.pem"
    if not (folder / "client.pem").exists() or ca.stat().st_mtime < time.time() - 8 * 86400:
        make(folder)
    return folder


def fakes() -> dict[str, dict[str, str]]:
    """The local Pelm, WattzOn (over mutual TLS), Griddy and WattShift (the real ones cannot be
    reached from here), and the third party's settings for them."""
    from appkit.tls import tls_context
    from fakes import griddy, pelm, wattshift, wattzon
    from fakes.common import serve

    certs = test_certificates()
    pelm_url = serve(pelm.create_app(data_delay=5), port=PELM_PORT).url
    ws_url = serve(wattshift.create_app(), port=WATTSHIFT_PORT).url
    notify = f"http://127.0.0.1:{THIRD_PARTY_PORT}/providers/wattzon/notify"
    tls = tls_context(str(certs / "server.pem"), str(certs / "server.key"), str(certs / "ca.pem"))
    wz_url = serve(
        wattzon.create_app(step_seconds=1, notify_url=notify), port=WATTZON_PORT, ssl_context=tls
    ).url
    griddy_url = serve(griddy.create_app(), port=GRIDDY_PORT).url
    return {
        "pelm": {"base_url": pelm_url, "connect_url": f"{pelm_url}/connect",
                 "client_id": "pelm-sandbox-client", "secret": "pelm-sandbox-secret"},
        "wattshift": {"base_url": ws_url, "api_key": "ws-sandbox-key"},
        "wattzon": {"base_url": wz_url, "client_cert": str(certs / "client.pem"),
                    "client_key": str(certs / "client.key"), "ca_bundle": str(certs / "ca.pem")},
        "griddy": {"base_url": griddy_url},
    }  # fmt: skip


def third_party(creds: dict[str, str], custodian_base: str):  # type: ignore[no-untyped-def]
    from appkit import database
    from thirdparty_app import MIGRATIONS, create_app

    app = create_app({
        "SECRET_KEY": secret("thirdparty"),
        "BASE_URL": f"http://127.0.0.1:{THIRD_PARTY_PORT}",
        "TOKEN_KEY": secret("thirdparty-tokens", "fernet"),
        "DATABASE_URL": f"sqlite:///{VAR / 'thirdparty.sqlite'}",
        "QUEUE_URL": f"sqlite:///{VAR / 'thirdparty-queue.sqlite'}",
        "DOCUMENTS": str(VAR / "documents"),
        "EMBEDDED_WORKER": True,
        "PROVIDERS": fakes(),
        "PROVIDER_NOT_READY_DELAY": 5,  # the stand-ins are quicker than the real providers
        "CUSTODIANS": {"local": {
            "client_id": creds["client_id"], "client_secret": creds["client_secret"],
            "bulk_id": creds["bulk_id"], "scope": creds["scope"],
            "authorize_url": f"{custodian_base}/datacustodian/oauth/v2/authorize",
            "token_url": f"{custodian_base}/datacustodian/oauth/v2/token",
            "resource_base": f"{custodian_base}/GreenButtonConnect/espi/1_1/resource",
        }},
    })  # fmt: skip
    with app.app_context():
        database.upgrade(app, MIGRATIONS)
    return app


def demo_accounts(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """One customer and one operator in the third-party app (passwords made once, kept in
    var/): (email, password, what it is)."""
    from sqlalchemy import select

    from appkit import database
    from thirdparty_app import db
    from thirdparty_app.accounts import create_account

    people = [
        ("customer@example.com", "Demo Customer", "customer", "a customer: connects and sees their data"),
        ("operator@example.com", "Demo Operator", "operator", "the third party's staff: sees every customer"),
    ]  # fmt: skip
    out = []
    with app.app_context():
        for email, name, role, what in people:
            password = secret(f"thirdparty-{role}-password")[:16]
            if (
                database.session().scalar(select(db.Account).where(db.Account.email == email))
                is None
            ):
                create_account(email, password, name, role=role)
            out.append((email, password, what))
        database.close_session(None)
    return out


def main() -> None:
    VAR.mkdir(exist_ok=True)
    from datacustodian import DEFAULT_SCOPE, create_app, register
    from datacustodian.migrate import upgrade
    from datacustodian.sandbox import seed

    base = f"http://127.0.0.1:{CUSTODIAN_PORT}"
    app = create_app({
        "SECRET_KEY": secret("datacustodian"),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{VAR / 'datacustodian.sqlite'}",
        "QUEUE_URL": f"sqlite:///{VAR / 'datacustodian-queue.sqlite'}",
        "BASE_URL": base,
        "EMBEDDED_WORKER": True,
        "SANDBOX_TEST_AUTHORIZE": True,  # PG&E's test authorize shortcut: a sandbox only
    })  # fmt: skip
    with app.app_context():
        upgrade(app)
        logins = seed()
        creds_file = VAR / "demo-client.json"
        if not creds_file.exists():
            creds = register("Demo third party", [f"http://127.0.0.1:{THIRD_PARTY_PORT}/callback/local"],
                             f"http://127.0.0.1:{THIRD_PARTY_PORT}/espi/1_1/Notification", DEFAULT_SCOPE)  # fmt: skip
            creds_file.write_text(json.dumps(creds, indent=2))
            creds_file.chmod(0o600)
    third = third_party(json.loads(creds_file.read_text()), base)
    people = demo_accounts(third)
    server = make_server("127.0.0.1", CUSTODIAN_PORT, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"\n  Open http://127.0.0.1:{THIRD_PARTY_PORT}/, sign in, and click Connect.")
    print("  Third-party app logins (or create an account there):")
    for email, password, what in people:
        print(f"    {email:<22} / {password:<17} {what}")
    print(f"  The data custodian (a PG&E Share My Data sandbox) is at {base}/")
    print("  Utility (sandbox) logins, asked for after Connect:")
    for login in logins:
        print(f"    {login['username']:<6} / {login['password']:<15} {login['description']}")
    print(f"  Pelm (local stand-in, port {PELM_PORT}): any username, password sandbox")
    print(
        f"  WattShift (local stand-in, port {WATTSHIFT_PORT}): rate plans for ZIP codes 93xxx-95xxx"
    )
    print(
        f"  WattzOn (local stand-in, port {WATTZON_PORT}, mutual TLS): ZIP 00007, any username and password"
    )
    print(f"  Griddy (local stand-in, port {GRIDDY_PORT}): jane.doe@example.com / Password123")
    print("\n  Ctrl-C stops everything.\n", flush=True)
    run_simple("127.0.0.1", THIRD_PARTY_PORT, third, threaded=True, use_reloader=False)


if __name__ == "__main__":
    sys.exit(main())
