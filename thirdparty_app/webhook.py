"""The Notification webhook: a custodian says data is ready (``POST /espi/1_1/Notification``,
a BatchList of resource URIs). Every URI must lie under a configured custodian's resource base,
with no dot segment and no query parameter its profile does not list (else 400, nothing
recorded); what a download of ours can serve is recorded once, normalised, and its download
queued; new URIs are rate-limited per source (429); a body over 1 MiB is a 413, the rest unread.

The least possible work in the request, because a custodian waits for the answer:

- it is answered in front of Flask (:class:`Door`, WSGI middleware): no routing, session,
  sign-in or CSRF hooks, which cost more than the checks (a machine's post, judged by what it
  carries); ProxyFix, when configured, still runs first, so the source is the client's address;
- the body is read, parsed and checked in the request's own thread;
- what it announces is then written together with what the process's other threads announced
  meanwhile (:class:`Batches`, group commit): one look-up of what is known or connected
  already, one count per source under the limit, one insert, one queue push, for all of them.
  Each answer waits for its batch: a 200 means recorded and queued, as before. A post's
  refusal is its own (400, 413, 429), and so is a failure: a batch that fails is written
  again post by post, and a post naming many URIs is written alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app
from sqlalchemy import bindparam, delete, literal, select, union_all
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

import espi
from appkit.http import problem, security_headers
from espi.client import NOTIFICATION_LIMIT, CustodianProfile, TokenKind, UnsafeURI, token_kind

from . import db, profiles, queueing
from .ratelimit import count, retry_in

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)
PATH = "/espi/1_1/Notification"
#: the longest URI a notification may name (the notification table's column)
URI_LIMIT = 2000


def init_app(app: Flask) -> None:
    """Answer the webhook in front of the app (call before ProxyFix wraps it)."""
    app.wsgi_app = Door(app, app.wsgi_app)  # type: ignore[method-assign]


class Door:
    """WSGI middleware: requests for :data:`PATH` are answered here, the rest by the app."""

    def __init__(self, app: Flask, inner: WSGIApplication) -> None:
        self.app, self.inner, self.batches = app, inner, Batches()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.inner(environ, start_response)
        request = Request(environ)
        with self.app.app_context():
            try:
                answer = self.answer(request)
            except HTTPException as err:  # the body ended before its Content-Length, say
                answer = refuse(err.code or 400, str(err.description))
            except Exception:
                log.exception("notification not recorded")
                answer = problem(500, "server_error", "the notification was not recorded")
        security_headers(answer, request.is_secure)  # type: ignore[arg-type]
        return answer(environ, start_response)

    def answer(self, request: Request) -> Response:
        if request.method != "POST":
            return problem(405, "method_not_allowed", f"POST to {PATH}", {"Allow": "POST"})
        request.max_content_length = NOTIFICATION_LIMIT + 1  # one byte more tells a longer body
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:  # its Content-Length says so: nothing read
            body = None
        source = request.remote_addr or ""
        if body is None or len(body) > NOTIFICATION_LIMIT:
            log.warning("notification refused from %s: over %d bytes", source, NOTIFICATION_LIMIT)
            return refuse(413, f"a notification is at most {NOTIFICATION_LIMIT:,} bytes")
        try:
            options = espi.ParseOptions(warn=False, max_bytes=NOTIFICATION_LIMIT)
            batch = espi.parse(body, options).batch_list
        except espi.ParseError as err:
            log.warning("notification refused: %s", err)
            return refuse(400, f"not a BatchList: {err}")
        if batch is None:
            return refuse(400, "not a BatchList")
        try:
            announced = announcement(source, batch.resources)
        except UnsafeURI as err:
            log.warning("notification refused from %s: %s", source, err.message)
            return refuse(400, err.message)
        self.batches.record(announced)
        if announced.error is not None:
            return trouble(announced.error)
        return announced.answer or problem(500, "server_error", "the notification was not recorded")


def refuse(status: int, description: str) -> Response:
    return problem(status, "invalid_request", description)


def trouble(err: BaseException) -> Response:
    """The post could not be recorded: SQLite busy (another process writes too long) is a 503
    to try again; anything else (the database or the queue down) a 500, logged by the thread
    that wrote it."""
    if db.busy(err):
        return problem(503, "temporarily_unavailable", db.BUSY, headers={"Retry-After": "5"})
    return problem(500, "server_error", "the notification was not recorded (see the log)")


# --------------------------------------------------------------------------- the checks


def notified(uri: str | None) -> tuple[str, CustodianProfile]:
    """A notified URI as it is recorded (normalised) and its custodian's profile; UnsafeURI
    when it is empty or too long (as posted or as recorded), has dot segments, lies under no
    configured custodian, or carries a query parameter the profile does not list."""
    if not uri:
        raise UnsafeURI("refused an empty resources element", uri="")
    if len(uri) > URI_LIMIT:
        raise UnsafeURI(
            f"refused a URI longer than {URI_LIMIT:,} characters: {uri[:100]}…", uri=uri
        )
    try:
        segments = unquote(urlsplit(uri).path).split("/")
    except ValueError:
        segments = []  # malformed: the owner check refuses it
    if "." in segments or ".." in segments:
        raise UnsafeURI(f"refused {uri}: a dot segment ('.' or '..') in the path", uri=uri)
    owner = profiles.owning(uri)
    if owner is None:
        raise UnsafeURI(f"refused {uri}: a URI of no configured custodian", uri=uri)
    recorded = owner.notified(uri)
    if len(recorded) > URI_LIMIT:  # escapes written out ("!" is "%21") can lengthen it
        raise UnsafeURI(
            f"refused a URI longer than {URI_LIMIT:,} characters as recorded: {uri[:100]}…",
            uri=uri,
        )
    return recorded, owner


def servable(found: dict[str, CustodianProfile]) -> tuple[set[str], dict[str, str]]:
    """Which notified URIs a download of ours can serve: (a Bulk of our BulkID, any Bulk when
    the profile names none; the subscription URIs by the notified URIs that need one of our
    connections to have it). A custodian announces Batch resources only: the others (another
    third party's Bulk, the Authorization feed, ServiceStatus and other resources read with
    our own tokens, a customer resource outside a Batch subscription) are left: the answer is
    still 200, nothing is fetched for them."""
    keep: set[str] = set()
    subscriptions: dict[str, str] = {}  # notified URI -> its subscription's URI
    for uri, profile in found.items():
        path = profile.relative(uri)
        segments = path.split("/")
        kind = token_kind(path)
        if kind is TokenKind.CLIENT:
            bulk = len(segments) > 2 and segments[0] == "Batch" and segments[1].startswith("Bulk")
            if bulk and (not profile.bulk_id or segments[2] == profile.bulk_id):
                keep.add(uri)
        elif kind is TokenKind.CUSTOMER and segments[:2] == ["Batch", "Subscription"]:
            subscriptions[uri] = profile.resource("/".join(segments[:3]))
    return keep, subscriptions


def announcement(source: str, uris: Iterable[str | None]) -> Announcement:
    """A post's URIs checked (UnsafeURI, see :func:`notified`), waiting to be recorded."""
    found = dict(notified(uri) for uri in uris)
    return Announcement(source, found, *servable(found))


