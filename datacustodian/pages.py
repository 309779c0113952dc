"""The customer's side: sandbox login, the consent page, and the OAuth endpoints."""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, abort, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.security import check_password_hash

from appkit.http import problem
from espi import scope as espi_scope

from . import db
from .oauth import server

bp = Blueprint("pages", __name__)


def current_customer() -> db.Customer | None:
    customer_id = session.get("customer_id")
    return db.session().get(db.Customer, customer_id) if customer_id else None


@bp.get("/")
def home() -> str:
    s = db.session()
    customers = list(s.scalars(select(db.Customer).order_by(db.Customer.id)))
    clients = list(s.scalars(select(db.Client).order_by(db.Client.id)))
    return render_template("home.html", customers=customers, clients=clients)


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
            return redirect(request.args.get("next") or url_for("pages.home"))
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


@bp.route("/datacustodian/oauth/v2/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    customer = current_customer()
    if customer is None:
        return redirect(url_for("pages.login", next=request.full_path))
    if request.method == "GET":
        try:
            grant = server().get_consent_grant(end_user=customer)
        except OAuth2Error as err:
            return render_template("error.html", error=err.error, description=err.description), 400
        client = grant.client
        scope = grant.request.payload.scope or client.scope
        words, blocks = scope_words(scope)
        return render_template(
            "consent.html",
            client=client,
            customer=customer,
            scope=scope,
            words=words,
            blocks=blocks,
            usage_points=customer.usage_points,
        )
    try:
        grant = server().get_consent_grant(end_user=customer)
    except OAuth2Error as err:
        return render_template("error.html", error=err.error, description=err.description), 400
    if request.form.get("decision") != "approve":
        return server().create_authorization_response(grant=grant, grant_user=None)
    chosen = [int(x) for x in request.form.getlist("usage_point")]
    mine = {up.id for up in customer.usage_points}
    if not chosen or not set(chosen) <= mine:
        abort(400, "choose at least one of your service agreements")
    authorization = grant_authorization(customer, chosen)
    return server().create_authorization_response(grant=grant, grant_user=authorization)


def grant_authorization(customer: db.Customer, usage_point_ids: list[int]) -> db.Authorization:
    """The ESPI Authorization a consent creates (the code carries it to the token exchange)."""
    s = db.session()
    client = s.scalar(
        select(db.Client).where(db.Client.client_id == request.values.get("client_id"))
    )
    if client is None:
        abort(400, "unknown client_id")
    auth = db.Authorization(
        client=client,
        customer=customer,
        usage_point_ids=json.dumps(usage_point_ids),
        scope=request.values.get("scope") or client.scope,
    )
    s.add(auth)
    s.commit()
    return auth


@bp.get("/datacustodian/test/oauth/v2/authorize")
def test_authorize() -> Any:
    """PG&E's registration test: a code for the sandbox's test customer, without a login."""
    s = db.session()
    customer = s.scalar(select(db.Customer).order_by(db.Customer.id))
    if customer is None:
        abort(503, "no sandbox customer: run `flask --app datacustodian seed`")
    try:
        grant = server().get_consent_grant(end_user=customer)
    except OAuth2Error as err:
        return render_template("error.html", error=err.error, description=err.description), 400
    ids = [up.id for up in customer.usage_points]
    return server().create_authorization_response(
        grant=grant, grant_user=grant_authorization(customer, ids)
    )


@bp.post("/datacustodian/oauth/v2/token")
@bp.post("/datacustodian/test/oauth/v2/token")
def token() -> Response:
    return server().create_token_response()  # type: ignore[no-any-return]


@bp.route("/datacustodian/oauth/v2/token", methods=["GET", "PUT", "DELETE"])
@bp.route("/datacustodian/test/oauth/v2/token", methods=["GET", "PUT", "DELETE"])
def token_wrong_method() -> Response:
    return problem(405, "invalid_request", "the token endpoint takes POST only", {"Allow": "POST"})
