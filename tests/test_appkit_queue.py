"""The embedded queue consumer both apps run in tests and ``make run``: once stopped, it takes
nothing more from the queue (a worker left waiting there took the next test's tasks, for an app
whose database was gone)."""

from __future__ import annotations

import time

import pytest
from flask import Flask

from appkit import queue
from tests.conftest import fresh_redis


@pytest.fixture(params=["sqlite", "redis"])
def huey(request, tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["QUEUE_URL"] = fresh_redis() if request.param == "redis" else ""
    return queue.make_huey(app, "stop-test")


def test_a_stopped_consumer_takes_nothing_put_on_its_queue_after(huey):
    ran: list[int] = []
    task = huey.task(name="note")(ran.append)
    consumer = queue.start_embedded(huey)
    task(1)
    deadline = time.monotonic() + 30
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == [1]

    consumer.stop()
    task(2)
    time.sleep(2)  # longer than a worker waits on Redis for a task (1 s)
    assert ran == [1]
    assert huey.pending_count() == 1
