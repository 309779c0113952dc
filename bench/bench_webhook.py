"""Benchmark: the Notification webhook under gunicorn, on PostgreSQL and Redis, over loopback.

    python bench/bench_webhook.py [--posts 5000] [--concurrency 100] [--servers 4x4]

A bounded load: ``--posts`` BatchList notifications (each a new Subscription URI of the
``local`` custodian, so each is recorded and its download queued), ``--concurrency`` at a time
on keep-alive connections, from one asyncio client in this process; then it stops. Each server
configuration (``WORKERSxTHREADS``) runs twice in the same run: a baseline WSGI app that reads
the body and answers 200 (what gunicorn and this client cost), then the third-party app.
Printed: requests/s, p50/p90/p99/max latency, errors, the ratio of the app's p99 to the
baseline's, and that every notification was recorded once and queued once. ``--profile`` adds
where the app's time goes per request (cProfile, in-process).

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


def baseline(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The least a webhook does: read the body, answer 200."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


def bodies(n: int, run: str) -> list[bytes]:
    import espi

    return [
        espi.dumps(espi.BatchList(resources=[f"{RESOURCE}/Batch/Subscription/{run}-{i}"]))
        for i in range(n)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(target: str, workers: int, threads: int, env: dict[str, str]) -> Iterator[int]:
    """``target`` served by gunicorn (gthread workers) on a loopback port, stopped after."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
           "--bind", f"127.0.0.1:{port}", "--pythonpath", f"{HERE.parent},{HERE}",
           "--log-level", "warning", "--backlog", "2048", target]  # fmt: skip
    server = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=HERE.parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"gunicorn did not start: {' '.join(cmd)}")
            time.sleep(0.2)
        yield port
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


def measure(port: int, posts: list[bytes], concurrency: int) -> dict[str, float]:
    asyncio.run(post_all(port, posts[:200], min(concurrency, 20)))  # warm-up, not counted
    t0 = time.perf_counter()
    latencies, errors = asyncio.run(post_all(port, posts[200:], concurrency))
    elapsed = time.perf_counter() - t0
    return {
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
    keys = ("SECRET_KEY", "TOKEN_KEY", "DOCUMENTS", "BASE_URL")
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
    print(f"\nin-process profile (Flask's test client), {n} notifications: "
          f"{total / n * 1000:.2f} ms CPU each, by where the time is spent:")  # fmt: skip
    for where, tt in sorted(shares.items(), key=lambda kv: kv[1], reverse=True)[:10]:
        print(f"  {tt / total:>6.1%}  {tt / n * 1000:>6.2f} ms  {where}")
    app.extensions["appkit.engine"].dispose()


PARTS = {  # where a profiled function's time counts
    "wait": "waiting for PostgreSQL (round trips, commit)",
    "sqlalchemy": "SQLAlchemy (ORM session, compiling, results)",
    "psycopg": "psycopg",
    "flask": "Flask, Werkzeug (routing, request, response)",
    "werkzeug": "Flask, Werkzeug (routing, request, response)",
    "flask_login": "Flask-Login, Flask-WTF (the app's before-request hooks)",
    "flask_wtf": "Flask-Login, Flask-WTF (the app's before-request hooks)",
    "espi": "espi.parse (the BatchList)",
    "lxml": "espi.parse (the BatchList)",
    "huey": "Huey + Redis (queueing the download)",
    "redis": "Huey + Redis (queueing the download)",
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
    parser.add_argument("--servers", default="4x4", help="gunicorn WORKERSxTHREADS, a list")
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
    with database("postgresql", HERE) as url:
        env = app_env(url)
        migrate = create_app({"TESTING": True, "DATABASE_URL": url, "QUEUE_URL": REDIS})
        with migrate.app_context():
            appdb.upgrade(migrate, MIGRATIONS)
        migrate.extensions["appkit.engine"].dispose()
        print(f"{'server':<10}{'app':<12}{'req/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
              f"{'max ms':>9}{'errors':>8}{'p99 x base':>12}")  # fmt: skip
        for n, config in enumerate(args.servers.split(",")):
            workers, threads = (int(x) for x in config.split("x"))
            posts = bodies(args.posts + 200, f"{n}-{secrets.token_hex(3)}")
            results = {}
            for label, target in (("baseline", "bench_webhook:baseline"),
                                  ("webhook", "thirdparty_app:create_app()")):  # fmt: skip
                with gunicorn(target, workers, threads, env) as port:
                    got = results[label] = measure(port, posts, args.concurrency)
                print(f"{config:<10}{label:<12}{got['rate']:>8.0f}{got['p50']:>9.1f}{got['p90']:>9.1f}"
                      f"{got['p99']:>9.1f}{got['max']:>9.1f}{got['errors']:>8}"
                      f"{got['p99'] / results['baseline']['p99']:>12.1f}")  # fmt: skip
            notes, queued = recorded(url)
            print(f"{'':<10}recorded {notes:,} notification(s), {queued:,} download(s) queued "
                  f"(sent so far: {(n + 1) * (args.posts + 200):,})")  # fmt: skip
        if args.profile:
            profile(url, 500)
    flush_redis()


if __name__ == "__main__":
    main()
