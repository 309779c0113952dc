"""OAuth 2.0 as PG&E's Share My Data speaks it, on Authlib's authorization server.

- ``authorization_code`` (customer consent) -> ``access_token`` + ``refresh_token``, with the
  Subscription and Authorization in ``resourceURI`` and ``authorizationURI``;
- ``refresh_token`` -> new access and refresh tokens (the old pair stops working);
- ``client_credentials`` -> the third party's own token, answered under the key
  ``client_access_token`` as PG&E does;
- ``registration_access_token``: issued at registration, for ApplicationInformation.

Client authentication at the token endpoint is HTTP Basic only, and the endpoint takes POST only.
Codes and refresh tokens work once, under any race; PKCE, when a client uses it, is S256; the
scope granted is never wider than the client's registered scope (``db.Client``); secrets,
codes and tokens are kept as hashes and looked up by them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, Response, current_app, request
from sqlalchemy import Executable, delete, select, update

from appkit.http import problem

from . import db


def server() -> AuthorizationServer:
    """This app's authorization server (one per app: each has its own configuration)."""
    found: AuthorizationServer = current_app.extensions["dc.oauth"]
    return found


def resource_base() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/") + "/GreenButtonConnect/espi/1_1/resource"


def query_client(client_id: str) -> db.Client | None:
    return db.session().scalar(select(db.Client).where(db.Client.client_id == client_id))


def save_token(token: dict[str, Any], req: Any) -> None:
    """Keep the new token's hashes; commit (with the code or refresh token spent for it)."""
    s = db.session()
    grant = req.payload.grant_type if req.payload is not None else None
    authorization_id = None
    if req.user is not None:  # the customer behind a code or a refresh token: an Authorization
        authorization_id = req.user.id
    kind = db.CLIENT if grant == "client_credentials" else db.ACCESS
    refresh = token.get("refresh_token")
    s.add(
        db.Token(
            kind=kind,
            access_hash=db.digest(token["access_token"]),
            refresh_hash=db.digest(refresh) if refresh else None,
            client_id=req.client.id,
            authorization_id=authorization_id,
            scope=token.get("scope", ""),
            expires_in=token.get("expires_in", 3600),
        )
    )
    s.commit()


def subscription_uris(authorization: db.Authorization) -> dict[str, str]:
    base = resource_base()
    return {
        "resourceURI": f"{base}/Batch/Subscription/{authorization.id}",
        "authorizationURI": f"{base}/Authorization/{authorization.id}",
    }


class CustomerGrant:
    """A grant that spends a one-time credential (a code, a refresh token) for a customer's
    tokens, and answers with the Subscription and Authorization as PG&E does.

    The credential is spent first, by one conditional statement (:meth:`spend`): of any
    number of racing requests exactly one changes the row, the others get ``invalid_grant``.
    The spending is committed with the new tokens (``save_token``), or not at all."""

    request: Any

    def spend(self) -> Executable:
        raise NotImplementedError

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        if db.session().execute(self.spend()).rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidGrantError("this code or refresh token has already been used")
        status, token, headers = super().create_token_response()  # type: ignore[misc]
        token.update(subscription_uris(self.request.user))
        return status, token, headers


