"""Readings and block records written in bulk, inside the session's transaction, the fastest
way each database offers:

- SQLite: one prepared ``INSERT ... ON CONFLICT DO UPDATE`` run over plain tuples
  (``executemany``: compiled once, no per-row Python in SQLAlchemy);
- PostgreSQL (15 or newer): ``COPY`` into a temporary staging table (dropped at commit), then
  one ``MERGE``: new rows are plain inserts (``INSERT ... ON CONFLICT`` costs a speculative
  insertion per row: 6.5 s against 1.7 s for 700,800 rows here), rows equal to the stored ones
  are left alone (no dead tuples).

Writers of one connection's rows take turns (:func:`guard`), so a MERGE never meets a row
another transaction is inserting. A reading row is
``(meter_reading_id, start, seq, duration, value, cost, quality, tou)``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

COLUMNS = ("meter_reading_id", "start", "seq", "duration", "value", "cost", "quality", "tou")
KEY, UPDATED = COLUMNS[:3], COLUMNS[3:]
NAMES = ", ".join(COLUMNS)
SET = ", ".join(f"{c} = excluded.{c}" for c in UPDATED)  # SQLite's upsert

Row = tuple[Any, ...]


class Writer:
    """The statements both databases share; :func:`writer` picks the dialect's class."""

    P = "?"  # the driver's parameter mark

    def __init__(self, s: Session) -> None:
        self.conn = s.connection()

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        found = self.conn.exec_driver_sql(sql.replace("?", self.P), tuple(params))
        return [tuple(r) for r in found]

    def run_many(self, sql: str, rows: Sequence[Row]) -> None:
        if rows:
            self.conn.exec_driver_sql(sql.replace("?", self.P), list(rows))

    def records(self, mr_id: int, lo: int, hi: int) -> list[Row]:
        """The block records of a meter reading whose span meets [lo, hi): (start, stop,
        digest), by start."""
        return self.run(
            "SELECT start, stop, digest FROM reading_block"
            " WHERE meter_reading_id = ? AND stop > ? AND start < ? ORDER BY start",
            (mr_id, lo, hi),
        )

    def stored(self, mr_id: int, lo: int, hi: int) -> list[Row]:
        """A meter reading's stored reading rows with a start in [lo, hi)."""
        return self.run(
            f"SELECT {NAMES} FROM reading WHERE meter_reading_id = ? AND start >= ? AND start < ?"  # noqa: S608 - fixed names
            " ORDER BY start, seq",
            (mr_id, lo, hi),
        )

    def extra_readings(self, mr_ids: Iterable[int]) -> list[Row]:
        """(meter reading, start, seq) of the stored readings with ``seq > 0`` (the partial
        index holds only those) of some meter readings."""
        ids = sorted(set(mr_ids))
        marks = ", ".join("?" * len(ids))
        return self.run(
            "SELECT meter_reading_id, start, seq FROM reading"  # noqa: S608 - marks only
            f" WHERE seq > 0 AND meter_reading_id IN ({marks})",
            ids,
        )

    def delete_readings(self, keys: Sequence[Row]) -> None:
        self.run_many(
            "DELETE FROM reading WHERE meter_reading_id = ? AND start = ? AND seq = ?", keys
        )

    def replace_records(self, removed: Sequence[Row], added: Sequence[Row]) -> None:
        """Drop block records by (meter reading, start); add (meter reading, start, stop,
        readings, digest)."""
        self.run_many("DELETE FROM reading_block WHERE meter_reading_id = ? AND start = ?", removed)
        self.run_many(
            "INSERT INTO reading_block (meter_reading_id, start, stop, readings, digest)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (meter_reading_id, start) DO UPDATE SET"
            " stop = excluded.stop, readings = excluded.readings, digest = excluded.digest",
            added,
        )

    def write(self, rows: list[Row]) -> None:
        """Insert or update reading rows (no two with one key)."""
        raise NotImplementedError


class SqliteWriter(Writer):
    UPSERT = (
        f"INSERT INTO reading ({NAMES}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608 - fixed names
        f" ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {SET}"
    )

    def write(self, rows: list[Row]) -> None:
        self.run_many(self.UPSERT, rows)


class PostgresWriter(Writer):
    P = "%s"
    MERGE = " ".join(
        (
            "MERGE INTO reading r USING reading_stage s ON",
            " AND ".join(f"r.{c} = s.{c}" for c in KEY),
            f"WHEN MATCHED AND ({', '.join('r.' + c for c in UPDATED)})",
            f"IS DISTINCT FROM ({', '.join('s.' + c for c in UPDATED)})",
            f"THEN UPDATE SET {', '.join(f'{c} = s.{c}' for c in UPDATED)}",
            f"WHEN NOT MATCHED THEN INSERT ({NAMES})",
            f"VALUES ({', '.join('s.' + c for c in COLUMNS)})",
        )
    )

    def __init__(self, s: Session) -> None:
        super().__init__(s)
        self.staging = False

    def write(self, rows: list[Row]) -> None:
        raw: Any = self.conn.connection.driver_connection  # the session's psycopg connection
        with raw.cursor() as cur:
            if not self.staging:
                cur.execute("CREATE TEMP TABLE reading_stage (LIKE reading) ON COMMIT DROP")
                # The MERGE probes the key's index once per staged row, whatever the planner
                # thinks of an unanalysed temporary table: a hash join would read the whole
                # readings table at every batch (300 ms against 100 ms for 20,000 rows beside
                # 700,000, and growing with the table). For this transaction only.
                cur.execute("SET LOCAL enable_hashjoin = off")
                cur.execute("SET LOCAL enable_mergejoin = off")
                self.staging = True
            with cur.copy(f"COPY reading_stage ({NAMES}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(self.MERGE)
            cur.execute("TRUNCATE reading_stage")


LOCKS = 64  # connections share this many advisory locks: a Bulk of thousands of customers
#            must not fill the server's lock table
LOCK_CLASS = 0x6553  # the first key of our advisory locks ("eS")


def guard(s: Session, connection_id: int | None) -> None:
    """On PostgreSQL, wait for the other transactions writing a connection's rows (``None``:
    every connection's, taken in one order) until this one ends. Writers of one meter
    reading's rows thus take turns, and a MERGE never meets a row another is inserting."""
    if s.get_bind().dialect.name != "postgresql":
        return
    if connection_id is not None:
        lock = {"c": LOCK_CLASS, "s": connection_id % LOCKS}
        s.execute(text("SELECT pg_advisory_xact_lock(:c, :s)"), lock)
        return
    s.execute(
        text(  # one round trip, in order
            f"DO $$ BEGIN FOR slot IN 0..{LOCKS - 1} LOOP"
            f" PERFORM pg_advisory_xact_lock({LOCK_CLASS}, slot); END LOOP; END $$"
        )
    )


def writer(s: Session) -> Writer:
    dialect = s.get_bind().dialect.name
    return PostgresWriter(s) if dialect == "postgresql" else SqliteWriter(s)
