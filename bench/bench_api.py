"""Benchmark: the JSON API's readings route against a plain query and JSON dump of the same
rows, on SQLite and PostgreSQL.

    python bench/bench_api.py [--meters 1] [--repeat 5]

A year of 15-minute readings per meter is ingested by the app; then, each in a fresh process,
best of ``--repeat``: ``GET /api/usage-points/1/readings`` (through the whole app: the API key
checked, the usage point looked up, readings or sums per local hour or day in SQL, JSON), and
the baseline: the same readings (or a plain ``GROUP BY`` of them) fetched with the driver and
dumped as the same JSON points.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_ingest import database, header, kept, run  # noqa: E402

AGGREGATES = ("none", "hour", "day")
ISO = "%Y-%m-%dT%H:%M:%SZ"


def best(repeat: int, fn: Any) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def api(url: str, aggregate: str, repeat: int) -> dict[str, float]:
    import logging

    from appkit import database as appdb
    from thirdparty_app import create_app
    from thirdparty_app import db as tp
    from thirdparty_app.accounts import new_api_key

    logging.disable(logging.INFO)
    folder = tempfile.mkdtemp()
    app = create_app({"TESTING": True, "DATABASE_URL": url, "DOCUMENTS": folder,
                      "QUEUE_URL": f"sqlite:///{folder}/q.sqlite"})  # fmt: skip
    with app.app_context():
        s = appdb.session()
        key = new_api_key(s.scalar(tp.select(tp.Account)), "bench")  # type: ignore[attr-defined]
        up = s.scalar(tp.select(tp.UsagePoint.id))  # type: ignore[attr-defined]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    path = f"/api/usage-points/{up}/readings?aggregate={aggregate}"

    def get() -> None:
        r = client.get(path, headers=headers)
        assert r.status_code == 200, r.text[:300]

    get()
    points = sum(len(s["points"]) for s in client.get(path, headers=headers).json["series"])
    return {"seconds": best(repeat, get), "points": points}


def plain(url: str, aggregate: str, repeat: int) -> dict[str, float]:
    """The driver's query and ``json.dumps`` of the same points (UTC buckets)."""
    size = {"hour": 3600, "day": 86400}.get(aggregate)
    sums = ", ".join(f"CAST(sum({c}) AS BIGINT)" for c in ("duration", "value", "cost"))
    sql = (
        f"SELECT start / {size} * {size}, {sums} FROM reading WHERE meter_reading_id = 1"  # noqa: S608
        f" GROUP BY start / {size} ORDER BY 1"
        if size
        else "SELECT start, duration, value, cost FROM reading WHERE meter_reading_id = 1"
        " ORDER BY start, seq"
    )
    if url.startswith("sqlite"):
        import sqlite3

        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
    else:
        import psycopg

        conn = psycopg.connect(url.replace("+psycopg", ""))
    out = {}

    def dump() -> None:
        points = [
            {"start": time.strftime(ISO, time.gmtime(t)), "duration": d,
             "value": None if v is None else v * 1.0,
             "cost": None if c is None else c / 100000}
            for t, d, v, c in conn.execute(sql).fetchall()
        ]  # fmt: skip
        out["body"] = json.dumps({"series": [{"points": points}]})
        out["points"] = len(points)

    dump()
    seconds = best(repeat, dump)
    conn.close()
    return {"seconds": seconds, "points": out["points"]}


def analyze(url: str) -> None:
    """PostgreSQL's statistics of the readings, as autovacuum makes them within a minute of an
    ingestion (the measurement is of the API in steady state: right after the ingestion the
    planner believes the table holds 185 rows, not 35,040, and sorts the 35,040 for a
    GROUP BY it would hash: 8.7 ms against 6.1 for the daily sums, 5.3 against 5.8 for the
    plain query)."""
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("ANALYZE")


def child(args: list[str]) -> None:
    what, url, aggregate, repeat = args
    print(json.dumps((api if what == "api" else plain)(url, aggregate, int(repeat))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(header())
    path, sha, size, expected = kept(args.meters)
    print(f"a usage point with {expected:,} readings (a year of 15-minute readings)")
    print(f"{'database':<12}{'aggregate':<11}{'points':>8}{'plain ms':>10}{'API ms':>9}"
          f"{'x plain':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases.split(","):
            with database(kind, Path(tmp)) as url:
                run("first", url, str(path), sha, str(size))
                if kind == "postgresql":
                    analyze(url)
                for aggregate in AGGREGATES:
                    base = run("plain", url, aggregate, str(args.repeat), script=__file__)
                    got = run("api", url, aggregate, str(args.repeat), script=__file__)
                    ms, plain_ms = got["seconds"] * 1000, base["seconds"] * 1000
                    print(f"{kind:<12}{aggregate:<11}{got['points']:>8,}{plain_ms:>10.1f}"
                          f"{ms:>9.1f}{ms / plain_ms:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
