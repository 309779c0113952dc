"""Uploads: a customer's Green Button file (Download My Data), shown like connected data.

The request streams the file to disk (under ``MAX_CONTENT_LENGTH``; never read whole into
memory), records an :class:`db.Upload` and answers at once with its page, which shows how far
the worker got (``upload.js`` polls ``/uploads/<id>/status``; without script the page
refreshes itself). The worker (:func:`check_and_ingest`) checks the file (``espi lint``, and
the ESPI schema up to ``UPLOAD_SCHEMA_LIMIT`` bytes), keeps it gzipped like a custodian's
download, ingests it, and deletes the file as it came. A file that is not Green Button, or
holds no usage point, is rejected and nothing of it is kept; an empty one (0 bytes) is refused
at the form."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

import espi
from espi.lint import lint

from . import accounts, db, erase, queueing
from .accounts import account
from .db import ConnectionState, UploadState
from .documents import folder, keeping, partial, record
from .ingest import ingest

log = logging.getLogger(__name__)
bp = Blueprint("uploads", __name__)
#: the steps of the worker's part, in order
STAGES = {"checking": "Checking the file", "schema": "Checking it against the ESPI schema",
          "keeping": "Keeping a copy", "ingesting": "Storing the readings"}  # fmt: skip
FINISHED = (UploadState.DONE, UploadState.REJECTED, UploadState.FAILED)


@bp.get("/upload")
def form() -> str:
    return render_template("upload.html")


@bp.post("/upload")
def upload() -> Any:
    """Stream the file to disk, record it, queue the worker's part; its page at once."""
    sent = request.files.get("file")
    if sent is None or not sent.filename:
        return render_template(
            "upload.html", error="Choose a Green Button file (XML) to upload."
        ), 400
    where = folder("uploads")
    final = os.path.join(where, f"{secrets.token_hex(16)}.xml")
    with partial(where) as p:
        shutil.copyfileobj(sent.stream, p.file, 1 << 16)
        size = p.file.tell()
        if size == 0:
            return render_template("upload.html", error=f"{sent.filename} is empty."), 400
        p.done(final)
    s = db.session()
    row = db.Upload(account_id=account().id, filename=sent.filename[:200], path=final, size=size)
    s.add(row)
    s.commit()
    queueing.enqueue("upload", row.id)
    return redirect(url_for("uploads.progress", upload_id=row.id), 303)


def own(upload_id: int) -> db.Upload:
    """An upload of the account (any, for an operator); 404 otherwise."""
    found = db.session().get(db.Upload, upload_id)
    if found is None or not (accounts.is_operator() or found.account_id == account().id):
        abort(404, f"no upload {upload_id}")
    return found


def status_of(row: db.Upload) -> dict[str, Any]:
    ups = usage_points(row)
    return {
        "status": row.status,
        "stage": row.stage,
        "step": STAGES.get(row.stage, ""),
        "progress": 1.0 if row.status == UploadState.DONE else row.progress,
        "readings": row.readings,
        "usage_points": len(ups),
        "message": row.message,
        "finished": row.status in FINISHED,
    }


def usage_points(row: db.Upload) -> list[db.UsagePoint]:
    if row.status != UploadState.DONE or row.connection_id is None:
        return []
    query = select(db.UsagePoint).where(db.UsagePoint.connection_id == row.connection_id)
    return list(db.session().scalars(query.order_by(db.UsagePoint.id)))


@bp.get("/uploads/<int:upload_id>")
def progress(upload_id: int) -> str:
    """The upload's page: how far the worker got, then what the checks found and the data."""
    row = own(upload_id)
    return render_template(
        "upload.html",
        up=row,
        state=status_of(row),
        usage_points=usage_points(row),
        problems=json.loads(row.problems) if row.problems else None,
        findings=json.loads(row.findings) if row.findings else [],
    )


@bp.get("/uploads/<int:upload_id>/status")
def status(upload_id: int) -> Response:
    """What the page polls: status, step, progress (0 to 1, or null while unknown)."""
    return jsonify(status_of(own(upload_id)))


# --------------------------------------------------------------------------- the worker's part


