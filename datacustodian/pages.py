"""The customer's side: sandbox login, the consent page, and the OAuth endpoints."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from werkzeug.security import check_password_hash

from appkit.http import problem, security_headers
from espi import scope as espi_scope

from . import db
from .oauth import server

bp = Blueprint("pages", __name__)

#: The customer's forms: refused when posted from another site, never cached.
FORMS = ("pages.login", "pages.logout", "pages.authorize")
#: The custodian's pages load nothing but their own styles and images. (The shared headers'
#: Referrer-Policy is "same-origin", not "no-referrer": with that, browsers send
#: ``Origin: null`` with the pages' own forms, which :func:`same_origin_forms` refuses.)
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def own_origins() -> set[str]:
    return {request.host_url.rstrip("/"), current_app.config["BASE_URL"].rstrip("/")}


@bp.before_request
def same_origin_forms() -> None:
    """A form posted from another site (a forged consent or login) is refused: browsers say
    where a POST comes from in ``Origin`` and ``Sec-Fetch-Site``; the session cookie is also
    ``SameSite=Lax``."""
    if request.method != "POST" or request.endpoint not in FORMS:
        return
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if (origin is not None and origin not in own_origins()) or site not in (None, "same-origin"):
        abort(403, "this form can only be sent from the data custodian's own pages")


@bp.after_app_request
def headers(response: Response) -> Response:
    """No page of the custodian may be framed (clickjacking of the consent), sniffed or leak its
    URL (an OAuth request) to another site in a Referer; the forms are never cached."""
    if request.endpoint in FORMS:
        response.headers["Cache-Control"] = "no-store"
    return security_headers(response, request.is_secure, CSP)


def current_customer() -> db.Customer | None:
    customer_id = session.get("customer_id")
    return db.session().get(db.Customer, customer_id) if customer_id else None


@bp.get("/")
def home() -> str:
    s = db.session()
    customers = list(s.scalars(select(db.Customer).order_by(db.Customer.id)))
    clients = list(s.scalars(select(db.Client).order_by(db.Client.id)))
    return render_template("home.html", customers=customers, clients=clients)


def local_path(target: str | None) -> str:
    """``target`` when it is a path on this site, else the home page. Refused: anything with a
    scheme or a host, ``//host``, and backslashes or control characters, which browsers turn
    into slashes or drop (``/\\host``, ``/<tab>/host``)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target)
    ):
        return url_for("pages.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("pages.home")
    return target


@bp.route("/datacustodian/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        customer = db.session().scalar(
            select(db.Customer).where(db.Customer.username == request.form.get("username", ""))
        )
        if customer is None or not check_password_hash(
            customer.password_hash, request.form.get("password", "")
        ):
            error = "That user name and password do not match a sandbox customer."
        else:
            session.clear()
            session["customer_id"] = customer.id
            return redirect(local_path(request.args.get("next")))
    return render_template("login.html", error=error), 401 if error else 200


@bp.post("/datacustodian/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("pages.home"))


def scope_words(text: str) -> tuple[list[str], list[espi_scope.FunctionBlock]]:
    """The scope in a customer's words, and its function blocks for the technical details."""
    try:
        parsed = espi_scope.parse(text)
    except espi_scope.ScopeError as err:
        return [f"(the request's scope cannot be read: {err})"], []
    return espi_scope.describe(parsed), parsed.blocks()


def refused(err: OAuth2Error) -> Any:
    """A request that cannot go on: back to the third party with the error (and its state)
    when its client and redirect URI are known good, else a page for the customer (RFC 6749
    section 4.1.2.1: never redirect to an unverified URI)."""
    if err.redirect_uri:
        return server().handle_error_response(None, err)
    return render_template("error.html", error=err.error, description=err.description), 400


@bp.route("/datacustodian/oauth/v2/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    customer = current_customer()
    try:  # the request is checked before anyone is asked to sign in
        grant = server().get_consent_grant(end_user=customer)
    except OAuth2Error as err:
        return refused(err)
    if customer is None:
        return redirect(url_for("pages.login", next=request.full_path))
    if request.method == "GET":
        scope = grant.request.scope
        words, blocks = scope_words(scope)
        return render_template(
            "consent.html",
            client=grant.client,
            customer=customer,
            scope=scope,
            words=words,
            blocks=blocks,
            usage_points=customer.usage_points,
        )
    if request.form.get("decision") != "approve":
        return server().create_authorization_response(grant=grant, grant_user=None)
    chosen = request.form.getlist("usage_point")
    mine = {str(up.id) for up in customer.usage_points}
    if not chosen or not set(chosen) <= mine:
        abort(400, "choose at least one of your service agreements")
    authorization = grant_authorization(grant, customer, sorted(map(int, set(chosen))))
    return server().create_authorization_response(grant=grant, grant_user=authorization)


def grant_authorization(
    grant: Any, customer: db.Customer, usage_point_ids: list[int]
) -> db.Authorization:
    """The ESPI Authorization a consent creates (the code carries it to the token exchange):
    for the client and scope the authorization server checked."""
    s = db.session()
    auth = db.Authorization(
        client=grant.client,
        customer=customer,
        usage_point_ids=json.dumps(usage_point_ids),
        scope=grant.request.scope,
    )
    s.add(auth)
    s.commit()
    return auth


@bp.get("/datacustodian/test/oauth/v2/authorize")
def test_authorize() -> Any:
    """PG&E's registration test: a code for the sandbox's test customer, without a login. Only
    where a sandbox turns it on (``SANDBOX_TEST_AUTHORIZE``)."""
    if not current_app.config["SANDBOX_TEST_AUTHORIZE"]:
        abort(404, "the test authorize endpoint is off: a sandbox turns it on with "
                   "DATACUSTODIAN_SANDBOX_TEST_AUTHORIZE=true")  # fmt: skip
    s = db.session()
    customer = s.scalar(select(db.Customer).order_by(db.Customer.id))
    if customer is None:
        abort(503, "no sandbox customer: run `flask --app datacustodian seed`")
    try:
        grant = server().get_consent_grant(end_user=customer)
    except OAuth2Error as err:
        return refused(err)
    ids = [up.id for up in customer.usage_points]
    return server().create_authorization_response(
        grant=grant, grant_user=grant_authorization(grant, customer, ids)
    )


@bp.post("/datacustodian/oauth/v2/token")
@bp.post("/datacustodian/test/oauth/v2/token")
def token() -> Response:
    return server().create_token_response()  # type: ignore[no-any-return]


@bp.route("/datacustodian/oauth/v2/token", methods=["GET", "PUT", "DELETE"])
@bp.route("/datacustodian/test/oauth/v2/token", methods=["GET", "PUT", "DELETE"])
def token_wrong_method() -> Response:
    return problem(405, "invalid_request", "the token endpoint takes POST only", {"Allow": "POST"})
