"""The job queue's one door (Huey: SQLite by default, Redis for several machines).

Every module queues work by name — ``queueing.enqueue("sync", connection_id)`` — and registers
the work it owns with :func:`register` (``jobs`` the downloads, syncs, ingestion and pricing,
``uploads`` its checks); this module imports nothing of the app but :mod:`.db`, so any module
can import it. Each app gets its own Huey with a task per registered job (:func:`make`).

Retries are counted here and nowhere else (the clients never retry by themselves): an attempt
that meets an outage (5xx, a timeout, a refused connection), a 429, a provider still gathering
the data, or an error of ours, is tried again after ``JOB_RETRY_DELAY`` x 2^(n-1) seconds
(``PROVIDER_NOT_READY_DELAY`` x 2^(n-1) for a provider still gathering; a 429's Retry-After
instead; never more than ``JOB_MAX_DELAY``), at most ``JOB_RETRIES`` times. Refusals (401/403,
a URI outside the profile, another 4xx, a document that is not Green Button) fail at once.
A job's attempts are counted on its row (notification, connection, upload), claimed with a
compare-and-set so a job queued twice runs once per attempt; the final failure is recorded
there (its ``note``), with the reason and the number of attempts.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from flask import Flask, current_app
from huey import crontab
from huey.api import Huey
from sqlalchemy import select, update

import espi
from appkit import queue

from . import db

log = logging.getLogger(__name__)
#: worth another attempt later
RETRYABLE = (espi.Unavailable, espi.RateLimited, espi.NotReady)
#: refusals that another attempt would not change
FINAL = (espi.ProviderError, ValueError, LookupError)
#: the app's extension that holds its queue
EXTENSION = "thirdparty_app.queue"

Note = Callable[[Any, str, bool, int], None]
#: what :func:`run` adds to the text of an attempt that failed and will be made again
AGAIN = re.compile(r"; (attempt \d+ of \d+, trying again in [^;]+ s)$")
#: and to the text of a failure that was tried again until the attempts were spent
SPENT = re.compile(r"\(gave up after \d+ attempts?\)$")


def logged(key: Any, text: str, final: bool, retry_at: int) -> None:
    """How the attempts of a job without a row of its own are recorded: in the log."""
    if final:
        log.error("job for %s failed: %s", key, text)


@dataclass(frozen=True)
class Job:
    """Work the queue runs for a key."""

    work: Callable[[Any], None]
    #: the row that counts the job's attempts (None: they are counted in the task's arguments)
    row: Any = None
    #: the row's states in which the job is still to do (its attempts are claimed only then)
    open: tuple[StrEnum, ...] = ()
    #: record how an attempt went: (key, text, final, retry_at)
    note: Note = logged


JOBS: dict[str, Job] = {}
#: work run every few minutes by the workers: name -> (minutes, work)
PERIODIC: dict[str, tuple[int, Callable[[], object]]] = {}


def register(
    name: str,
    work: Callable[[Any], None],
    *,
    row: Any = None,
    open: tuple[StrEnum, ...] = (),
    note: Note = logged,
) -> None:
    """Register the work of a job (once per name, at import)."""
    if name in JOBS and JOBS[name].work is not work:
        raise ValueError(f"job {name!r} is registered already")
    JOBS[name] = Job(work, row, open, note)


def every(minutes: int, name: str, work: Callable[[], object]) -> None:
    """Register work the workers run every ``minutes`` minutes (and a worker when it starts)."""
    PERIODIC[name] = (minutes, work)


@dataclass
class Queue:
    """An app's Huey, a task per job, and the consumer running in this process (if any)."""

    huey: Huey
    tasks: dict[str, Any] = field(default_factory=dict)
    consumer: Any = None


def make(app: Flask) -> Queue:
    """The app's queue, with a task for every job registered so far."""
    found = Queue(queue.make_huey(app, "thirdparty"))
    for name in JOBS:
        found.tasks[name] = found.huey.task(name=name)(task_of(app, name))
    for name, (minutes, work) in PERIODIC.items():
        found.huey.periodic_task(crontab(minute=f"*/{minutes}"), name=name)(periodic_of(app, work))
    app.extensions[EXTENSION] = found
    return found


def of(app: Flask | None = None) -> Queue:
    """The queue of ``app`` (default: the current app)."""
    found: Queue = (app or current_app).extensions[EXTENSION]
    return found


def task_of(app: Flask, name: str) -> Callable[..., None]:
    def task(key: Any, attempt: int = 0) -> None:
        with app.app_context():
            run(name, key, attempt)

    task.__name__ = name
    return task


def periodic_of(app: Flask, work: Callable[[], object]) -> Callable[[], None]:
    def task() -> None:
        with app.app_context():
            work()

    task.__name__ = work.__name__
    return task


