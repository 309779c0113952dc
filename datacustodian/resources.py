"""Every row of PG&E's Share My Data table, under ``/GreenButtonConnect/espi/1_1/resource``.

Each row demands the kind of token its row names: a customer's ``access_token`` (and only for
its own subscription), the third party's ``client_access_token``, or its
``registration_access_token``. No or bad token: 401; wrong kind or another customer's data: 403.
Asynchronous rows answer 202 and later POST a BatchList whose URI (the same path with a
``correlationID``) returns the data.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, request, stream_with_context
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

import espi
from appkit.http import http_problem
from espi import model as m

from . import db, scopes, store
from .notify import notify
from .oauth import Refused, bearer, presented_token

bp = Blueprint("resources", __name__, url_prefix=store.RESOURCE)
ATOM = "application/atom+xml"


@bp.errorhandler(Refused)
def refused(err: Refused) -> Response:
    return err.response()


def atom(obj: Any, subscription: int | str = "1", status: int = 200) -> Response:
    """A small answer (one resource, a few entries), written in memory (:func:`espi.dumps`)."""
    return Response(espi.dumps(obj, store.options(subscription)), status=status, mimetype=ATOM)


#: How much of a streamed feed is gathered before it is sent.
CHUNK = 1 << 16


def streamed(
    entries: Callable[[Session], Iterable[Any]], subscription: int | str = "1"
) -> Response:
    """A feed of any size, written as it is sent (:class:`espi.FeedWriter`): memory stays that
    of the entry being written, whatever the answer holds. ``entries`` is called as the answer
    starts, with the session of that moment (the view's own is closed by then: pass it ids,
    not rows). A failure half-way ends the answer short: the XML is not well-formed, which
    every reader refuses."""

    def chunks() -> Iterator[bytes]:
        out = io.BytesIO()
        with espi.FeedWriter(out, store.options(subscription)) as writer:
            for res in entries(db.session()):
                writer.add(res)
                if out.tell() >= CHUNK:
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
        yield out.getvalue()

    return Response(stream_with_context(chunks()), mimetype=ATOM)


def period() -> tuple[int | None, int | None]:
    """``published-min`` / ``published-max``: ISO Zulu (``2024-01-01T00:00:00Z``) or epoch s."""
    out: list[int | None] = []
    for name in ("published-min", "published-max"):
        text = request.args.get(name)
        if not text:
            out.append(None)
            continue
        try:
            out.append(
                int(text)
                if text.isdigit()
                else int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
            )
        except ValueError:
            abort(
                400,
                f"{name}={text!r}: give ISO 8601 Zulu time (2024-01-01T00:00:00Z) or epoch seconds",
            )
    low, high = out
    if low is not None and high is not None and high < low:
        abort(400, "published-max is before published-min")
    return low, high


# --------------------------------------------------------------------------- who may see what


def subscription(sid: int) -> db.Authorization:
    """The customer's authorization behind an access_token, which must be ``sid``."""
    token = bearer(db.ACCESS)
    auth = token.authorization
    if auth is None or auth.id != sid:
        raise Refused(403, "access_denied", "this token is for another subscription")
    return auth


def usage_point_row(auth: db.Authorization, public_id: str) -> db.UsagePoint:
    for row in auth.usage_points(db.session()):
        if row.public_id == public_id:
            return row
    raise Refused(403, "access_denied", "that usage point is not part of this subscription")


def client_token() -> db.Client:
    return bearer(db.CLIENT).client


def own_authorization(client: db.Client, aid: int) -> db.Authorization:
    auth = db.session().get(db.Authorization, aid)
    if auth is None or auth.client_id != client.id:
        raise Refused(403, "access_denied", "that authorization belongs to another third party")
    return auth


# --------------------------------------------------------------------------- asynchronous rows


def asynchronous(client: db.Client, build: Callable[[str], Response]) -> Response:
    """Answer 202 and notify, or (with a correlationID from a notification) the data."""
    s = db.session()
    correlation = request.args.get("correlationID")
    if correlation:
        prepared = s.get(db.Prepared, correlation)
        if prepared is None or prepared.client_id != client.id or prepared.path != request.path:
            raise Refused(403, "access_denied", "unknown correlationID for this resource")
        return build(prepared.query)
    prepared = db.Prepared(
        client_id=client.id, path=request.path, query=request.query_string.decode()
    )
    s.add(prepared)
    s.commit()
    uri = f"{current_app.config['BASE_URL'].rstrip('/')}{request.path}?correlationID={prepared.id}"
    notify(client.notification_uri, [uri])
    return Response(status=202)


