"""Production serving: the Procfile's web process (gunicorn, several workers and threads)
serves the app, and its access log keeps OAuth codes out (gunicorn logs a mapping)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

import espi
from appkit import database
from thirdparty_app import MIGRATIONS, create_app

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from serve import processes  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_procfile_web_process_serves_the_app(tmp_path):
    url = f"sqlite:///{tmp_path}/tp.sqlite"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "DOCUMENTS": str(tmp_path / "docs"),
                      "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite"})  # fmt: skip
    with app.app_context():
        database.upgrade(app, MIGRATIONS)
    app.extensions["appkit.engine"].dispose()
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "THIRDPARTY_DATABASE_URL": url, "THIRDPARTY_QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
           "THIRDPARTY_DOCUMENTS": str(tmp_path / "docs"), "THIRDPARTY_SECRET_KEY": "s" * 64,
           "THIRDPARTY_TOKEN_KEY": "0" * 43 + "=", "THIRDPARTY_BIND": f"127.0.0.1:{port}",
           "THIRDPARTY_BASE_URL": f"http://127.0.0.1:{port}",
           "WEB_CONCURRENCY": "2", "WEB_THREADS": "2"}  # fmt: skip
    web = dict(processes(ROOT / "Procfile"))["web"]
    server = subprocess.Popen(web, shell=True, cwd=ROOT, env=env, stdout=subprocess.PIPE,  # noqa: S602 - the Procfile line
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                login = requests.get(f"{base}/login?code=s3cret-code&state=s3cret-state", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, (
                    "gunicorn did not start"
                )
                time.sleep(0.2)
        assert login.status_code == 200 and login.headers["X-Frame-Options"] == "DENY"
        note = espi.dumps(espi.BatchList(resources=[
            "http://127.0.0.1:5001/GreenButtonConnect/espi/1_1/resource/Batch/Subscription/1"]))  # fmt: skip
        assert (
            requests.post(f"{base}/espi/1_1/Notification", data=note, timeout=10).status_code == 200
        )
    finally:
        os.killpg(server.pid, 15)
        output = server.communicate(timeout=30)[0].decode()
    assert "GET /login?code=[redacted]&state=[redacted]" in output, output[-2000:]
    assert "s3cret" not in output and "Logging error" not in output, output[-2000:]
