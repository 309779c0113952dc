"""The least of a custodian, for scale runs and tests: a client-token endpoint and documents
(Bulk, Subscription) served from files over loopback, all to one token; the third party's
customers (an account and an active connection per subscription); its queue workers as
separate processes.

    server = serve({"/.../Batch/Bulk/1": path, ...})   # server.base: http://127.0.0.1:PORT
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parent.parent
RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
TOKEN = "t0k3n"  # noqa: S105 - the stub's only token, on loopback


def serve(documents: dict[str, Path]) -> Any:
    """Serve ``POST /token`` (a client access token) and each document at its path (with that
    token); ``server.base`` is the origin, ``server.close()`` stops it."""

    @Request.application
    def app(request: Request) -> Response:
        if request.path == "/token" and request.method == "POST":
            body = f'{{"client_access_token": "{TOKEN}", "expires_in": 3600}}'
            return Response(body, mimetype="application/json")
        found = documents.get(request.path)
        if found is not None and request.headers.get("Authorization") == f"Bearer {TOKEN}":
            return Response(found.read_bytes(), mimetype="application/atom+xml")
        return Response("no", status=404)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.base = f"http://127.0.0.1:{server.server_port}"  # type: ignore[attr-defined]

    def close() -> None:
        server.shutdown()
        server.server_close()

    server.close = close  # type: ignore[method-assign]
    return server


def profile(base: str) -> dict[str, str]:
    """The third party's settings for this custodian (profile ``remote``)."""
    return {"token_url": f"{base}/token", "resource_base": f"{base}{RESOURCE}",
            "client_id": "c", "client_secret": "s", "requests_per_second": "1000"}  # fmt: skip


def environment(config: dict[str, str], base: str) -> dict[str, str]:
    """The environment of a worker process: ``config`` as THIRDPARTY_* variables, the profile."""
    return {
        **os.environ,
        "THIRDPARTY_BASE_URL": "http://127.0.0.1:9",  # password-reset links: none are sent
        **{f"THIRDPARTY_{k}": v for k, v in config.items()},
        **{f"THIRDPARTY_CUSTODIANS__remote__{k}": v for k, v in profile(base).items()},
    }


def customers(base: str, subscriptions: range) -> None:
    """An account with an active connection for each subscription, holding an access token the
    stub takes (in an app context)."""
    from appkit import database
    from thirdparty_app import db as tp
    from thirdparty_app import vault
    from thirdparty_app.accounts import create_account

    s = database.session()
    for sub in subscriptions:
        owner = create_account(f"customer{sub}@example.com", "correct horse battery staple")
        uri = f"{base}{RESOURCE}/Batch/Subscription/{sub}"
        conn = tp.Connection(account_id=owner.id, profile="remote", status="active",
                             subscription_uri=uri)  # fmt: skip
        conn.access_token, conn.expires_at = vault.seal(TOKEN), int(time.time()) + 86400
        s.add(conn)
    s.commit()


def notify(base: str, paths: list[str]) -> None:
    """Record a notification of each document and queue its download (in an app context)."""
    from appkit import database
    from thirdparty_app import db as tp
    from thirdparty_app.jobs import enqueue

    s = database.session()
    notes = [tp.Notification(uri=f"{base}{path}", profile="remote") for path in paths]
    s.add_all(notes)
    s.commit()
    for note in notes:
        enqueue("fetch", note.id)


def worker(env: dict[str, str], threads: int = 1, log: Any = subprocess.DEVNULL) -> Any:
    """A queue worker process (``flask --app thirdparty_app worker``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "thirdparty_app", "worker"],
        env={**env, "THIRDPARTY_WORKER_THREADS": str(threads)}, cwd=ROOT,
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def started(logs: Any, count: int, timeout: float = 60) -> None:
    """Wait until ``count`` worker logs say their consumer started."""
    deadline = time.monotonic() + timeout
    paths = list(logs)
    while sum(b"consumer started" in Path(p).read_bytes() for p in paths) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not start")
        time.sleep(0.1)