def args_of(query: str) -> None:
    """Serve a prepared request with the period it was asked with."""
    from urllib.parse import parse_qs

    asked = {k: v[0] for k, v in parse_qs(query).items()}
    request.args = request.args.copy()
    for key in ("published-min", "published-max"):
        if key in asked:
            request.args[key] = asked[key]


@bp.get("/Batch/Subscription/<int:sid>")
def batch_subscription(sid: int) -> Response:
    auth = subscription(sid)

    def build(query: str) -> Response:
        args_of(query)
        low, high = period()
        ids = [row.id for row in auth.usage_points(db.session())]
        return streamed(
            lambda s: (e for i in ids for e in store.usage_point_entries(s, i, low, high)), sid
        )

    return asynchronous(auth.client, build)


def bulk_client(bulk_id: str) -> db.Client:
    client = client_token()
    if client.bulk_id != bulk_id:
        raise Refused(403, "access_denied", "that BulkID belongs to another third party")
    return client


def active(client: db.Client) -> list[db.Authorization]:
    return list(
        db.session().scalars(
            select(db.Authorization)
            .where(db.Authorization.client_id == client.id, db.Authorization.status == 1)
            .order_by(db.Authorization.id)
        )
    )


@bp.get("/Batch/Bulk/<bulk_id>")
def batch_bulk(bulk_id: str) -> Response:
    client = bulk_client(bulk_id)

    def build(query: str) -> Response:
        args_of(query)
        low, high = period()
        session = db.session()
        plan = [(a.id, [row.id for row in a.usage_points(session)]) for a in active(client)]
        return streamed(
            lambda s: (
                entry
                for auth_id, ids in plan
                for i in ids
                for entry in store.usage_point_entries(s, i, low, high, auth_id)
            )
        )

    return asynchronous(client, build)


def bulk_of(bulk_id: str, title: str, entries: Callable[[db.Authorization], list[Any]]) -> Response:
    """A Bulk row: for every active authorization of the third party, ``entries`` of it."""
    client = bulk_client(bulk_id)

    def build(query: str) -> Response:
        feed = m.Feed(title=title)
        for auth in active(client):
            feed.entries += entries(auth)
        return atom(feed)

    return asynchronous(client, build)


@bp.get("/Batch/BulkRetailCustomerInfo/<bulk_id>")
def batch_bulk_customer(bulk_id: str) -> Response:
    return bulk_of(bulk_id, "Retail customer information", customer_resources)


@bp.get("/Batch/BulkRetailDRPrgInfo/<bulk_id>")
def batch_bulk_dr(bulk_id: str) -> Response:
    return bulk_of(bulk_id, "Demand response enrollment", dr_agreements)


# --------------------------------------------------------------------------- customer rows


@bp.get("/Subscription/<int:sid>/UsagePoint")
def usage_points(sid: int) -> Response:
    auth = subscription(sid)
    rows = auth.usage_points(db.session())
    ups = [store.usage_point(db.session(), r, blocks=False, summaries=False) for r in rows]
    return atom(ups, sid)


@bp.get("/Subscription/<int:sid>/UsagePoint/<up_id>")
def usage_point(sid: int, up_id: str) -> Response:
    row = usage_point_row(subscription(sid), up_id)
    return atom(store.usage_point(db.session(), row, blocks=False, summaries=False), sid)


@bp.get("/Batch/Subscription/<int:sid>/UsagePoint/<up_id>")
def batch_usage_point(sid: int, up_id: str) -> Response:
    auth = subscription(sid)
    low, high = period()
    row_id = usage_point_row(auth, up_id).id
    return streamed(lambda s: store.usage_point_entries(s, row_id, low, high), sid)


@bp.get("/Subscription/<int:sid>/UsagePoint/<up_id>/UsageSummary")
@bp.get("/Subscription/<int:sid>/UsagePoint/<up_id>/UsageSummary/<int:summary_id>")
def usage_summaries(sid: int, up_id: str, summary_id: int | None = None) -> Response:
    low, high = period()
    up = store.usage_point(
        db.session(),
        usage_point_row(subscription(sid), up_id),
        blocks=False,
        published_min=low,
        published_max=high,
    )
    if summary_id is None:
        return atom(up.usage_summaries, sid)
    bill = next((b for b in up.usage_summaries if store.resource_id(b) == str(summary_id)), None)
    if bill is None:
        abort(404, "no such usage summary in this period")
    return atom(bill, sid)