class AuthorizationCodeGrant(CustomerGrant, grants.AuthorizationCodeGrant):
    """The customer's consent. ``request.user`` is the ESPI Authorization it created."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

    def save_authorization_code(self, code: str, req: Any) -> db.AuthCode:
        s = db.session()
        item = db.AuthCode(
            code_hash=db.digest(code),
            client_id=req.client.client_id,
            redirect_uri=req.payload.redirect_uri or "",
            scope=req.scope,  # what get_allowed_scope let through
            authorization_id=req.user.id,
            code_challenge=req.payload.data.get("code_challenge"),
            code_challenge_method=req.payload.data.get("code_challenge_method"),
        )
        s.add(item)
        s.commit()
        return item

    def query_authorization_code(self, code: str, client: db.Client) -> db.AuthCode | None:
        item = db.session().scalar(
            select(db.AuthCode).where(
                db.AuthCode.code_hash == db.digest(code),
                db.AuthCode.client_id == client.client_id,
            )
        )
        return item if item is not None and not item.is_expired() else None

    def spend(self) -> Executable:
        return delete(db.AuthCode).where(db.AuthCode.id == self.request.authorization_code.id)

    def delete_authorization_code(self, authorization_code: db.AuthCode) -> None:
        pass  # spent before the tokens were made

    def authenticate_user(self, authorization_code: db.AuthCode) -> db.Authorization | None:
        auth = authorization_code.authorization
        return auth if auth.status == 1 else None


class RefreshTokenGrant(CustomerGrant, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> db.Token | None:
        token = db.session().scalar(
            select(db.Token).where(db.Token.refresh_hash == db.digest(refresh_token))
        )
        if token is None or token.is_revoked():
            return None
        return token

    def authenticate_user(self, refresh_token: db.Token) -> db.Authorization | None:
        return refresh_token.authorization

    def spend(self) -> Executable:
        # the old pair stops working: its access token too
        old = self.request.refresh_token
        return (
            update(db.Token)
            .where(db.Token.id == old.id, db.Token.revoked.is_(False))
            .values(revoked=True)
        )

    def revoke_old_credential(self, refresh_token: db.Token) -> None:
        pass  # spent before the tokens were made


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

    def validate_requested_scope(self) -> None:
        if self.client.get_allowed_scope(self.request.payload.scope) is None:
            raise InvalidScopeError()

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        status, token, headers = super().create_token_response()
        token["client_access_token"] = token.pop("access_token")  # PG&E's key
        return status, token, headers


class S256Only(CodeChallenge):
    """PKCE (RFC 7636) when the client uses it, with S256 only: ``plain``, which is also what a
    challenge without a method means, is refused."""

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        used = data.get("code_challenge") or data.get("code_challenge_method")
        if used and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256: plain PKCE is not accepted"
            )
        super().validate_code_challenge(grant, redirect_uri)


def init_app(app: Flask) -> None:
    app.config.setdefault(
        "OAUTH2_TOKEN_EXPIRES_IN", {"authorization_code": 3600, "client_credentials": 3600}
    )
    authorization_server = AuthorizationServer(
        app, query_client=query_client, save_token=save_token
    )
    authorization_server.register_grant(AuthorizationCodeGrant, [S256Only(required=False)])
    authorization_server.register_grant(RefreshTokenGrant)
    authorization_server.register_grant(ClientCredentialsGrant)
    app.extensions["dc.oauth"] = authorization_server


# --------------------------------------------------------------------------- resource access


class Refused(Exception):
    """A resource request refused: 401 (no or bad token) or 403 (wrong kind, other data)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def response(self) -> Response:
        challenge = (
            {"WWW-Authenticate": f'Bearer error="{self.error}"'} if self.status == 401 else None
        )
        return problem(self.status, self.error, self.description, challenge)


def presented_token() -> str:
    """The bearer token the request presents ("" without one)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def bearer(kind: str) -> db.Token:
    """The request's bearer token, which must be valid and of ``kind`` (found by its hash)."""
    value = presented_token()
    if not value:
        raise Refused(
            401, "invalid_request", f"this resource needs a {kind} (Authorization: Bearer ...)"
        )
    token = db.session().scalar(select(db.Token).where(db.Token.access_hash == db.digest(value)))
    if token is None:
        raise Refused(401, "invalid_token", "unknown token")
    if token.is_expired():
        raise Refused(401, "invalid_token", "the token has expired")
    if token.is_revoked():
        raise Refused(401, "invalid_token", "the token has been revoked")
    if token.kind != kind:
        raise Refused(
            403, "insufficient_scope", f"this resource needs a {kind}, not a {token.kind}"
        )
    return token
