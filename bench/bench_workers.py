"""Benchmark: ingestion throughput with 1, 2 and 4 queue workers (separate processes, Redis
queue, PostgreSQL), many customers' documents at once.

    python bench/bench_workers.py [--customers 16] [--days 365] [--workers 1,2,4]

Each customer has a connection and a subscription document (one meter, ``--days`` of 15-minute
readings) at a loopback stand-in custodian (``bench/stub.py``). For each worker count, in a new
database: the workers start (one job at a time each), every document is announced at once
(a notification each, as a custodian's BatchList would), and the clock runs until every
notification is done — download, keeping and ingestion included. Printed: readings/s and the
speed-up over one worker measured in the same run. Needs PostgreSQL (``BENCH_POSTGRES``) and
Redis (``BENCH_REDIS``, a database of its own: emptied).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import stub  # noqa: E402
from bench_ingest import database, header  # noqa: E402
from bench_webhook import REDIS, flush_redis  # noqa: E402
from feeds import write_feed  # noqa: E402


def documents(customers: int, days: int) -> dict[str, Path]:
    """Each customer's subscription document (generated once, hrefs relative to a base that
    is filled in when served)."""
    folder = HERE / "out" / f"workers_{customers}c_{days}d"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for sub in range(1, customers + 1):
        path = folder / f"subscription{sub}.xml"
        if not path.exists():
            write_feed(path, meters=1, days=days, subscriptions=[sub], base="{{BASE}}")
        out[f"{stub.RESOURCE}/Batch/Subscription/{sub}"] = path
    return out


def served(templates: dict[str, Path], base: str, folder: Path) -> dict[str, Path]:
    """The documents with the stand-in's origin in their hrefs."""
    out = {}
    for path, template in templates.items():
        target = folder / template.name
        target.write_text(template.read_text().replace("{{BASE}}", base + stub.RESOURCE))
        out[path] = target
    return out


def run(workers: int, templates: dict[str, Path], folder: Path) -> tuple[float, int]:
    """Seconds from the announcements to the last document ingested, and readings stored."""
    from sqlalchemy import func, select

    from appkit import database as appdb
    from thirdparty_app import MIGRATIONS, create_app
    from thirdparty_app import db as tp

    paths: dict[str, Path] = {}
    server = stub.serve(paths)
    paths.update(served(templates, server.base, folder))
    flush_redis()
    with database("postgresql", folder) as url:
        kept = str(folder / f"kept{workers}")
        config = {"DATABASE_URL": url, "QUEUE_URL": REDIS, "SECRET_KEY": "bench",
                  "TOKEN_KEY": "0" * 43 + "=", "DOCUMENTS": kept}  # fmt: skip
        app = create_app({"TESTING": True, **config,
                          "CUSTODIANS": {"remote": stub.profile(server.base)}})  # fmt: skip
        with app.app_context():
            appdb.upgrade(app, MIGRATIONS)
            stub.customers(server.base, range(1, len(paths) + 1))
        logs = [folder / f"worker{workers}-{n}.log" for n in range(workers)]
        files = [open(log, "wb") for log in logs]  # noqa: SIM115 - closed below
        procs = [stub.worker(stub.environment(config, server.base), 1, f) for f in files]
        try:
            stub.started(logs, workers)
            with app.app_context():
                t0 = time.perf_counter()
                stub.notify(server.base, list(paths))
                s = appdb.session()
                done = select(func.count()).where(tp.Notification.status == "done")
                while s.scalar(done) < len(paths):
                    time.sleep(0.05)
                    s.rollback()
                elapsed = time.perf_counter() - t0
                stored = s.scalar(select(func.count()).select_from(tp.Reading))
                failed = s.scalar(select(func.count()).where(tp.Notification.status == "failed"))
                appdb.close_session(None)
            if failed:
                raise SystemExit(f"{failed} notification(s) failed: see {logs}")
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
            for f in files:
                f.close()
            server.close()
            app.extensions["appkit.engine"].dispose()
    flush_redis()
    return elapsed, int(stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=16)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    logging.disable(logging.INFO)  # the apps' and the stand-in's request logs
    print(header())
    templates = documents(args.customers, args.days)
    expected = args.customers * args.days * 96
    print(f"{args.customers} customers' documents, {expected:,} readings in all; {os.cpu_count()}"
          " CPU(s) for the workers, PostgreSQL, Redis and this process")  # fmt: skip
    print(f"{'workers':>8}{'s':>9}{'readings/s':>13}{'x 1 worker':>12}")
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (int(x) for x in args.workers.split(",")):
            elapsed, stored = run(workers, templates, Path(tmp))
            assert stored == expected, (stored, expected)
            rate = stored / elapsed
            first = first or rate
            print(f"{workers:>8}{elapsed:>9.2f}{rate:>13,.0f}{rate / first:>12.2f}")


if __name__ == "__main__":
    main()
