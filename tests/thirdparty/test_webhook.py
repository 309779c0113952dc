"""The Notification webhook under hostile posts: bodies over the limit (sent slowly, chunked, ten
at once), 200 concurrent posts of one URI, over-long URIs, dot segments, query parameters the
custodian does not use, too many new URIs from one source, a busy SQLite database."""

from __future__ import annotations

import os
import select as selectors
import socket
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

import espi
from tests.conftest import fresh_postgres, fresh_redis
from tests.scripted import Answer, Scripted
from tests.thirdparty.apps import (
    RESOURCE,
    add_connection,
    custodian,
    on_sqlite,
    storage,
    third_party,
    wait,
)
from thirdparty_app import db as tp
from thirdparty_app import queueing

__all__ = ["storage"]
LIMIT = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


class Counting:
    """WSGI middleware: how many body bytes the app read from each request."""

    def __init__(self, app) -> None:
        self.app, self.read = app, []

    def __call__(self, environ, start_response):
        inner, counter = environ["wsgi.input"], [0]
        self.read.append(counter)

        class Input:
            def read(self, *args):
                data = inner.read(*args)
                counter[0] += len(data)
                return data

            def readline(self, *args):
                data = inner.readline(*args)
                counter[0] += len(data)
                return data

        environ["wsgi.input"] = Input()
        return self.app(environ, start_response)


def body_of(uris: list[str]) -> bytes:
    return espi.dumps(espi.BatchList(resources=uris))


def notifications(served) -> list[str]:
    return served.query(
        lambda s: list(s.scalars(select(tp.Notification.uri).order_by(tp.Notification.id)))
    )


@pytest.fixture
def quiet_custodian():
    with Scripted(custodian(lambda seen: Answer(202))) as remote:
        yield remote


def send_slowly(url: str, total: int, chunked: bool) -> tuple[int, int]:
    """POST ``total`` bytes of a BatchList-looking body a chunk at a time with pauses; stop as
    soon as an answer comes. The status and how many bytes were sent."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        "POST /espi/1_1/Notification HTTP/1.1\r\nHost: x\r\nContent-Type: application/atom+xml\r\n"
    )
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
    sock.sendall((head + "\r\n").encode())
    chunk = b"<!-- " + b"x" * (64 * 1024 - 9) + b" -->"
    sent = 0
    answer = b""
    try:
        while sent < total:
            ready, _, _ = selectors.select([sock], [], [], 0.005)
            if ready:
                answer = sock.recv(65536)
                break
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
        if not answer:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
            answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        answer = answer or sock.recv(65536)
    finally:
        sock.close()
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_body_over_the_limit_is_refused_without_reading_it(tmp_path, quiet_custodian, chunked):
    sqlite = on_sqlite(tmp_path)
    with third_party(tmp_path, sqlite, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        counting = served.app.wsgi_app = Counting(served.app.wsgi_app)
        status, _sent = send_slowly(served.url, 16 * LIMIT, chunked)
        assert status == 413
        assert max(c[0] for c in counting.read) <= LIMIT + 128 * 1024  # not the 16 MiB sent
        assert notifications(served) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])


def test_ten_concurrent_big_posts_keep_memory_flat(tmp_path):
    """The app under gunicorn (one worker, twelve threads), as in production; ten 60 MiB bodies
    at once: the worker's peak memory barely moves (it read the whole of each before)."""
    env = {**os.environ, "THIRDPARTY_SECRET_KEY": "s", "THIRDPARTY_BASE_URL": "http://127.0.0.1", "THIRDPARTY_TOKEN_KEY": "0" * 43 + "=",
           "THIRDPARTY_DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
           "THIRDPARTY_QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite"}  # fmt: skip
    flask = [sys.executable, "-m", "flask", "--app", "thirdparty_app"]
    subprocess.run([*flask, "init-db"], env=env, cwd=ROOT, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "12", "--bind",
         f"127.0.0.1:{port}", "--no-control-socket", "thirdparty_app:create_app()"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/espi/1_1/Notification"
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children")

        def answering() -> bool:
            try:
                foreign = requests.post(url, data=body_of(["http://127.0.0.1:9/x"]), timeout=60)
            except requests.ConnectionError:
                return False  # not listening yet
            return foreign.status_code == 400

        wait(answering, 30)
        worker = int(children.read_text().split()[0])
        before = peak_kib(worker)

        def big() -> int | None:
            piece = b"<!-- " + b"y" * (1 << 20) + b" -->"
            try:
                r = requests.post(url, data=(piece for _ in range(60)), timeout=120)
            except requests.ConnectionError:
                return None  # the server stopped reading and closed: as good as a 413
            return r.status_code

        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda _: big(), range(10)))
        assert set(codes) <= {413, None} and 413 in codes, codes
        grown = (peak_kib(worker) - before) / 1024
        assert grown < 40, f"peak memory grew by {grown:.0f} MB"
    finally:
        server.terminate()
        server.wait(10)