def meter_reading_of(
    sid: int, up_id: str, mr_id: int
) -> tuple[m.UsagePoint, m.MeterReading, db.MeterReading]:
    row = usage_point_row(subscription(sid), up_id)
    mr_row = next((r for r in row.meter_readings if r.id == mr_id), None)
    if mr_row is None:
        abort(404, "no such meter reading for this usage point")
    up = store.usage_point(db.session(), row, blocks=False, summaries=False)
    return up, up.meter_readings[row.meter_readings.index(mr_row)], mr_row


@bp.get("/Subscription/<int:sid>/UsagePoint/<up_id>/MeterReading")
def meter_readings(sid: int, up_id: str) -> Response:
    up = store.usage_point(
        db.session(), usage_point_row(subscription(sid), up_id), blocks=False, summaries=False
    )
    return atom(up.meter_readings, sid)


@bp.get("/Subscription/<int:sid>/UsagePoint/<up_id>/MeterReading/<int:mr_id>")
def meter_reading(sid: int, up_id: str, mr_id: int) -> Response:
    return atom(meter_reading_of(sid, up_id, mr_id)[1], sid)


@bp.get("/Subscription/<int:sid>/UsagePoint/<up_id>/MeterReading/<int:mr_id>/IntervalBlock")
@bp.get(
    "/Subscription/<int:sid>/UsagePoint/<up_id>/MeterReading/<int:mr_id>/IntervalBlock/<int:block_id>"
)
def interval_blocks(sid: int, up_id: str, mr_id: int, block_id: int | None = None) -> Response:
    _, mr, mr_row = meter_reading_of(sid, up_id, mr_id)
    low, high = period()
    if block_id is not None:
        row = db.session().get(db.Block, block_id)
        if row is None or row.meter_reading_id != mr_row.id:
            abort(404, "no such interval block for this meter reading")
        return atom(store.block(row, mr), sid)
    mr_id = mr_row.id
    return streamed(
        lambda s: (store.block(b, mr) for b in store.block_rows(s, mr_id, low, high)), sid
    )


@bp.get("/ReadingType")
@bp.get("/ReadingType/<int:rt_id>")
def reading_types(rt_id: int | None = None) -> Response:
    bearer(db.ACCESS)
    s = db.session()
    if rt_id is not None:
        row = s.get(db.ReadingType, rt_id)
        if row is None:
            abort(404, "no such reading type")
        return atom(store.reading_type(row))
    return atom(
        [
            store.reading_type(r)
            for r in s.scalars(select(db.ReadingType).order_by(db.ReadingType.id))
        ]
    )


@bp.get("/LocalTimeParameters")
@bp.get("/LocalTimeParameters/<int:ltp_id>")
def local_time_parameters(ltp_id: int | None = None) -> Response:
    bearer(db.ACCESS)
    if ltp_id not in (None, 1):
        abort(404, "the sandbox has one LocalTimeParameters (1: Pacific), as PG&E does")
    ltp = store.ltp_for("America/Los_Angeles")
    return atom(ltp if ltp_id else [ltp])


#: Which retail-customer resources each function block shares (FB 51, common, shares none alone).
CUSTOMER_BLOCKS: dict[int, tuple[type, ...]] = {
    54: (m.Customer,),  # basic information
    56: (m.CustomerAccount, m.Statement),  # billing information
    57: (m.CustomerAccount, m.CustomerAgreement),  # account and agreement information
    58: (m.ServiceLocation,),
    59: (m.ServiceSupplier,),
    60: (m.Meter,),
}


def granted(auth: db.Authorization) -> frozenset[int]:
    return scopes.granted_blocks(auth.scope, auth.client.scope)


def customer_kinds(auth: db.Authorization) -> tuple[type, ...]:
    """The customer resources the authorization's scope shares."""
    blocks = granted(auth)
    return tuple(kind for n in sorted(blocks) for kind in CUSTOMER_BLOCKS.get(n, ()))


#: Any of these in the scope shares retail-customer data (FB 51-70); DR enrollment needs one.
RETAIL_CUSTOMER = frozenset(range(51, 71))


def shares_customer_data(auth: db.Authorization) -> bool:
    return bool(granted(auth) & RETAIL_CUSTOMER)


