"""Accounts: sign-up, sign-in and sign-out, password reset, API keys, and who may see what.

Every route needs a signed-in account unless it is marked :func:`public` (sign-in pages, the
custodians' and providers' notification webhooks, the OpenAPI document, static files): a new
route is private without anyone remembering to make it so. The JSON API and the exports also
take ``Authorization: Bearer KEY`` (:func:`api_key_allowed`).

Customers see only what their connections brought; operators (the third party's staff, made
with ``flask --app thirdparty_app create-operator``) see every customer. Another account's id
answers 404, as an id that does not exist.

Sessions are Flask's signed cookies; the session's user id carries the account's random
``session_key``, renewed at sign-out, password change and reset, so those end every session
signed in before (a copied cookie included). Sign-in clears the session first (no fixation).
Passwords are hashed with werkzeug's scrypt. A reset link is signed, expires after an hour and
stops working once the password has changed; it points at ``BASE_URL`` (never at the Host a
request named); it is sent by mail when ``MAIL_SERVER`` is set, and written to the log and to
``instance/outbox/`` otherwise (development). A reset also revokes the account's API keys.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import smtplib
import time
from collections.abc import Callable
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, TypeVar

import click
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Select, delete, func, or_, select
from werkzeug.security import check_password_hash, generate_password_hash

from appkit.http import problem

from . import db
from .ratelimit import clear, count

log = logging.getLogger(__name__)
bp = Blueprint("accounts", __name__)
F = TypeVar("F", bound=Callable[..., Any])
PUBLIC: set[Callable[..., Any]] = set()
API_KEY_VIEWS: set[Callable[..., Any]] = set()
KEY_PREFIX = "gbk_"
RESET_MAX_AGE = 3600
MIN_PASSWORD = 10
csrf = CSRFProtect()
DUMMY_HASH = generate_password_hash(secrets.token_hex(16))  # checked when there is no account


def public(view: F) -> F:
    """Open to anyone: no account needed (the view checks whatever else it needs). Put it
    under the route decorator."""
    PUBLIC.add(view)
    return view


def webhook(view: F) -> F:
    """A machine's POST (a custodian's or a provider's notification): open to anyone and
    without a CSRF token; the view checks what is posted."""
    csrf.exempt(view)
    return public(view)


def api_key_allowed(view: F) -> F:
    """Also open to ``Authorization: Bearer KEY`` (an API key of the account)."""
    API_KEY_VIEWS.add(view)
    return view


def view_of(endpoint: str | None) -> Callable[..., Any] | None:
    return current_app.view_functions.get(endpoint or "")


def attempt_keys(email: str, what: str = "signin") -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = [(what, "address", request.remote_addr or "")]
    return [*keys, (what, "email", email)] if email else keys


def too_many_attempts(email: str = "", what: str = "signin") -> bool:
    """Guessing: at most ``SIGNIN_LIMIT`` attempts from one address and for one email address
    (sign-ups and reset mails are counted apart). Each attempt is counted before its password
    is checked, so guesses sent at once are held to the limit too; a right password clears the
    email address's count (:func:`attempt_succeeded`)."""
    limit = current_app.config["SIGNIN_LIMIT"]
    counted = [count(limit, *keys) for keys in attempt_keys(email, what)]
    return not all(counted)


def attempt_succeeded(email: str) -> None:
    clear(current_app.config["SIGNIN_LIMIT"], "signin", "email", email)


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "accounts.login"
    manager.login_message = "Sign in to see your energy data."
    manager.user_loader(load_session_user)
    manager.request_loader(load_api_key_user)
    csrf.init_app(app)
    app.before_request(require_account)
    app.register_blueprint(bp)
    register_commands(app)


# --------------------------------------------------------------------------- who is asking


def load_session_user(user_id: str) -> db.Account | None:
    account_id, _, key = user_id.partition(":")
    if not account_id.isdigit() or not key:
        return None
    found = db.session().get(db.Account, int(account_id))
    if found is None or not secrets.compare_digest(found.session_key, key):
        return None  # signed out, or the password changed, since: this session has ended
    return found


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_api_key_user(req: Any) -> db.Account | None:
    """The account of an API key, on the routes that take one."""
    header = req.headers.get("Authorization", "")
    if view_of(req.endpoint) not in API_KEY_VIEWS or not header.startswith("Bearer "):
        return None
    s = db.session()
    key = s.scalar(select(db.ApiKey).where(db.ApiKey.key_hash == key_hash(header[7:].strip())))
    if key is None:
        return None
    now = int(time.time())
    if now - key.last_used >= 60:  # recorded to the minute: no write on every request
        key.last_used = now
        s.commit()
    return s.get(db.Account, key.account_id)


