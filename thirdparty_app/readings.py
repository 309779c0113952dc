"""Readings and block records written in bulk, inside the session's transaction, the fastest
way each database offers:

- SQLite: one prepared ``INSERT ... ON CONFLICT DO UPDATE`` run over plain tuples
  (``executemany``: compiled once, no per-row Python in SQLAlchemy);
- PostgreSQL: ``COPY`` into a temporary staging table (dropped at commit), then one
  ``INSERT ... SELECT ... ORDER BY key ON CONFLICT DO UPDATE``; rows equal to the stored ones
  are left alone (``IS DISTINCT FROM``: no dead tuples), and every transaction locks rows in key
  order, so two documents that share readings wait for each other instead of deadlocking.

A reading row is ``(meter_reading_id, start, seq, duration, value, cost, quality, tou)``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

COLUMNS = ("meter_reading_id", "start", "seq", "duration", "value", "cost", "quality", "tou")
KEY, UPDATED = COLUMNS[:3], COLUMNS[3:]
NAMES = ", ".join(COLUMNS)
SET = ", ".join(f"{c} = excluded.{c}" for c in UPDATED)

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
    MERGE = (
        f"INSERT INTO reading ({NAMES}) SELECT {NAMES} FROM reading_stage"  # noqa: S608 - fixed names
        f" ORDER BY {', '.join(KEY)} ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {SET}"
        f" WHERE ({', '.join('reading.' + c for c in UPDATED)})"
        f" IS DISTINCT FROM ({', '.join('excluded.' + c for c in UPDATED)})"
    )

    def __init__(self, s: Session) -> None:
        super().__init__(s)
        self.staging = False

    def write(self, rows: list[Row]) -> None:
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cur:
            if not self.staging:
                cur.execute("CREATE TEMP TABLE reading_stage (LIKE reading) ON COMMIT DROP")
                self.staging = True
            with cur.copy(f"COPY reading_stage ({NAMES}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(self.MERGE)
            cur.execute("TRUNCATE reading_stage")


def writer(s: Session) -> Writer:
    dialect = s.get_bind().dialect.name
    return PostgresWriter(s) if dialect == "postgresql" else SqliteWriter(s)
