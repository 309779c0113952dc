"""Benchmark: the third-party app's ingestion against the floor, on SQLite and PostgreSQL.

    python bench/bench_ingest.py [--meters 20] [--scales 1,2,4] [--databases sqlite,postgresql]

For each feed (``--meters`` × scale meters, a year of 15-minute readings with cost and quality,
kept gzipped as the app keeps documents), every run is a fresh process:

- **floor**: ``espi.iter_readings`` over the kept file into plain row tuples, then one raw
  ``executemany`` (SQLite) or ``COPY`` (PostgreSQL) of the same rows into a table of the
  readings' shape (same columns and primary key), in one transaction;
- **app: ingest**: ``thirdparty_app.ingest.ingest`` of the document into a migrated database
  (usage point, reading type, meter reading, readings, block records, one transaction);
- **app: re-ingest**: the same content delivered again (a new document row): proven unchanged
  by its hash and stamps, not read;
- **app: re-ingest, read in full**: the same, read anyway (``full=True``): every block proven
  unchanged by its digest, nothing written.

Times are wall-clock seconds (the database server's work counts); the ratio is to the floor of
the same feed and database, measured in the same run. The last table shows the cost per
million readings across scales (linear when it stays flat).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

PG = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
COLUMNS = "meter_reading_id, start, seq, duration, value, cost, quality, tou"
FLOOR_TABLE = (
    "CREATE TABLE floor_reading (meter_reading_id INTEGER NOT NULL, start BIGINT NOT NULL,"
    " seq INTEGER NOT NULL, duration INTEGER NOT NULL, value BIGINT, cost BIGINT,"
    " quality INTEGER, tou INTEGER, PRIMARY KEY (meter_reading_id, start, seq))"
)


def header() -> str:
    load = os.getloadavg()
    cpu = platform.processor() or platform.machine()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC} · {platform.node()} · {cpu}"
        f" · {os.cpu_count()} CPU(s), load {load[0]:.1f} · Python {platform.python_version()}\n"
        f"$ {' '.join([Path(sys.executable).name, *sys.argv])}"
    )


# --------------------------------------------------------------------------- runs (child side)


def rows_of(path: str) -> list[tuple[Any, ...]]:
    """The floor's parse: every reading of the kept file as a row tuple, ids by meter reading."""
    import espi  # imported before the clock starts (see floor)

    ids: dict[int, int] = {}
    out = []
    block: Any = None
    mr = 0
    with gzip.open(path, "rb") as f:
        for r in espi.iter_readings(f, espi.ParseOptions(warn=False)):
            if r.block is not block:
                block = r.block
                mr = ids.setdefault(id(block.meter_reading), len(ids) + 1)
            q = r.qualities
            quality = int(q[0]) if q else None
            out.append((mr, r.start, 0, r.duration or 0, r.value, r.cost, quality, r.tou))
    return out


