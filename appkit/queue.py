"""The job queue both apps use: Huey, on SQLite by default (no server) or Redis
(``QUEUE_URL=redis://host:port/db``) for several machines."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from huey import RedisHuey, SqliteHuey
from huey.api import Huey, Task
from huey.consumer import Consumer
from huey.storage import RedisStorage


def make_huey(app: Flask, name: str) -> Huey:
    url = app.config.get("QUEUE_URL") or ""
    if url.startswith("redis://"):
        return RedisHuey(name, url=url)
    path = url.removeprefix("sqlite:///") or os.path.join(app.instance_path, f"{name}-queue.sqlite")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return SqliteHuey(name, filename=path)


def enqueue_all(huey: Huey, tasks: list[Task]) -> None:
    """Queue several tasks: on Redis in one ``LPUSH`` (one round trip, in their order; what
    Huey's ``enqueue`` does for each, without its signals, which the apps do not use), else
    (another storage, tasks with an expiry or a priority) one by one."""
    storage = huey.storage
    plain = not any(task.expires or task.priority for task in tasks)  # as `enqueue` keeps them
    if type(storage) is RedisStorage and not huey.immediate and tasks and plain:
        storage.conn.lpush(storage.queue_key, *(huey.serialize_task(task) for task in tasks))
        return
    for task in tasks:
        huey.enqueue(task)


class EmbeddedConsumer(Consumer):
    """A Huey consumer that runs in a thread of another program: no signal handlers."""

    def _set_signal_handlers(self) -> None:
        pass

    def stop(self, graceful: bool = True) -> None:
        """Stop, and return once the threads have: a worker still waiting on the queue would
        take the next task put there, for an app that may be gone (at most ``shutdown_timeout``
        s, then the threads are left to end by themselves)."""
        super().stop(graceful=graceful)


def start_embedded(huey: Huey, workers: int = 2, periodic: bool = False) -> Any:
    """Run a consumer in this process's background threads; ``.stop()`` ends it.
    ``periodic``: it also queues the Huey's periodic tasks when they are due."""
    consumer = EmbeddedConsumer(huey, workers=workers, worker_type="thread", periodic=periodic,
                                check_worker_health=False, scheduler_interval=1,
                                shutdown_timeout=30)  # fmt: skip
    consumer.start()  # starts the scheduler's and the workers' threads, and returns
    return consumer


def run_worker(huey: Huey, workers: int = 2, periodic: bool = False) -> None:
    """Run a consumer in the foreground (``flask ... worker``) until interrupted (``periodic``:
    see :func:`start_embedded`)."""
    huey.create_consumer(workers=workers, worker_type="thread", periodic=periodic).run()
