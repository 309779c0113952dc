"""Benchmark: the Notification webhook under gunicorn, on PostgreSQL and Redis, over loopback.

    python bench/bench_webhook.py [--posts 5000] [--concurrency 100] [--servers 4x4]

A bounded load: ``--posts`` BatchList notifications, ``--concurrency`` at a time on keep-alive
connections, from one asyncio client in this process; then it stops. Each names a new URI the
app can serve (``Batch/Subscription/{k}?correlationID=...`` of the ``local`` custodian, for one
of the 100 connections the run creates), so each is checked, recorded and its download queued;
the per-source limit on new URIs is raised for the run (it would refuse most of them) and
counted in Redis as in production. Each server configuration (``WORKERSxTHREADS``) runs twice
in the same run: a baseline WSGI app that reads the body and answers 200 (what gunicorn, the
machine and this client cost: the floor), then the third-party app. Printed: requests/s,
p50/p90/p99/max latency, errors, the ratio of the app's p99 to the baseline's, where the two
cores' time went during the run (this client, gunicorn, the rest: PostgreSQL, Redis and
anything else running), and that every notification was recorded once and queued once.
``--profile`` adds where the app's time goes per request (cProfile, in-process).

Needs PostgreSQL (``BENCH_POSTGRES``, an admin URL; a database is created and dropped) and
Redis (``BENCH_REDIS``: a database number of its own, emptied before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_ingest import database, header  # noqa: E402

REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
RESOURCE = "http://127.0.0.1:5001/GreenButtonConnect/espi/1_1/resource"  # the `local` profile
PATH = "/espi/1_1/Notification"
CONNECTIONS = 100
#: gunicorn's access log, as the Procfile keeps it (there on stdout)
ACCESS_LOG = HERE / "out" / "webhook-access.log"


def baseline(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The least a webhook does: read the body, answer 200."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


def stage(name: str) -> Any:
    """The third-party app with its webhook cut short, for the floors under the same server:
    ``flask`` sends the post through Flask and the app's own hooks to a view that reads the
    body and answers 200 (what the webhook would cost as a Flask view, before any work);
    ``checks`` is the webhook's own door reading the BatchList and checking its URIs, with
    nothing recorded (no database, no queue)."""
    from flask import Response, request

    from thirdparty_app import create_app, webhook
    from thirdparty_app.accounts import webhook as machines_post

    app = create_app()
    door = app.wsgi_app
    assert isinstance(door, webhook.Door)
    if name == "flask":

        @machines_post
        def flask_floor() -> Response:
            request.get_data(cache=False)
            return Response(status=200)

        app.wsgi_app = door.inner  # type: ignore[method-assign]
        app.add_url_rule(PATH, "flask_floor", flask_floor, methods=["POST"])
    else:

        def answered(announced: webhook.Announcement) -> None:
            announced.answer = Response(status=200)

        door.batches.record = answered  # type: ignore[method-assign]
    return app


STAGES = {
    "baseline": "bench_webhook:baseline",
    "flask": "bench_webhook:stage('flask')",
    "checks": "bench_webhook:stage('checks')",
    "webhook": "thirdparty_app:create_app()",
}


def bodies(n: int, run: str) -> list[bytes]:
    import espi

    return [
        espi.dumps(espi.BatchList(resources=[
            f"{RESOURCE}/Batch/Subscription/{i % CONNECTIONS + 1}?correlationID={run}-{i}"]))
        for i in range(n)
    ]  # fmt: skip


def add_connections(app: Any) -> None:
    """An account with the connections whose subscriptions the posts name."""
    from thirdparty_app import db as tp
    from thirdparty_app.accounts import create_account

    with app.app_context():
        s = tp.session()
        owner = create_account("bench@example.com", secrets.token_urlsafe(16))
        s.add_all(
            tp.Connection(account_id=owner.id, profile="local", status="active",
                          subscription_uri=f"{RESOURCE}/Batch/Subscription/{k}")
            for k in range(1, CONNECTIONS + 1)
        )  # fmt: skip
        s.commit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(
    target: str, workers: int, threads: int, env: dict[str, str]
) -> Iterator[tuple[int, int]]:
    """``target`` served by gunicorn (gthread workers) on a loopback port, stopped after."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
           "--bind", f"127.0.0.1:{port}", "--pythonpath", f"{HERE.parent},{HERE}",
           "--log-level", "warning", "--backlog", "2048", "--access-logfile", str(ACCESS_LOG),
           "--forwarded-allow-ips", "127.0.0.1", target]  # fmt: skip
    server = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=HERE.parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"gunicorn did not start: {' '.join(cmd)}")
            time.sleep(0.2)
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(30)


