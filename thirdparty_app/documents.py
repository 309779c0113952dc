"""Kept documents: everything ingested (a custodian's download, a provider's feed written as
Green Button XML, an uploaded file) is first kept gzipped under DOCUMENTS, named by the SHA-256
of its content, written to a temporary file and renamed only when complete; then recorded."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from flask import current_app

from . import db


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


@contextlib.contextmanager
def keeping() -> Iterator[Keeper]:
    """Write a document through the yielded Keeper; on success it is kept (``keeper.kept``),
    on failure nothing is left behind."""
    folder = current_app.config["DOCUMENTS"]
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
            keeper = Keeper(out)  # type: ignore[arg-type]
            yield keeper
        sha = keeper.digest.hexdigest()
        path = os.path.join(folder, f"{sha}.xml.gz")
        os.replace(tmp, path)
        keeper.done = Kept(path, sha, keeper.size)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
