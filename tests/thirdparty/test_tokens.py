"""A customer's tokens: sealed at rest, and renewed by one worker at a time. Custodians issue a
new refresh token and forget the old one: two workers redeeming one refresh token would leave
the loser (and the connection) with a dead token. Real threads, each its own database session,
against a custodian whose refresh tokens are single-use and slow to answer; SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs

from sqlalchemy import select

from tests.scripted import Answer, Scripted, Seen
from tests.thirdparty.apps import RESOURCE, TOKEN, storage, third_party
from thirdparty_app import db as tp

__all__ = ["storage"]
WORKERS = 8


class StrictCustodian:
    """Refresh tokens work once; the subscription answers 202 to the current access token."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refresh, self.access, self.issued = "refresh-0", "access-0", 0
        self.redeemed: list[str] = []

    def __call__(self, seen: Seen) -> Answer:
        if seen.path == "/token":
            form = {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}
            if form.get("grant_type") == "client_credentials":
                return Answer(200, {"Content-Type": "application/json"}, TOKEN)
            time.sleep(0.3)  # a slow token endpoint widens the race
            with self.lock:
                self.redeemed.append(form.get("refresh_token", ""))
                if form.get("refresh_token") != self.refresh:
                    return Answer(400, {"Content-Type": "application/json"},
                                  b'{"error": "invalid_grant", "error_description": "refresh token used"}')  # fmt: skip
                self.issued += 1
                self.refresh, self.access = f"refresh-{self.issued}", f"access-{self.issued}"
                body = {
                    "access_token": self.access,
                    "refresh_token": self.refresh,
                    "expires_in": 3600,
                }
            return Answer(200, {"Content-Type": "application/json"}, json.dumps(body).encode())
        if seen.headers.get("Authorization") != f"Bearer {self.access}":
            return Answer(401)
        return Answer(202)


def test_one_refresh_however_many_workers_need_the_token(tmp_path, storage):
    script = StrictCustodian()
    with (
        Scripted(script) as remote,
        third_party(tmp_path, storage, remote.url, EMBEDDED_WORKER=False) as served,
    ):
        from thirdparty_app import jobs, vault
        from thirdparty_app.accounts import create_account

        def setup(s):
            owner = create_account("tokens@example.com", "correct horse battery staple")
            conn = tp.Connection(
                account_id=owner.id, profile="remote", status="active",
                subscription_uri=f"{served.resource}/Batch/Subscription/1",
                access_token=vault.seal("access-0"), refresh_token=vault.seal("refresh-0"),
                expires_at=int(time.time()) - 10,  # expired: every sync must renew first
            )  # fmt: skip
            s.add(conn)
            s.commit()
            return conn.id

        with served.app.app_context():
            conn_id = served.query(setup)
        start = threading.Barrier(WORKERS)
        errors: list[BaseException] = []

        def work() -> None:
            with served.app.app_context():
                start.wait(30)
                try:
                    jobs.sync(conn_id)
                except BaseException as err:
                    errors.append(err)

        threads = [threading.Thread(target=work) for _ in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert script.redeemed == ["refresh-0"]  # one redemption, by one worker
        subscription = remote.requests("GET", f"{RESOURCE}/Batch/Subscription/1")
        assert len(subscription) == WORKERS
        assert {s.headers["Authorization"] for s in subscription} == {"Bearer access-1"}

        def stored(s):
            conn = s.get(tp.Connection, conn_id)
            with served.app.app_context():
                return (
                    vault.unseal(conn.access_token),
                    vault.unseal(conn.refresh_token),
                    conn.status,
                    conn.refreshing,
                )

        access, refresh, status, lease = served.query(stored)
        assert (access, refresh, status, lease) == ("access-1", "refresh-1", "active", 0)
        sealed = served.query(
            lambda s: s.scalar(
                select(tp.Connection.refresh_token).where(tp.Connection.id == conn_id)
            )
        )
        assert "refresh-1" not in sealed  # sealed at rest