def require_account() -> ResponseReturnValue | None:
    """Every non-public route: a signed-in account (or an API key where one is allowed)."""
    view = view_of(request.endpoint)
    if request.endpoint is None or request.endpoint == "static" or view in PUBLIC:
        return None
    if current_user.is_authenticated:
        return None
    if view in API_KEY_VIEWS:
        return problem(
            401,
            "invalid_token" if request.headers.get("Authorization") else "unauthorized",
            "sign in, or send Authorization: Bearer <API key> (made on the Account page)",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    if request.method != "GET":
        abort(401)
    return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))


def account() -> db.Account:
    """The signed-in account (only called on routes that require one)."""
    found: db.Account = current_user._get_current_object()
    return found


def is_operator() -> bool:
    return bool(current_user.is_authenticated and current_user.is_operator)


def visible(query: Select[Any]) -> Select[Any]:
    """Restrict a query over connections (joined or selected) to what the account may see."""
    if is_operator():
        return query
    return query.where(db.Connection.account_id == account().id)


def connections_query() -> Select[Any]:
    return visible(select(db.Connection))


def usage_points_query() -> Select[Any]:
    return visible(select(db.UsagePoint).join(db.Connection))


def connection(conn_id: int) -> db.Connection:
    """A connection the account may see; 404 otherwise (as for one that does not exist)."""
    found = db.session().scalar(connections_query().where(db.Connection.id == conn_id))
    if found is None:
        abort(404, f"no connection {conn_id}")
    return found  # type: ignore[no-any-return]


def usage_point(up_id: int) -> db.UsagePoint:
    """A usage point the account may see; 404 otherwise."""
    found = db.session().scalar(usage_points_query().where(db.UsagePoint.id == up_id))
    if found is None:
        abort(404, f"no usage point {up_id}")
    return found  # type: ignore[no-any-return]


def owner_only(conn: db.Connection | None) -> None:
    """What only the connection's own account may do (operators see; they do not end sharing,
    delete data or choose rate plans for a customer)."""
    if conn is None or conn.account_id != account().id:
        abort(403, "only the customer can do this")


# --------------------------------------------------------------------------- sign-up, sign-in


