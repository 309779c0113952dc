"""Uploads: streamed to disk, the request answers at once, a worker checks and ingests the file
while its page shows how far it got; a rejected file is deleted; a download killed halfway
leaves no ``.partial`` file once a worker starts again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import DATA
from tests.scripted import Answer, Scripted
from tests.thirdparty.apps import RESOURCE, custodian, storage, third_party, wait
from tests.thirdparty.browsing import Person
from thirdparty_app import db as tp
from thirdparty_app import queueing

__all__ = ["storage"]
ROOT = Path(__file__).resolve().parents[2]
HYDRO = DATA / "burlington_hydro_usage_60min.xml"


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def remote():
    with Scripted(custodian(lambda seen: Answer(404))) as server:
        yield server


def test_an_upload_answers_at_once_and_a_worker_ingests_it(tmp_path, storage, remote):
    with third_party(tmp_path, storage, remote.url, EMBEDDED_WORKER=False) as served:
        person = Person.sign_up(served.url)
        with open(HYDRO, "rb") as f:
            sent = person.post(f"{served.url}/upload", files={"file": ("hydro.xml", f)},
                               allow_redirects=False, timeout=30)  # fmt: skip
        assert sent.status_code == 303, sent.text[:300]
        page_url = served.url + sent.headers["Location"]
        status_url = page_url + "/status"
        assert person.get(status_url, timeout=30).json()["status"] == "queued"
        waiting = person.get(page_url, timeout=30).text
        assert 'id="upload-progress"' in waiting and 'id="upload-result"' not in waiting
        assert "<script src=" in waiting and "/static/upload.js" in waiting
        documents = tmp_path / "documents"
        assert [Path(f).suffix for f in files(documents)] == [".xml"]  # the file as it came
        assert os.path.getsize(documents / files(documents)[0]) == HYDRO.stat().st_size

        queueing.start(served.app, embedded=True)
        done = wait(
            lambda: (j := person.get(status_url, timeout=30).json())["status"] == "done" and j
        )
        assert done["progress"] == 1.0 and done["readings"] == 6 and done["usage_points"] == 1
        page = person.get(page_url, timeout=30).text
        assert 'id="upload-result"' in page and f"{done['readings']:,} readings" in page
        assert "Schema (ESPI 4.0)" in page and "Checks" in page
        kept = files(documents)
        assert len(kept) == 1 and kept[0].endswith(".xml.gz")  # the upload itself is gone
        other = Person.sign_up(served.url)
        assert other.get(page_url, timeout=30).status_code == 404
        assert other.get(status_url, timeout=30).status_code == 404


def test_a_file_that_is_not_green_button_is_rejected_and_deleted(tmp_path, remote):
    sqlite = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
    }
    with third_party(tmp_path, sqlite, remote.url) as served:
        person = Person.sign_up(served.url)
        sent = person.post(f"{served.url}/upload", files={"file": ("notes.xml", b"<feed><oops></feed>")},
                           timeout=30)  # fmt: skip
        status_url = sent.url + "/status"
        done = wait(
            lambda: (j := person.get(status_url, timeout=30).json())["status"] == "rejected" and j
        )
        assert "not well-formed" in done["message"] or "mismatched tag" in done["message"]
        page = person.get(sent.url, timeout=30).text
        assert "notes.xml" in page and "was not ingested" in page
        assert files(tmp_path / "documents") == []  # nothing kept of a rejected file
        assert (
            served.query(
                lambda s: s.scalar(select(tp.Connection).where(tp.Connection.profile == "upload"))
            )
            is None
        )


def test_an_upload_over_the_limit_is_refused_and_nothing_stays(tmp_path, remote):
    sqlite = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
    }
    with third_party(tmp_path, sqlite, remote.url, MAX_CONTENT_LENGTH=64 * 1024) as served:
        person = Person.sign_up(served.url)
        sent = person.post(
            f"{served.url}/upload", files={"file": ("big.xml", b"<a/>" * 50_000)}, timeout=30
        )
        assert sent.status_code == 413
        assert files(tmp_path / "documents") == []


def test_a_partial_file_being_written_is_kept_and_an_orphan_is_removed(tmp_path, remote):
    sqlite = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
    }
    with third_party(tmp_path, sqlite, remote.url, EMBEDDED_WORKER=False) as served:
        from thirdparty_app import documents

        folder = tmp_path / "documents"
        folder.mkdir(exist_ok=True)
        orphan = folder / "tmpdead.partial"
        orphan.write_bytes(b"half a document")
        with served.app.app_context(), documents.keeping() as out:
            out.write(b"<feed/>")
            live = [p for p in folder.glob("*.partial") if p != orphan]
            assert documents.remove_orphans() == 1
            assert not orphan.exists() and all(p.exists() for p in live)
        assert list(folder.glob("*.partial")) == []


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_download_leaves_no_partial_file_after_a_restart(tmp_path):
    def slow(seen):
        def body():
            for _ in range(600):
                yield b"<!-- " + b"z" * 4096 + b" -->\n"
                time.sleep(0.05)

        return Answer(200, {"Content-Type": "application/atom+xml"}, body(), length=600 * 4106)

    sqlite = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
    }
    with (
        Scripted(custodian(slow)) as remote,
        third_party(tmp_path, sqlite, remote.url, EMBEDDED_WORKER=False) as served,
    ):
        profile = {"token_url": f"{remote.url}/token", "resource_base": f"{remote.url}{RESOURCE}",
                   "client_id": "c", "client_secret": "s", "requests_per_second": "1000"}  # fmt: skip
        env = {**os.environ, "THIRDPARTY_SECRET_KEY": "s", "THIRDPARTY_BASE_URL": "http://127.0.0.1", "THIRDPARTY_TOKEN_KEY": "0" * 43 + "=",
               **{f"THIRDPARTY_{k}": v for k, v in sqlite.items()},
               "THIRDPARTY_DOCUMENTS": str(tmp_path / "documents"),
               **{f"THIRDPARTY_CUSTODIANS__remote__{k}": v for k, v in profile.items()}}  # fmt: skip
        assert served.notify(f"{served.resource}/Batch/Bulk/1").status_code == 200

        def worker() -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "flask", "--app", "thirdparty_app", "worker"],
                                    env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

        folder = tmp_path / "documents"
        first = worker()
        try:
            partial = wait(lambda: next(iter(folder.glob("*.partial")), None), 60)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            assert partial.exists()  # what a killed download leaves
        finally:
            first.kill()
        second = worker()
        try:
            wait(lambda: not partial.exists(), 60)
        finally:
            second.terminate()
            second.wait(10)