async def post_all(port: int, posts: list[bytes], concurrency: int) -> tuple[list[float], int]:
    """Send every post, ``concurrency`` at a time on keep-alive connections; latencies of the
    200s (seconds) and the count of anything else (status, timeout, broken connection)."""
    todo = iter(posts)
    latencies: list[float] = []
    errors = 0

    async def one_connection() -> None:
        nonlocal errors
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for body in todo:
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                status, close = await asyncio.wait_for(exchange(*conn, body), 30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                conn = None
                continue
            if status == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
            if close:
                conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return latencies, errors


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[int, bool]:
    writer.write(
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/atom+xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length, close = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            close = True
    await reader.readexactly(length)
    return status, close


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (those gone count nothing)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """A process and its children (gunicorn's master and workers)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry))
    return [pid, *kids]


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def backends(url: str) -> list[int]:
    """The PostgreSQL server processes of the bench's database, and Redis's."""
    import psycopg
    import redis

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres") as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))]  # fmt: skip
    client = redis.Redis.from_url(REDIS)
    pids.append(int(client.info("server")["process_id"]))
    client.close()
    return pids


def measure(
    port: int, pid: int, url: str, posts: list[bytes], concurrency: int
) -> dict[str, float]:
    asyncio.run(post_all(port, posts[:200], min(concurrency, 20)))  # warm-up, not counted
    server, stores = family(pid), backends(url)
    cpu0, served0, stored0, busy0 = (time.process_time(), cpu_seconds(server),
                                     cpu_seconds(stores), machine_busy())  # fmt: skip
    t0 = time.perf_counter()
    latencies, errors = asyncio.run(post_all(port, posts[200:], concurrency))
    elapsed = time.perf_counter() - t0
    client, gunicorn_cpu = time.process_time() - cpu0, cpu_seconds(server) - served0
    stored = cpu_seconds(stores) - stored0
    busy = machine_busy() - busy0
    return {
        "elapsed": elapsed,
        "client": client,
        "server": gunicorn_cpu,
        "stores": stored,
        "rest": max(0.0, busy - client - gunicorn_cpu - stored),
        "rate": (len(latencies) + errors) / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p90": percentile(latencies, 90) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "max": max(latencies, default=0) * 1000,
        "errors": errors,
    }


def app_env(url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "DATABASE_URL": url,
        "THIRDPARTY_QUEUE_URL": REDIS,
        "THIRDPARTY_SECRET_KEY": secrets.token_hex(32),
        "THIRDPARTY_TOKEN_KEY": Fernet.generate_key().decode(),
        "THIRDPARTY_DOCUMENTS": str(HERE / "out" / "webhook-documents"),
        "THIRDPARTY_BASE_URL": "http://127.0.0.1:9",  # password-reset links: none are sent
        "THIRDPARTY_RATE_LIMIT_STORAGE": REDIS,
        "THIRDPARTY_NOTIFICATION_LIMIT": "1000000 per minute",
    }


def recorded(url: str) -> tuple[int, int]:
    """Notifications recorded, and jobs waiting in the Redis queue."""
    import psycopg
    import redis

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        notes = conn.execute("SELECT count(*) FROM notification").fetchone()[0]  # type: ignore[index]
    client = redis.Redis.from_url(REDIS)
    queued = sum(int(client.llen(key)) for key in client.scan_iter("*thirdparty*"))  # type: ignore[arg-type]
    client.close()
    return int(notes), queued


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    client.close()


def profile(url: str, n: int) -> None:
    """Where the app's time goes per notification (in-process, Flask's test client)."""
    import cProfile
    import io
    import pstats

    from thirdparty_app import create_app

    env = app_env(url)
    keys = (
        "SECRET_KEY",
        "TOKEN_KEY",
        "DOCUMENTS",
        "BASE_URL",
        "RATE_LIMIT_STORAGE",
        "NOTIFICATION_LIMIT",
    )
    app = create_app({"DATABASE_URL": url, "QUEUE_URL": REDIS,
                      **{k: env[f"THIRDPARTY_{k}"] for k in keys}})  # fmt: skip
    client = app.test_client()
    posts = bodies(n + 50, f"profile{secrets.token_hex(3)}")
    for body in posts[:50]:
        client.post(PATH, data=body)
    found = cProfile.Profile()
    found.enable()
    for body in posts[50:]:
        client.post(PATH, data=body)
    found.disable()
    stats = pstats.Stats(found, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    shares: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        shares[part(file, name)] = shares.get(part(file, name), 0.0) + tt
    print(f"\nin-process profile (Flask's test client, one at a time: no batches), "
          f"{n} notifications: {total / n * 1000:.2f} ms CPU each, by where the time is "
          "spent:")  # fmt: skip
    for where, tt in sorted(shares.items(), key=lambda kv: kv[1], reverse=True)[:10]:
        print(f"  {tt / total:>6.1%}  {tt / n * 1000:>6.2f} ms  {where}")
    app.extensions["appkit.engine"].dispose()


PARTS = {  # where a profiled function's time counts
    "wait": "waiting for PostgreSQL (round trips, commit)",
    "sqlalchemy": "SQLAlchemy (Core: statements, pool, results)",
    "psycopg": "psycopg",
    "flask": "Flask, Werkzeug (routing, request, response)",
    "werkzeug": "Flask, Werkzeug (routing, request, response)",
    "flask_login": "Flask-Login, Flask-WTF (the app's before-request hooks)",
    "flask_wtf": "Flask-Login, Flask-WTF (the app's before-request hooks)",
    "espi": "espi.parse (the BatchList)",
    "lxml": "espi.parse (the BatchList)",
    "huey": "Huey (queueing the download)",
    "limits": "limits (the per-source limit)",
    "redis": "redis-py (the limit and the queue)",
    "thirdparty_app": "the app's own code",
    "appkit": "the app's own code",
}


def part(file: str, name: str) -> str:
    if "psycopg" in file and name == "wait":
        return PARTS["wait"]
    for key, label in PARTS.items():
        if f"/{key}/" in file:
            return label
    return "Python and the rest (socket, logging, built-ins)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--servers", default="4x16", help="gunicorn WORKERSxTHREADS, a list")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="what serves the posts, a list: " + ", ".join(STAGES))  # fmt: skip
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    logging.disable(logging.INFO)  # the apps' and the stand-in's request logs
    print(header())
    print(f"{args.posts:,} notifications, {args.concurrency} at a time (after 200 to warm up), "
          "loopback, PostgreSQL + Redis queue")  # fmt: skip
    from appkit import database as appdb
    from thirdparty_app import MIGRATIONS, create_app

    flush_redis()
    ACCESS_LOG.parent.mkdir(exist_ok=True)
    ACCESS_LOG.unlink(missing_ok=True)
    with database("postgresql", HERE) as url:
        env = app_env(url)
        migrate = create_app({"TESTING": True, "DATABASE_URL": url, "QUEUE_URL": REDIS})
        with migrate.app_context():
            appdb.upgrade(migrate, MIGRATIONS)
        add_connections(migrate)
        migrate.extensions["appkit.engine"].dispose()
        print(f"{'server':<8}{'app':<10}{'req/s':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
              f"{'max ms':>8}{'errors':>7}{'p99 x base':>11}{'CPU ms/req':>11}{'PG+Redis':>9}"
              f"  share of the cores' time: client, gunicorn, PG + Redis, the rest")  # fmt: skip
        for n, config in enumerate(args.servers.split(",")):
            workers, threads = (int(x) for x in config.split("x"))
            posts = bodies(args.posts + 200, f"{n}-{secrets.token_hex(3)}")
            results = {}
            for label in args.stages.split(","):
                with gunicorn(STAGES[label], workers, threads, env) as (port, pid):
                    got = results[label] = measure(port, pid, url, posts, args.concurrency)
                cores = got["elapsed"] * (os.cpu_count() or 1) / 100
                sent = len(posts) - 200
                base = results.get("baseline", got)["p99"]
                print(f"{config:<8}{label:<10}{got['rate']:>7.0f}{got['p50']:>8.1f}{got['p90']:>8.1f}"
                      f"{got['p99']:>8.1f}{got['max']:>8.1f}{got['errors']:>7}"
                      f"{got['p99'] / base:>11.1f}{got['server'] / sent * 1000:>11.2f}"
                      f"{got['stores'] / sent * 1000:>9.2f}  "
                      + ", ".join(f"{got[k] / cores:.0f} %"
                                  for k in ("client", "server", "stores", "rest")))  # fmt: skip
            if "webhook" in results:
                notes, queued = recorded(url)
                print(f"{'':<8}recorded {notes:,} notification(s), {queued:,} download(s) queued "
                      f"(posted to it so far: {(n + 1) * (args.posts + 200):,})")  # fmt: skip
        if args.profile:
            profile(url, 500)
    flush_redis()


if __name__ == "__main__":
    main()