def safe_next(target: str | None) -> str:
    """A local path to go on to after signing in; anything else goes home."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("tp.home")
    if any(c in target for c in "\\\r\n\t") or ":" in target.split("?", 1)[0]:
        return url_for("tp.home")
    return target


def normal_email(text: str) -> str:
    return text.strip().lower()


def password_problem(password: str, email: str) -> str:
    if len(password) < MIN_PASSWORD:
        return f"Choose a password of at least {MIN_PASSWORD} characters."
    if len(password) > 1024:
        return "That password is too long."
    if password.lower() == email:
        return "Choose a password other than your email address."
    return ""


def valid_email(email: str) -> bool:
    """One address, as a mail header can carry it: no spaces or control characters."""
    if len(email) > 320 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in email):
        return False
    try:
        address = Address(addr_spec=email)
    except (ValueError, IndexError):
        return False
    return bool(address.username and "." in address.domain)


def create_account(email: str, password: str, name: str = "", role: str = "customer") -> db.Account:
    """A new account (ValueError with the reason when the email or password is not right)."""
    email = normal_email(email)
    if not valid_email(email):
        raise ValueError("Give a valid email address.")
    trouble = password_problem(password, email)
    if trouble:
        raise ValueError(trouble)
    s = db.session()
    if s.scalar(select(db.Account.id).where(db.Account.email == email)) is not None:
        raise ValueError("An account with that email address exists already: sign in instead.")
    found = db.Account(
        email=email,
        name=name.strip()[:200],
        password_hash=generate_password_hash(password),
        role=role,
    )
    s.add(found)
    s.commit()
    return found


def start_session(found: db.Account) -> None:
    session.clear()  # a new session at sign-in: nothing from before carries over
    found.last_login = int(time.time())
    db.session().commit()
    login_user(found)


@bp.route("/signup", methods=["GET", "POST"])
@public
def signup() -> Any:
    if request.method == "GET":
        return render_template("signup.html")
    form = request.form
    if too_many_attempts(what="signup"):  # each counts: no mass creation of accounts
        return render_template("signup.html", error=SLOW_DOWN), 429
    try:
        found = create_account(
            form.get("email", ""), form.get("password", ""), form.get("name", "")
        )
    except ValueError as err:
        return render_template(
            "signup.html", error=str(err), email=form.get("email", ""), name=form.get("name", "")
        ), 400
    start_session(found)
    log.info("account %s signed up", found.id)
    return redirect(url_for("tp.home"))


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    email = normal_email(request.form.get("email", ""))
    if too_many_attempts(email):
        return render_template("login.html", error=SLOW_DOWN, email=email), 429
    found = db.session().scalar(select(db.Account).where(db.Account.email == email))
    matches = password_matches(found, request.form.get("password", ""))  # hashes even if None
    if found is None or not matches:
        return render_template(
            "login.html",
            error="That email and password do not match.",
            email=email,
            next=request.form.get("next", ""),
        ), 401
    attempt_succeeded(email)
    start_session(found)
    return redirect(safe_next(request.form.get("next")))


SLOW_DOWN = "Too many attempts from here: wait a minute and try again."


def sign_out() -> None:
    """End this session, and every copy of its cookie (a new session key)."""
    if current_user.is_authenticated:
        account().new_session_key()
        db.session().commit()
    logout_user()
    session.clear()


@bp.post("/logout")
def logout() -> Any:
    sign_out()
    return redirect(url_for("accounts.login"))


def password_matches(found: db.Account | None, password: str) -> bool:
    stored = found.password_hash if found is not None else None
    return check_password_hash(stored or DUMMY_HASH, password) and stored is not None


def own_url(endpoint: str, **values: Any) -> str:
    """An absolute link to this app for a mail: under ``BASE_URL``, never under the Host a
    request named (a forged Host would send the link's token elsewhere)."""
    base = current_app.config["BASE_URL"] or request.host_url
    return base.rstrip("/") + url_for(endpoint, **values)


def reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def reset_token(found: db.Account) -> str:
    """Signed: the account and a fingerprint of its password hash (the link dies once used)."""
    fingerprint = hashlib.sha256((found.password_hash or "").encode()).hexdigest()[:16]
    return reset_serializer().dumps([found.id, fingerprint])


def account_of_reset(token: str) -> db.Account | None:
    try:
        account_id, fingerprint = reset_serializer().loads(token, max_age=RESET_MAX_AGE)
    except (SignatureExpired, BadSignature, ValueError, TypeError):
        return None
    found = db.session().get(db.Account, int(account_id))
    if found is None:
        return None
    current = hashlib.sha256((found.password_hash or "").encode()).hexdigest()[:16]
    return found if secrets.compare_digest(current, str(fingerprint)) else None


def send_mail(to: str, subject: str, body: str) -> None:
    """By SMTP when ``MAIL_SERVER`` is set; else into ``instance/outbox`` and the log."""
    message = EmailMessage()
    message["From"] = current_app.config.get("MAIL_FROM") or "no-reply@localhost"
    message["To"], message["Subject"] = to, subject
    message.set_content(body)
    server = current_app.config.get("MAIL_SERVER")
    if server:
        host, _, port = server.partition(":")
        try:
            with smtplib.SMTP(host, int(port or 25), timeout=10) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as err:  # the answer must not tell
            log.error("mail to %s (%s) not sent: %s", to, subject, err)
        return
    outbox = os.path.join(current_app.instance_path, "outbox")
    os.makedirs(outbox, exist_ok=True)
    name = f"{time.time_ns()}-{secrets.token_hex(4)}.eml"
    with open(os.path.join(outbox, name), "wb") as f:
        f.write(bytes(message))
    log.info("mail to %s (%s) written to %s", to, subject, os.path.join(outbox, name))


@bp.route("/reset", methods=["GET", "POST"])
@public
def reset_request() -> Any:
    if request.method == "GET":
        return render_template("reset_request.html")
    email = normal_email(request.form.get("email", ""))
    if too_many_attempts(email, "reset"):  # each ask counts: no flood of mail
        return render_template("reset_request.html", error=SLOW_DOWN), 429
    found = db.session().scalar(select(db.Account).where(db.Account.email == email))
    if found is not None and found.password_hash:
        link = own_url("accounts.reset", token=reset_token(found))
        send_mail(
            found.email,
            "Reset your password",
            f"To choose a new password, open this link within an hour:\n\n{link}\n\n"
            "If you did not ask for it, ignore this message.",
        )
    # the same answer whether or not the account exists
    return render_template("reset_request.html", sent=True)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@public
def reset(token: str) -> Any:
    found = account_of_reset(token)
    if found is None:
        return render_template("reset.html", invalid=True), 400
    if request.method == "GET":
        return render_template("reset.html")
    password = request.form.get("password", "")
    trouble = password_problem(password, found.email)
    if trouble:
        return render_template("reset.html", error=trouble), 400
    found.password_hash = generate_password_hash(password)
    found.new_session_key()  # every other session ends
    # whoever made the reset needed may also have made keys: they stop working
    db.session().execute(delete(db.ApiKey).where(db.ApiKey.account_id == found.id))
    db.session().commit()
    start_session(found)
    flash("Your password was changed; other sessions were signed out and API keys revoked.")
    return redirect(url_for("tp.home"))


# --------------------------------------------------------------------------- the account page


def new_api_key(owner: db.Account, name: str) -> str:
    """A new key for ``owner``; the key itself is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    s = db.session()
    s.add(
        db.ApiKey(
            account_id=owner.id,
            name=name.strip()[:100] or "API key",
            prefix=key[:12],
            key_hash=key_hash(key),
        )
    )
    s.commit()
    return key


@bp.get("/account")
def account_page(new_key: str | None = None) -> str:
    keys = db.session().scalars(
        select(db.ApiKey).where(db.ApiKey.account_id == account().id).order_by(db.ApiKey.id)
    )
    return render_template("account.html", keys=list(keys), new_key=new_key)


@bp.post("/account/keys")
def create_key() -> Any:
    """The new key is shown in this answer, once: it is stored nowhere but as its hash (not in
    the session cookie either)."""
    key = new_api_key(account(), request.form.get("name", ""))
    page = make_response(account_page(new_key=key))
    page.headers["Cache-Control"] = "no-store"
    return page


@bp.post("/account/keys/<int:key_id>/revoke")
def revoke_key(key_id: int) -> Any:
    s = db.session()
    key = s.scalar(
        select(db.ApiKey).where(db.ApiKey.id == key_id, db.ApiKey.account_id == account().id)
    )
    if key is None:
        abort(404)
    s.delete(key)
    s.commit()
    flash(f"The key {key.prefix}… was revoked: it no longer works.")
    return redirect(url_for("accounts.account_page"))


@bp.post("/account/password")
def change_password() -> Any:
    me = account()
    if too_many_attempts(me.email) or not password_matches(me, request.form.get("current", "")):
        flash("That is not your current password: nothing changed.", "error")
        return redirect(url_for("accounts.account_page"))
    trouble = password_problem(request.form.get("password", ""), me.email)
    if trouble:
        flash(trouble, "error")
        return redirect(url_for("accounts.account_page"))
    me.password_hash = generate_password_hash(request.form["password"])
    me.new_session_key()
    db.session().commit()
    start_session(me)
    flash("Your password was changed; other sessions were signed out.")
    return redirect(url_for("accounts.account_page"))


# --------------------------------------------------------------------------- operators


def operator_only() -> None:
    if not is_operator():
        abort(404)


@bp.get("/operator/customers")
def customers() -> str:
    """Every customer's connections, searchable by name, account number, address, email, and
    filtered by service kind and state; each row links to the customer's usage points and to
    its authorization (the pages an operator opens for any customer)."""
    from .views import STATES, services, titles, usage_points_of  # views imports this module

    operator_only()
    text = request.args.get("q", "").strip()
    kind = request.args.get("kind", "")
    state = request.args.get("state", "")
    query = select(db.Connection, db.Account).join(db.Account)
    if text:
        columns = (
            db.Connection.customer_name,
            db.Connection.account_number,
            db.Connection.service_address,
            db.Account.email,
            db.Account.name,
            db.Connection.label,
        )
        # "%" and "_" are searched as themselves, not as LIKE's wildcards (ESCAPE '/')
        query = query.where(
            or_(*(func.lower(c).contains(text.lower(), autoescape=True) for c in columns))
        )
    if state in set(db.ConnectionState):
        query = query.where(db.Connection.status == state)
    if kind.isdigit():
        query = query.where(
            db.Connection.id.in_(
                select(db.UsagePoint.connection_id).where(db.UsagePoint.kind == int(kind))
            )
        )
    rows = list(db.session().execute(query.order_by(db.Account.email, db.Connection.id).limit(500)))
    conns = [c for c, _ in rows]
    ups = usage_points_of([c.id for c in conns])
    return render_template(
        "customers.html",
        rows=rows,
        q=text,
        kind=kind,
        state=state,
        states=STATES,
        titles=titles(conns),
        usage_points=ups,
        services={c: services(found) for c, found in ups.items()},
    )


# --------------------------------------------------------------------------- commands


def register_commands(app: Flask) -> None:
    @app.cli.command("create-operator")
    @click.argument("email")
    @click.option("--name", default="")
    @click.password_option(envvar="THIRDPARTY_OPERATOR_PASSWORD", show_envvar=True)
    def create_operator(email: str, name: str, password: str) -> None:
        """Create an operator account (the third party's staff: sees every customer)."""
        try:
            found = create_account(email, password, name, role="operator")
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        click.echo(f"operator {found.email} created")

    @app.cli.command("set-password")
    @click.argument("email")
    @click.password_option(envvar="THIRDPARTY_NEW_PASSWORD", show_envvar=True)
    def set_password(email: str, password: str) -> None:
        """Set an account's password (and end its sessions)."""
        found = db.session().scalar(
            select(db.Account).where(db.Account.email == normal_email(email))
        )
        if found is None:
            raise click.ClickException(f"no account {email}")
        trouble = password_problem(password, found.email)
        if trouble:
            raise click.ClickException(trouble)
        found.password_hash = generate_password_hash(password)
        found.new_session_key()
        db.session().commit()
        click.echo(f"password of {found.email} set")