class Reading:
    """A binary file that records on the upload's row how much of it was read (at most twice
    a second)."""

    def __init__(self, f: Any, name: str, report: Callable[[float], None], size: int) -> None:
        self.f, self.name, self.report, self.size = f, name, report, max(size, 1)
        self.done, self.last = 0, 0.0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.f.read(n)
        self.done += len(data)
        if time.monotonic() - self.last >= 0.5:
            self.last = time.monotonic()
            self.report(min(self.done / self.size, 1.0))
        return data

    def __enter__(self) -> Reading:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.f.close()


def at(row: db.Upload, stage: str) -> Callable[[float], None]:
    """Start a stage; the callable reports its progress."""
    s = db.session()
    row.stage, row.progress = stage, 0.0
    s.commit()

    def report(fraction: float) -> None:
        row.progress = round(fraction, 3)
        s.commit()

    return report


def reading(row: db.Upload, stage: str) -> Reading:
    return Reading(open(row.path, "rb"), row.filename, at(row, stage), row.size)


def check_and_ingest(upload_id: int) -> None:
    s = db.session()
    row = s.get(db.Upload, upload_id)
    if row is None or row.status != UploadState.QUEUED:
        return
    if not row.path or not os.path.exists(row.path):
        raise ValueError(f"{row.filename}: the uploaded file is no longer there")
    try:
        with reading(row, "checking") as f:
            findings = lint(f)
        problems = None
        if row.size <= current_app.config["UPLOAD_SCHEMA_LIMIT"]:
            with reading(row, "schema") as f:
                problems = espi.validate(f)
    except espi.ParseError as err:
        where = f"line {err.line}: " if err.line else ""
        text = f"{row.filename} is not a Green Button file ({where}{err.message})"
        finish(row, UploadState.REJECTED, text)
        return
    row.findings = json.dumps(
        [{"severity": f.severity, "message": f.message, "line": f.line} for f in findings]
    )
    row.problems = (
        ""
        if problems is None
        else json.dumps([{"line": p.line, "path": p.path, "message": p.message} for p in problems])
    )
    with reading(row, "keeping") as f, keeping() as out:
        shutil.copyfileobj(f, out, 1 << 16)
    conn = upload_connection(row, out.kept.sha256)
    doc = record(db.UPLOAD, f"upload:{out.kept.sha256[:16]}", conn, out.kept)
    row.connection_id, row.stage, row.progress = conn.id, "ingesting", None
    s.commit()
    row.readings = ingest(s, doc)
    if s.scalar(select(db.UsagePoint.id).where(db.UsagePoint.connection_id == conn.id)) is None:
        # a feed with no entry (a Download My Data of a range without data): not a source
        row.connection_id = None
        files = erase.connection(conn)
        finish(row, UploadState.REJECTED, f"{row.filename} holds no energy data: nothing was kept")
        erase.remove_files(files)
        return
    finish(row, UploadState.DONE, "")


def finish(row: db.Upload, status: UploadState, message: str) -> None:
    """The upload's end: the file as it came is deleted (what was ingested is kept gzipped)."""
    if row.path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(row.path)
    row.status, row.stage, row.message, row.path = status, "", message, ""
    row.progress = 1.0 if status == UploadState.DONE else None
    db.session().commit()
    log.info("upload %s %s%s", row.id, status, f": {message}" if message else "")


def note(key: int, text: str, final: bool, retry_at: int) -> None:
    """An attempt of the worker's part that failed (the database busy, ...)."""
    s = db.session()
    row = s.get(db.Upload, key)
    if row is None:
        return
    if final:
        finish(row, UploadState.FAILED, text)
    else:
        row.message, row.stage = text, ""
        s.commit()


def upload_connection(row: db.Upload, sha256: str) -> db.Connection:
    """The account's connection for an uploaded file: the same file uploaded again is the same
    source (its rows are updated, not doubled)."""
    s = db.session()
    conn = s.scalar(
        select(db.Connection)
        .join(db.Document, db.Document.connection_id == db.Connection.id)
        .where(
            db.Connection.account_id == row.account_id,
            db.Connection.profile == db.UPLOAD,
            db.Document.sha256 == sha256,
        )
    )
    if conn is None:
        conn = db.Connection(
            account_id=row.account_id, profile=db.UPLOAD, status=ConnectionState.ACTIVE
        )
        s.add(conn)
    conn.label, conn.last_sync = row.filename, int(time.time())
    s.commit()
    return conn


queueing.register("upload", check_and_ingest, row=db.Upload, open=(UploadState.QUEUED,), note=note)
