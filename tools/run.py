"""`make run`: the sandbox on this machine, from nothing.

Creates ``var/`` (databases, a generated secret key), migrates, seeds the sandbox customers,
registers a demo third party, and serves the data custodian with its notification worker.
Prints the URL to open and the logins. Ctrl-C stops it.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from werkzeug.serving import run_simple

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
CUSTODIAN_PORT = int(os.environ.get("CUSTODIAN_PORT", "5001"))
THIRD_PARTY_PORT = int(os.environ.get("THIRD_PARTY_PORT", "5002"))


def secret(name: str) -> str:
    """A random secret kept in var/ (never in the repository), the same on every run."""
    path = VAR / f"{name}.secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


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
    })  # fmt: skip
    with app.app_context():
        upgrade(app)
        logins = seed()
        creds_file = VAR / "demo-client.json"
        if not creds_file.exists():
            creds = register("Demo third party", [f"http://127.0.0.1:{THIRD_PARTY_PORT}/callback"],
                             f"http://127.0.0.1:{THIRD_PARTY_PORT}/espi/1_1/Notification", DEFAULT_SCOPE)  # fmt: skip
            creds_file.write_text(json.dumps(creds, indent=2))
            creds_file.chmod(0o600)
    print(f"\n  Data custodian (PG&E Share My Data sandbox): {base}/")
    print(f"  Demo third party's credentials: {creds_file.relative_to(ROOT)}")
    print("  Sandbox logins:")
    for login in logins:
        print(f"    {login['username']:<6} / {login['password']:<15} {login['description']}")
    print("\n  Ctrl-C stops it.\n", flush=True)
    run_simple("127.0.0.1", CUSTODIAN_PORT, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    sys.exit(main())