def test_200_concurrent_posts_of_one_uri_all_answer_200_with_one_row(
    tmp_path, storage, quiet_custodian
):
    with third_party(tmp_path, storage, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        uri = f"{served.resource}/Batch/Bulk/5?correlationID=9"
        body = body_of([uri])
        start = threading.Barrier(200)

        def post(_):
            start.wait(30)
            return requests.post(
                f"{served.url}/espi/1_1/Notification", data=body, timeout=120
            ).status_code

        with ThreadPoolExecutor(200) as pool:
            codes = list(pool.map(post, range(200)))
        assert codes == [200] * 200
        assert notifications(served) == [uri]
        assert queueing.of(served.app).huey.pending_count() == 1  # one download queued


def test_uris_are_recorded_normalised_and_refused_when_unsafe(tmp_path, storage, quiet_custodian):
    with third_party(tmp_path, storage, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        base = served.resource
        host = quiet_custodian.url.removeprefix("http://")
        shouted = f"HTTP://{host.upper()}{base.split(host, 1)[1]}/Batch//Bulk/%31?correlationID=3"
        assert served.notify(shouted).status_code == 200
        assert notifications(served) == [f"{base}/Batch/Bulk/1?correlationID=3"]
        for bad, why in [
            (f"{base}/../../../../?/Batch/Bulk/x", "dot segment"),
            (f"{base}/Batch/Subscription/1/%2e%2e/%2E%2E/Bulk/1", "dot segment"),
            (f"{base}/Batch/Bulk/1?x=1", "query parameter(s) x"),
            (f"{base}/Batch/Bulk/1?correlationID=1&correlationID=2", "repeated"),
            (f"{base}/Batch/Bulk/{'1' * 2100}", "longer than 2,000 characters"),
            ("http://169.254.169.254/latest/meta-data", "no configured custodian"),
        ]:
            r = served.notify(bad)
            assert r.status_code == 400, (bad, r.status_code)
            assert why in r.json()["error_description"], (why, r.json())
        assert len(notifications(served)) == 1


def test_uris_no_download_of_ours_could_serve_are_left(tmp_path, quiet_custodian):
    """A subscription no connection has, another third party's Bulk, and resources a custodian
    never announces (anything not a Batch: the Authorization feed, ServiceStatus, sample data,
    ApplicationInformation, all read with our own tokens): 200 (a custodian may announce a
    subscription deleted here), nothing recorded, nothing fetched."""
    sqlite = on_sqlite(tmp_path)
    profile = {"token_url": f"{quiet_custodian.url}/token", "resource_base": f"{quiet_custodian.url}{RESOURCE}",
               "client_id": "c", "client_secret": "s", "bulk_id": "ours"}  # fmt: skip
    with third_party(tmp_path, sqlite, quiet_custodian.url, EMBEDDED_WORKER=False,
                     CUSTODIANS={"remote": profile}) as served:  # fmt: skip
        add_connection(served, "someone@example.com")  # has Batch/Subscription/1
        base = served.resource
        mine = [f"{base}/Batch/Subscription/1?correlationID=1", f"{base}/Batch/Subscription/1/UsagePoint/2",
                f"{base}/Batch/Bulk/ours?correlationID=2", f"{base}/Batch/BulkRetailCustomerInfo/ours"]  # fmt: skip
        others = [f"{base}/Batch/Subscription/987654", f"{base}/Batch/Bulk/not-ours",
                  f"{base}/Batch/RetailCustomer/1", f"{base}/ApplicationInformation/1",
                  f"{base}/Authorization?correlationID=3", f"{base}/Authorization/1",
                  f"{base}/ReadServiceStatus?correlationID=4", f"{base}/DownloadSampleData",
                  f"{base}/Batch/BulkRetailCustomerInfo/not-ours", f"{base}/LocalTimeParameters"]  # fmt: skip
        assert served.notify(*others, *mine).status_code == 200
        assert sorted(notifications(served)) == sorted(mine)


def test_new_uris_are_rate_limited_per_source(tmp_path, quiet_custodian):
    sqlite = on_sqlite(tmp_path)
    with third_party(tmp_path, sqlite, quiet_custodian.url, EMBEDDED_WORKER=False,
                     NOTIFICATION_LIMIT="3 per minute") as served:  # fmt: skip
        uri = f"{served.resource}/Batch/Bulk/1?correlationID="
        assert served.notify(uri + "1", uri + "2").status_code == 200
        assert served.notify(uri + "3").status_code == 200
        refused = served.notify(uri + "4")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "new resources" in refused.json()["error_description"]
        assert served.notify(uri + "2").status_code == 200  # known already: no new work
        assert len(notifications(served)) == 3


def test_a_busy_sqlite_database_is_a_503_with_retry_after(tmp_path, quiet_custodian):
    sqlite = on_sqlite(tmp_path)
    with third_party(tmp_path, sqlite, quiet_custodian.url, EMBEDDED_WORKER=False,
                     DATABASE_BUSY_TIMEOUT=0.2) as served:  # fmt: skip
        other = sqlite3.connect(tmp_path / "t.sqlite", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # a long writer elsewhere
        try:
            r = served.notify(f"{served.resource}/Batch/Bulk/1")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert r.status_code == 503 and r.headers["Content-Type"] == "application/json"
        assert int(r.headers["Retry-After"]) > 0 and "busy" in r.json()["error_description"]
        assert served.notify(f"{served.resource}/Batch/Bulk/1").status_code == 200
        count = served.query(lambda s: s.scalar(select(func.count()).select_from(tp.Notification)))
        assert count == 1


def test_a_notification_is_two_statements_and_no_orm_session(tmp_path, storage, quiet_custodian):
    """The lean path (p99 was 300-550 ms at 100 concurrent: an ORM session, a pool ping, four
    round trips): what is known or connected already, in one statement; the insert of what is
    new, in another; nothing else, and nothing for a URI known before."""
    from sqlalchemy import event

    with third_party(tmp_path, storage, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        statements: list[str] = []
        engine = served.app.extensions["appkit.engine"]
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        sessions = served.app.extensions["appkit.sessions"]
        opened = []
        served.app.extensions["appkit.sessions"] = lambda: opened.append(1) or sessions()
        uri = f"{served.resource}/Batch/Bulk/1?correlationID=7"
        assert served.notify(uri).status_code == 200
        assert [s.split()[0].upper() for s in statements] == ["SELECT", "INSERT"]
        statements.clear()
        assert served.notify(uri).status_code == 200  # known: looked up, nothing written
        assert [s.split()[0].upper() for s in statements] == ["SELECT"]
        assert opened == []
        assert notifications(served) == [uri]


def written(monkeypatch) -> list[list[int]]:
    """The batches the webhook writes from now on, each as its posts' numbers of URIs."""
    from thirdparty_app import webhook

    batches: list[list[int]] = []
    write = webhook.write

    def counted(batch):
        batches.append([len(each.found) for each in batch])
        write(batch)

    monkeypatch.setattr(webhook, "write", counted)
    return batches


def test_concurrent_posts_are_recorded_together_each_once(
    tmp_path, storage, quiet_custodian, monkeypatch
):
    """Group commit under real concurrency: 40 threads post 400 notifications, one in four
    naming a URI another post names too; posts in flight together are written as batches
    (fewer batches than posts), and every URI is recorded once and its download queued once."""
    with third_party(tmp_path, storage, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        uris = [f"{served.resource}/Batch/Bulk/1?correlationID={i}" for i in range(300)]
        posts = [[uri] for uri in uris] + [[uris[i * 3]] for i in range(100)]
        batches = written(monkeypatch)
        with requests.Session() as http, ThreadPoolExecutor(40) as pool:
            codes = list(pool.map(
                lambda each: http.post(f"{served.url}/espi/1_1/Notification",
                                       data=body_of(each), timeout=60).status_code,
                posts,
            ))  # fmt: skip
        assert codes == [200] * len(posts)
        assert sorted(notifications(served)) == sorted(uris)
        assert queueing.of(served.app).huey.pending_count() == len(uris)
        sizes = [len(batch) for batch in batches]
        assert sum(sizes) == len(posts) and len(sizes) < len(posts), sizes


def test_posts_over_the_limit_together_are_counted_one_by_one(tmp_path, quiet_custodian):
    """One batch of three posts from one source, 2 + 2 + 1 new URIs under a limit of 3: together
    over it, so each is counted as if it came alone, in order: the second is refused (429,
    nothing of it recorded), the first and the third are recorded; a URI two posts name is
    counted once."""
    from thirdparty_app import webhook

    sqlite = on_sqlite(tmp_path)
    with third_party(tmp_path, sqlite, quiet_custodian.url, EMBEDDED_WORKER=False,
                     NOTIFICATION_LIMIT="3 per minute") as served:  # fmt: skip
        uri = f"{served.resource}/Batch/Bulk/1?correlationID="
        with served.app.app_context():
            named = ([uri + "1", uri + "2"], [uri + "3", uri + "4"], [uri + "5", uri + "1"])
            posts = [webhook.announcement("10.0.0.1", names) for names in named]
            webhook.write(posts)
        first, second, third = (post.answer for post in posts)
        assert first is not None and first.status_code == 200
        assert second is not None and second.status_code == 429
        assert "2 new resources from 10.0.0.1" in second.get_data(as_text=True)
        assert third is not None and third.status_code == 200
        assert sorted(notifications(served)) == [uri + "1", uri + "2", uri + "5"]


def test_a_uri_longer_once_normalised_is_refused_alone(tmp_path, storage, quiet_custodian):
    """A URI under the length limit as posted can grow past it as recorded (``!`` is written
    ``%21``): refused (400) before it reaches the database, where PostgreSQL's column would
    refuse it and fail the other posts written in the same batch with it."""
    with third_party(tmp_path, storage, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        uri = f"{served.resource}/Batch/Bulk/1?correlationID="
        grown = uri + "!" * (1990 - len(uri))
        r = served.notify(grown)
        assert r.status_code == 400, r.status_code
        assert "longer than 2,000 characters" in r.json()["error_description"]
        assert served.notify(uri + "2").status_code == 200
        assert notifications(served) == [uri + "2"]


def test_a_post_naming_thousands_of_uris_is_written_alone(
    tmp_path, storage, quiet_custodian, monkeypatch
):
    """Four posts of 9,000 subscriptions no connection has (free to post: nothing recorded,
    nothing counted) among twenty a custodian sends: together in one batch, their look-up
    would pass PostgreSQL's 65,535 bound parameters and fail every post of the batch. A post
    of more than BATCH_URIS is written alone; no batch holds more; every post answers 200."""
    from thirdparty_app import webhook

    with third_party(tmp_path, storage, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        base = served.resource
        huge = [
            body_of([f"{base}/Batch/Subscription/{k * 10000 + n}" for n in range(9000)])
            for k in range(4)
        ]
        mine = [f"{base}/Batch/Bulk/1?correlationID={i}" for i in range(20)]
        batches = written(monkeypatch)
        with ThreadPoolExecutor(24) as pool:
            codes = list(pool.map(
                lambda body: requests.post(f"{served.url}/espi/1_1/Notification",
                                           data=body, timeout=120).status_code,
                [*huge, *(body_of([uri]) for uri in mine)],
            ))  # fmt: skip
        assert codes == [200] * 24
        assert sorted(notifications(served)) == sorted(mine)
        sizes = [sum(batch) for batch in batches]
        assert sizes.count(9000) == 4  # alone
        assert max(size for size in sizes if size != 9000) <= webhook.BATCH_URIS


def test_one_posts_trouble_stays_its_own(tmp_path, quiet_custodian):
    """The queue is down (nothing listens where it should be). Written together, a post of a
    URI known already and a post of a new one would fail as one; each is then written alone:
    the known one answers 200 (it needs no queue), the new one fails, and its row is removed
    again, so the custodian's next post of it records it and queues its download."""
    from thirdparty_app import webhook

    config = {"DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
              "QUEUE_URL": f"redis://127.0.0.1:{free_port()}/0"}  # fmt: skip
    with third_party(tmp_path, config, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        known, new = (f"{served.resource}/Batch/Bulk/1?correlationID={i}" for i in (1, 2))
        served.query(lambda s: s.add(tp.Notification(uri=known, profile="remote")) or s.commit())
        with served.app.app_context():
            posts = [webhook.announcement("10.0.0.1", [uri]) for uri in (known, new)]
            webhook.settle(posts)
        assert posts[0].answer is not None and posts[0].answer.status_code == 200
        assert posts[1].answer is None and posts[1].error is not None
        assert notifications(served) == [known]
        r = served.notify(new)
        assert r.status_code == 500 and r.headers["Content-Type"] == "application/json"
        assert notifications(served) == [known]


def test_inserts_of_one_uris_in_opposite_orders_do_not_deadlock(tmp_path, quiet_custodian):
    """Two processes writing the same new URIs listed in opposite orders: PostgreSQL's
    speculative inserts waited on each other crosswise and one batch failed as a deadlock
    (6 rounds in 20, found by review). Rows are inserted in one order everywhere."""
    from thirdparty_app import webhook

    with fresh_postgres() as url:
        config = {"DATABASE_URL": url, "QUEUE_URL": fresh_redis()}
        with third_party(tmp_path, config, quiet_custodian.url, EMBEDDED_WORKER=False,
                         NOTIFICATION_LIMIT="1000000 per minute") as served:  # fmt: skip
            failures: list[BaseException] = []
            for round_ in range(20):
                uris = [f"{served.resource}/Batch/Bulk/1?correlationID={round_}-{i}"
                        for i in range(600)]  # fmt: skip
                start = threading.Barrier(2)

                def post(order, source, start=start):
                    with served.app.app_context():
                        each = webhook.announcement(source, order)
                        start.wait(10)
                        webhook.settle([each])
                        if each.error is not None:
                            failures.append(each.error)

                threads = [threading.Thread(target=post, args=(order, source))
                           for order, source in ((uris, "a"), (uris[::-1], "b"))]  # fmt: skip
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(60)
            assert failures == []
            assert len(notifications(served)) == 20 * 600
            assert queueing.of(served.app).huey.pending_count() == 20 * 600


def test_an_empty_uri_or_a_body_cut_short_is_a_400(tmp_path, quiet_custodian):
    sqlite = on_sqlite(tmp_path)
    with third_party(tmp_path, sqlite, quiet_custodian.url, EMBEDDED_WORKER=False) as served:
        empty = b'<BatchList xmlns="http://naesb.org/espi"><resources/></BatchList>'
        r = requests.post(f"{served.url}/espi/1_1/Notification", data=empty, timeout=30)
        assert r.status_code == 400 and "empty resources" in r.json()["error_description"]
        assert r.headers["X-Frame-Options"] == "DENY"
        host, port = served.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(b"POST /espi/1_1/Notification HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 500\r\n\r\n" + body_of(["x"])[:100])  # fmt: skip
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(65536)
        assert answer.split(b" ", 2)[1] == b"400", answer[:200]
        assert notifications(served) == []


def test_batches_take_posts_in_order_up_to_their_uris():
    from thirdparty_app.webhook import BATCH_URIS, Announcement, first

    def post(n):
        return Announcement("s", {f"u{i}": None for i in range(n)}, set(), {})  # type: ignore[misc]

    a, b, c = post(BATCH_URIS // 2), post(BATCH_URIS // 2), post(1)
    assert first([a, b, c]) == ([a, b], [c])
    big = post(BATCH_URIS + 1)
    assert first([big, c]) == ([big], [c])  # one at least
    assert first([]) == ([], [])