def start(app: Flask, embedded: bool) -> None:
    """Run the app's consumer: in this process's threads (``embedded``) or in the foreground
    until interrupted. Periodic work is scheduled by either."""
    found = of(app)
    if embedded:
        found.consumer = queue.start_embedded(found.huey, periodic=True)
    else:
        queue.run_worker(found.huey, int(app.config["WORKER_THREADS"]), periodic=True)


def task_named(name: str) -> Any:
    try:
        return of().tasks[name]
    except KeyError:
        raise LookupError(f"no job {name!r}; known: {', '.join(sorted(JOBS))}") from None


def enqueue(name: str, key: Any, attempt: int | None = None, delay: float = 0) -> None:
    """Queue a job's next attempt (the one its row has not made yet), after ``delay`` s."""
    task = task_named(name)
    row = JOBS[name].row
    if attempt is None:
        attempt = 0
        if row is not None:
            attempt = db.session().scalar(select(row.attempts).where(row.id == key)) or 0
    if delay > 0:
        task.schedule(args=(key, attempt), delay=delay)
    else:
        task(key, attempt)


def enqueue_each(name: str, keys: list[Any], attempt: int = 0) -> None:
    """Queue the same attempt of a job for several keys at once (on Redis, one push)."""
    task = task_named(name)
    queue.enqueue_all(of().huey, [task.s(key, attempt) for key in keys])


# --------------------------------------------------------------------------- attempts


def run(name: str, key: Any, attempt: int) -> None:
    """One attempt of a job: claimed, done, and on failure tried again later or given up."""
    job = JOBS[name]
    if job.row is not None and not claim(job, key, attempt):
        log.info(
            "%s(%s): attempt %d is made already, or there is nothing to do", name, key, attempt + 1
        )
        return
    tries = attempt + 1
    failure: Exception
    try:
        job.work(key)
        return
    except RETRYABLE as err:
        failure, again = err, True
    except FINAL as err:
        failure, again = err, False
    except Exception as err:  # a fault of ours (the database busy, a bug): logged, tried again
        log.exception("%s(%s) failed", name, key)
        failure, again = err, True
    db.session().rollback()
    retries = current_app.config["JOB_RETRIES"]
    why = str(failure)[:1000] or type(failure).__name__
    if again and tries <= retries:
        delay = retry_wait(tries, failure)
        log.warning(
            "%s(%s): %s; attempt %d of %d, again in %g s", name, key, why, tries, retries + 1, delay
        )
        text = f"{why}; attempt {tries} of {retries + 1}, trying again in {delay:g} s"
        job.note(key, text, False, int(time.time() + delay))
        enqueue(name, key, tries, delay)
        return
    if again:
        why += f" (gave up after {tries} attempt{'s' if tries != 1 else ''})"
    log.error("%s(%s) failed: %s", name, key, why)
    job.note(key, why, True, 0)


def next_attempt(text: str) -> str:
    """The "attempt 2 of 7, trying again in 4 s" of a recorded text ("" when it has none)."""
    found = AGAIN.search(text)
    return found.group(1) if found else ""


def spent(text: str) -> bool:
    """Whether a recorded failure was tried again until its attempts were spent (an outage),
    rather than refused at once (credentials refused, a document that is not Green Button)."""
    return SPENT.search(text) is not None


def retry_wait(tries: int, err: BaseException) -> float:
    """Seconds to wait after the ``tries``-th failed attempt."""
    config = current_app.config
    if isinstance(err, espi.RateLimited) and err.retry_after is not None:
        return float(min(err.retry_after, config["JOB_MAX_DELAY"]))
    first = (
        config["PROVIDER_NOT_READY_DELAY"]
        if isinstance(err, espi.NotReady)
        else config["JOB_RETRY_DELAY"]
    )
    return float(min(first * 2 ** (tries - 1), config["JOB_MAX_DELAY"]))


def claim(job: Job, key: Any, attempt: int) -> bool:
    """Take attempt ``attempt`` + 1 of the job of a row, unless it is made already or the row
    is in none of the job's open states (a notification or upload not queued, a connection
    not yet connected, failed or revoked)."""
    s = db.session()
    row = job.row
    taken = db.changed(
        s.execute(
            update(row)
            .where(row.id == key, row.attempts == attempt, row.status.in_(job.open))
            .values(attempts=row.attempts + 1)
        )
    )
    s.commit()
    return bool(taken)


def noted(model: Any, failed: StrEnum) -> Note:
    """How attempts are recorded on a row with a ``reason`` (a connection's sync, a usage
    point's pricing): the last attempt's text; the final failure as state ``failed``."""

    def note(key: Any, text: str, final: bool, retry_at: int) -> None:
        s = db.session()
        row = s.get(model, key)
        if row is None:
            return
        row.reason = text
        if final:
            row.status = failed
        s.commit()

    return note
