"""Kept documents: everything ingested (a custodian's download, a provider's feed written as
Green Button XML, an uploaded file) is first kept gzipped under DOCUMENTS, named by the SHA-256
of its content, written to a ``.partial`` file and renamed only when complete; then recorded.

A ``.partial`` file is locked (``flock``) by the process writing it, so a worker that starts
removes only the orphans of processes that died (:func:`remove_orphans`)."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import current_app

from . import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kept:
    path: str
    sha256: str
    size: int  # uncompressed bytes


class Keeper:
    """A binary writer that compresses, counts and hashes what is written through it;
    ``kept`` says where the file is once it is complete."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0
        self.done: Kept | None = None

    @property
    def kept(self) -> Kept:
        if self.done is None:
            raise RuntimeError("the document is not complete (read kept after the with block)")
        return self.done

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)


@dataclass(frozen=True)
class Partial:
    """A file being written: ``file``, locked, at ``path``; :meth:`done` renames it."""

    file: IO[bytes]
    path: str

    def done(self, final: str) -> None:
        self.file.flush()
        os.replace(self.path, final)  # still locked: never taken for an orphan


def folder(*parts: str) -> str:
    path = os.path.join(current_app.config["DOCUMENTS"], *parts)
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def partial(where: str) -> Iterator[Partial]:
    """A new ``.partial`` file in ``where``, open for writing and locked until closed; removed
    unless :meth:`Partial.done` renamed it."""
    for _ in range(3):
        fd, tmp = tempfile.mkstemp(dir=where, suffix=".partial")
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:  # not removed as an orphan between its creation and the lock
            break
        os.close(fd)
    else:
        raise RuntimeError(f"cannot keep a new file in {where}")
    f = os.fdopen(fd, "wb")
    try:
        yield Partial(f, tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        f.close()


@contextlib.contextmanager
def keeping() -> Iterator[Keeper]:
    """Write a document through the yielded Keeper; on success it is kept (``keeper.kept``),
    on failure nothing is left behind."""
    where = folder()
    with partial(where) as p:
        with gzip.GzipFile(fileobj=p.file, mode="wb") as out:
            keeper = Keeper(out)  # type: ignore[arg-type]
            yield keeper
        sha = keeper.digest.hexdigest()
        path = os.path.join(where, f"{sha}.xml.gz")
        p.done(path)
        keeper.done = Kept(path, sha, keeper.size)


def remove_orphans() -> int:
    """Remove the ``.partial`` files under DOCUMENTS no living process is writing (a download
    or an upload killed halfway); how many."""
    removed = 0
    for path in Path(current_app.config["DOCUMENTS"]).rglob("*.partial"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # being written
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed += 1
        finally:
            os.close(fd)
    if removed:
        log.info("removed %d orphan .partial file(s)", removed)
    return removed


def record(profile: str, uri: str, conn: db.Connection | None, kept: Kept) -> db.Document:
    """The Document row of a kept file (committed, so a crash before ingestion is recovered)."""
    doc = db.Document(
        uri=uri,
        profile=profile,
        connection_id=conn.id if conn else None,
        path=kept.path,
        sha256=kept.sha256,
        size=kept.size,
    )
    db.session().add(doc)
    db.session().commit()
    return doc