def floor(url: str, path: str) -> dict[str, float]:
    import sqlite3

    import espi  # noqa: F401 - imports are not part of the floor
    from appkit.database import sqlite_pragmas

    if not url.startswith("sqlite"):
        import psycopg
    t0 = time.perf_counter()
    rows = rows_of(path)
    t1 = time.perf_counter()
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        sqlite_pragmas(conn, None)
        conn.execute(FLOOR_TABLE + " WITHOUT ROWID")
        insert = f"INSERT INTO floor_reading ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"  # noqa: S608
        with conn:
            conn.executemany(insert, rows)
        conn.close()
    else:
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            conn.execute(FLOOR_TABLE)
            with conn.cursor().copy(f"COPY floor_reading ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    t2 = time.perf_counter()
    return {"readings": len(rows), "parse": t1 - t0, "insert": t2 - t1, "seconds": t2 - t0}


def app_run(url: str, path: str, sha: str, size: int, how: str) -> dict[str, float]:
    """One ingestion by the app: ``first`` (sets the database up), ``again``, ``full``."""
    import logging

    from sqlalchemy import select

    from appkit import database
    from thirdparty_app import MIGRATIONS, create_app
    from thirdparty_app import db as tp
    from thirdparty_app.accounts import create_account
    from thirdparty_app.ingest import ingest

    logging.disable(logging.INFO)
    folder = tempfile.mkdtemp()
    app = create_app({"TESTING": True, "DATABASE_URL": url, "DOCUMENTS": folder,
                      "QUEUE_URL": f"sqlite:///{folder}/q.sqlite"})  # fmt: skip
    with app.app_context():
        s = database.session()
        if how == "first":
            database.upgrade(app, MIGRATIONS)
            owner = create_account("bench@example.com", "correct horse battery staple")
            s.add(tp.Connection(account_id=owner.id, profile="upload", status="active"))
            s.commit()
        conn = s.scalar(select(tp.Connection))
        doc = tp.Document(uri="file:bench", profile="upload", connection_id=conn.id, path=path,
                          sha256=sha, size=size)  # fmt: skip
        s.add(doc)
        s.commit()
        t0, c0 = time.perf_counter(), time.process_time()
        ingest(s, doc, full=how == "full")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        out = {"readings": doc.readings, "written": doc.written, "seconds": seconds, "cpu": cpu}
    app.extensions["appkit.engine"].dispose()
    shutil.rmtree(folder)
    return out


def child(args: list[str]) -> None:
    what, url, path, *rest = args
    if what == "floor":
        result = floor(url, path)
    else:
        result = app_run(url, path, rest[0], int(rest[1]), what)
    print(json.dumps(result))


def run(*args: str, script: str = __file__) -> dict[str, float]:
    """``script --child ARGS`` in a fresh process; the JSON it prints last."""
    out = subprocess.run([sys.executable, script, "--child", *args], capture_output=True,
                         text=True, check=False)  # fmt: skip
    if out.returncode:
        raise SystemExit(f"{args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the bench


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A new empty database (SQLite file or PostgreSQL database), removed afterwards."""
    if kind == "sqlite":
        path = folder / f"bench-{secrets.token_hex(4)}.sqlite"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    admin = psycopg.connect(PG, autocommit=True)
    name = f"bench_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def kept(meters: int) -> tuple[Path, str, int, int]:
    """The feed of ``meters`` meters kept gzipped (generated once): path, SHA-256 and size of
    the XML, readings."""
    from feeds import year_feed

    xml = year_feed(meters)
    gz = xml.with_suffix(".xml.gz")
    digest = hashlib.sha256()
    with open(xml, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if not gz.exists() or gz.stat().st_mtime < xml.stat().st_mtime:
        with open(xml, "rb") as f, gzip.open(gz, "wb", compresslevel=6) as z:
            shutil.copyfileobj(f, z, 1 << 20)
    return gz, digest.hexdigest(), xml.stat().st_size, meters * 365 * 96


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=20, help="meters of the 1x feed")
    parser.add_argument("--scales", default="1,2,4", help="feeds to run, as multiples of 1x")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(header())
    per_million: dict[tuple[str, str], list[str]] = {}
    scales = [int(x) for x in args.scales.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for scale in scales:
            path, sha, size, expected = kept(args.meters * scale)
            print(f"\n{scale}x: {args.meters * scale} meters, a year of 15-minute readings: "
                  f"{expected:,} readings, {size / 2**20:.0f} MiB "
                  f"({path.stat().st_size / 2**20:.0f} MiB gzipped)")  # fmt: skip
            print(f"{'database':<12}{'run':<32}{'s':>8}{'readings/s':>13}{'x floor':>9}")
            for kind in args.databases.split(","):
                with database(kind, Path(tmp)) as url:
                    base = run("floor", url, str(path))
                    assert base["readings"] == expected, base
                    print(f"{kind:<12}{'floor: parse':<32}{base['parse']:>8.2f}")
                    print(f"{'':<12}{'floor: insert' if kind == 'sqlite' else 'floor: COPY':<32}"
                          f"{base['insert']:>8.2f}")  # fmt: skip
                    line(kind, "floor", base, base)
                    per_million.setdefault((kind, "floor"), []).append(
                        f"{base['seconds'] / expected * 1e6:.2f}"
                    )
                    for how, label in (("first", "app: ingest"), ("again", "app: re-ingest"),
                                       ("full", "app: re-ingest, read in full")):  # fmt: skip
                        got = run(how, url, str(path), sha, str(size))
                        assert got["readings"] == expected, got
                        line(kind, label, got, base)
                        per_million.setdefault((kind, label), []).append(
                            f"{got['seconds'] / expected * 1e6:.2f}"
                        )
    print("\nseconds per million readings, by scale (" + ", ".join(f"{s}x" for s in scales) + ")")
    for (kind, label), values in per_million.items():
        print(f"{kind:<12}{label:<32}{'  '.join(f'{v:>6}' for v in values)}")


def line(kind: str, label: str, got: dict[str, float], base: dict[str, float]) -> None:
    rate = got["readings"] / got["seconds"] if got["seconds"] else float("inf")
    print(f"{'':<12}{label:<32}{got['seconds']:>8.2f}{rate:>13,.0f}"
          f"{got['seconds'] / base['seconds']:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