# --------------------------------------------------------------------------- recording


@dataclass(eq=False)
class Announcement:
    """One post's checked URIs, waiting to be recorded, then its answer."""

    source: str
    found: dict[str, CustodianProfile]
    keep: set[str]
    subscriptions: dict[str, str]
    answer: Response | None = None
    error: BaseException | None = None
    #: released when the post's thread is to go on: its batch written, or its turn to write
    wake: threading.Lock = field(default_factory=threading.Lock)

    @property
    def settled(self) -> bool:
        return self.answer is not None or self.error is not None


#: The most URIs a batch takes: a post naming more is written alone, in its own thread (as
#: every post was before batches), so no post waits on another's thousands of URIs; a batch's
#: look-up stays far below the databases' limits on bound parameters (PostgreSQL 65,535,
#: SQLite 32,766). A 1 MiB BatchList names up to ~10,000.
BATCH_URIS = 1000


class Batches:
    """Group commit, per process. A post's announcement waits with the others that arrived
    while a batch was being written; the thread that finds no batch being written writes those
    waiting (its own among them, up to :data:`BATCH_URIS` URIs a batch), wakes their threads,
    and hands the next batch to the first thread still waiting. One thread writes at a time;
    each waiting thread is woken once (no thundering herd of waiters checking whether they are
    done)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: list[Announcement] = []
        self.writing = False

    def record(self, announced: Announcement) -> None:
        if len(announced.found) > BATCH_URIS:
            settle([announced])
            return
        announced.wake.acquire()
        with self.lock:
            self.waiting.append(announced)
            leads, self.writing = not self.writing, True
        if not leads:
            announced.wake.acquire()  # until its batch is written, or it is its turn
            if announced.settled:
                return
        self.write_waiting(announced)

    def write_waiting(self, own: Announcement) -> None:
        try:
            while not own.settled:
                with self.lock:
                    batch, self.waiting = first(self.waiting)
                try:
                    settle(batch)
                finally:
                    for each in batch:
                        if not each.settled:  # BaseException: this thread ends
                            each.error = RuntimeError("not recorded")
                        if each is not own:
                            each.wake.release()
        finally:
            with self.lock:
                following = self.waiting[0] if self.waiting else None
                self.writing = following is not None
            if following is not None:
                following.wake.release()  # its turn: it writes what waits by then


def first(waiting: list[Announcement]) -> tuple[list[Announcement], list[Announcement]]:
    """The posts that come first, up to :data:`BATCH_URIS` URIs (one at least), and the rest."""
    taken, uris = 0, 0
    for each in waiting:
        uris += len(each.found)
        if uris > BATCH_URIS and taken:
            break
        taken += 1
    return waiting[:taken], waiting[taken:]


def settle(batch: list[Announcement]) -> None:
    """Write a batch; when that fails, each of its posts again alone, so that one post's
    trouble (or an outage of what only some posts need: the queue, the limit's storage) is
    its own; a post that fails alone is answered from its error. SQLite busy fails them all:
    alone, each would wait as long again."""
    try:
        write(batch)
    except Exception as err:
        if len(batch) > 1 and not db.busy(err):
            log.warning("%d notifications not recorded together (%s): each alone", len(batch), err)
            for each in batch:
                each.answer = None
                settle([each])
            return
        log.exception("%d notification(s) not recorded", len(batch))
        for each in batch:
            each.error = err


#: One round trip: which notified URIs are recorded already, and which of their
#: subscriptions a connection has.
_NOTE, _CONN = db.Notification.__table__, db.Connection.__table__
SEEN = union_all(
    select(literal("known"), _NOTE.c.uri).where(_NOTE.c.uri.in_(bindparam("uris", expanding=True))),
    select(literal("connected"), _CONN.c.subscription_uri).where(
        _CONN.c.subscription_uri.in_(bindparam("subscriptions", expanding=True))
    ),
)


def write(batch: list[Announcement]) -> None:
    """Record what a batch of posts announced: on one pooled connection in autocommit with
    SQLAlchemy Core (no ORM session), the look-up and the insert ``ON CONFLICT DO NOTHING``
    (a URI another process inserted first is theirs to queue), then the downloads queued at
    once (the rows removed again if that fails). Each announcement gets its answer: 200, or
    429 for a source over its limit."""
    subscriptions = {k: v for each in batch for k, v in each.subscriptions.items()}
    asked = {
        "uris": [*{uri for each in batch for uri in each.keep}, *subscriptions],
        "subscriptions": list(set(subscriptions.values())),
    }
    with db.engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        seen = conn.execute(SEEN, asked).all()
        known = {uri for kind, uri in seen if kind == "known"}
        connected = {uri for kind, uri in seen if kind == "connected"}
        news = []
        for each in batch:
            ours = {
                uri: profile
                for uri, profile in each.found.items()
                if uri in each.keep or each.subscriptions.get(uri) in connected
            }
            if len(ours) < len(each.found):
                left = [uri for uri in each.found if uri not in ours]
                log.warning("notification from %s: not ours, left: %s", each.source, left[:5])
            news.append({uri: profile for uri, profile in ours.items() if uri not in known})
        taken = admitted(batch, news)
        # in one order in every process: two batches' inserts never wait on each other crosswise
        rows = [{"uri": uri, "profile": taken[uri].name} for uri in sorted(taken)]
        ids = db.insert_new(conn, db.Notification, rows, "uri") if rows else []
        if ids:
            try:
                queueing.enqueue_each("fetch", ids, 0)
            except Exception:  # the queue is down: recorded without a download, they would
                # be answered "known" when the custodian posts them again, and never fetched
                conn.execute(delete(db.Notification).where(db.Notification.id.in_(ids)))
                raise
    for each in batch:
        each.answer = each.answer or Response(status=200)


def admitted(
    batch: list[Announcement], news: list[dict[str, CustodianProfile]]
) -> dict[str, CustodianProfile]:
    """The new URIs the per-source limit admits; a post whose new URIs it refuses is answered
    429 (nothing of it recorded). A URI known already costs nothing. Each source's posts are
    counted together; when together they are over the limit, one by one in the order they
    came, as if each had come alone."""
    limit = current_app.config["NOTIFICATION_LIMIT"]
    by_source: dict[str, list[int]] = {}
    for i, new in enumerate(news):
        if new:
            by_source.setdefault(batch[i].source, []).append(i)
    taken: dict[str, CustodianProfile] = {}
    for source, posts in by_source.items():
        together = {uri: p for i in posts for uri, p in news[i].items()}
        if count(limit, "notify", source, cost=len(together)):
            taken.update(together)
            continue
        for i in posts:
            new = {uri: p for uri, p in news[i].items() if uri not in taken}
            if not new or count(limit, "notify", source, cost=len(new)):
                taken.update(new)
                continue
            log.warning("notification refused: %d new resources from %s", len(new), source)
            batch[i].answer = problem(
                429,
                "too_many_requests",
                f"{len(new)} new resources from {source}: more than {limit} are not taken",
                headers={"Retry-After": str(retry_in(limit, "notify", source))},
            )
    return taken