def customer_resources(auth: db.Authorization) -> list[Any]:
    kinds = customer_kinds(auth)
    xml = auth.customer.customer_xml
    if not kinds or not xml:
        return []
    return [r for r in espi.parse(xml.encode()).entries if isinstance(r, kinds)]


@bp.get("/Batch/RetailCustomer/<int:rc_id>")
def retail_customer(rc_id: int) -> Response:
    auth = subscription(rc_id)
    if not customer_kinds(auth):
        raise Refused(
            403, "insufficient_scope", "the customer shared no account information (FB 54-60)"
        )
    return atom(customer_resources(auth), rc_id)


def dr_agreement(auth: db.Authorization) -> m.CustomerAgreement:
    """Demand-response enrollment as an ESPI CustomerAgreement with DemandResponseProgram
    elements (customer.xsd), one per program. PG&E's own format is not public."""
    programs = [
        m.DemandResponseProgram(
            program_name=p["name"],
            enrollment_status=p["status"],
            program_date=[
                m.ProgramDate(program_date=p["since"], program_date_description="enrolled")
            ],
        )
        for p in json.loads(auth.customer.dr_programs)
    ]
    return m.CustomerAgreement(
        agreement_id=str(auth.id),
        demand_response_programs=programs,
        title="DR enrollment",
        links=store.self_link(f"RetailCustomer/{auth.id}/CustomerAgreement/{auth.id}"),
    )


def dr_agreements(auth: db.Authorization) -> list[m.CustomerAgreement]:
    return [dr_agreement(auth)] if shares_customer_data(auth) else []


@bp.get("/Batch/RetailDRPrgInfo/<int:rc_id>")
def retail_dr(rc_id: int) -> Response:
    auth = subscription(rc_id)
    if not shares_customer_data(auth):
        raise Refused(
            403, "insufficient_scope", "the customer shared no retail-customer data (FB 51-70)"
        )
    return atom(dr_agreements(auth), rc_id)


# --------------------------------------------------------------------------- third-party rows


@bp.get("/ReadServiceStatus")
def service_status() -> Response:
    client_token()
    return atom(m.ServiceStatus(current_status=espi.ESPIServiceStatus.NORMAL))


@bp.get("/DownloadSampleData")
def sample_data() -> Response:
    client_token()
    s = db.session()
    row = s.scalar(select(db.UsagePoint).order_by(db.UsagePoint.id))
    if row is None:
        abort(503, "no sandbox data: run `flask --app datacustodian seed`")
    last = s.scalar(
        select(db.Block.start)
        .join(db.MeterReading)
        .where(db.MeterReading.usage_point_id == row.id)
        .order_by(db.Block.start.desc())
    )
    low = (last or 0) - 86400
    return atom(espi.builder.feed(store.usage_point(s, row, published_min=low)))


@bp.get("/Authorization")
def authorizations() -> Response:
    client = client_token()
    rows = db.session().scalars(
        select(db.Authorization)
        .where(db.Authorization.client_id == client.id)
        .order_by(db.Authorization.id)
    )
    return atom([store.authorization(r) for r in rows])


@bp.get("/Authorization/<int:aid>")
def authorization(aid: int) -> Response:
    return atom(store.authorization(own_authorization(client_token(), aid)))


@bp.delete("/Authorization/<int:aid>")
def revoke(aid: int) -> Response:
    """Revoke: the authorization, every token issued under it and any code not yet redeemed,
    in one transaction (a refresh racing with it makes a token of a revoked authorization,
    which ``bearer`` refuses)."""
    auth = own_authorization(client_token(), aid)
    auth.status = 0
    s = db.session()
    s.execute(update(db.Token).where(db.Token.authorization_id == auth.id).values(revoked=True))
    s.execute(delete(db.AuthCode).where(db.AuthCode.authorization_id == auth.id))
    s.commit()
    return Response(status=204)


@bp.get("/ApplicationInformation/<int:client_pk>")
def application_information(client_pk: int) -> Response:
    token = bearer(db.REGISTRATION)
    if token.client_id != client_pk:
        raise Refused(
            403, "access_denied", "that ApplicationInformation belongs to another third party"
        )
    return atom(store.application_information(token.client, presented_token()))


@bp.errorhandler(400)
@bp.errorhandler(404)
@bp.errorhandler(500)
@bp.errorhandler(503)
def http_error(err: Any) -> Response:
    return http_problem(err)
