"""OAuth 2.0 as PG&E's Share My Data speaks it, on Authlib's authorization server.

- ``authorization_code`` (customer consent) -> ``access_token`` + ``refresh_token``, with the
  Subscription and Authorization in ``resourceURI`` and ``authorizationURI``;
- ``refresh_token`` -> new access and refresh tokens (the old refresh token stops working);
- ``client_credentials`` -> the third party's own token, answered under the key
  ``client_access_token`` as PG&E does;
- ``registration_access_token``: issued at registration, for ApplicationInformation.

Client authentication at the token endpoint is HTTP Basic only, and the endpoint takes POST only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, Response, current_app, request
from sqlalchemy import select

from appkit.http import problem

from . import db


def server() -> AuthorizationServer:
    """This app's authorization server (one per app: each has its own configuration)."""
    return current_app.extensions["dc.oauth"]  # type: ignore[no-any-return]


def resource_base() -> str:
    return current_app.config["BASE_URL"].rstrip("/") + "/GreenButtonConnect/espi/1_1/resource"


def query_client(client_id: str) -> db.Client | None:
    return db.session().scalar(select(db.Client).where(db.Client.client_id == client_id))


def save_token(token: dict[str, Any], req: Any) -> None:
    s = db.session()
    grant = req.payload.grant_type if req.payload is not None else None
    authorization_id = None
    if req.user is not None:  # the customer behind a code or a refresh token: an Authorization
        authorization_id = req.user.id
    kind = db.CLIENT if grant == "client_credentials" else db.ACCESS
    s.add(
        db.Token(
            kind=kind,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
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


class AddsSubscription:
    """Token answers for a customer carry the Subscription and Authorization, as PG&E's do."""

    request: Any

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        status, token, headers = super().create_token_response()  # type: ignore[misc]
        token.update(subscription_uris(self.request.user))
        return status, token, headers


class AuthorizationCodeGrant(AddsSubscription, grants.AuthorizationCodeGrant):
    """The customer's consent. ``request.user`` is the ESPI Authorization it created."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

    def save_authorization_code(self, code: str, req: Any) -> db.AuthCode:
        s = db.session()
        item = db.AuthCode(
            code=code,
            client_id=req.client.client_id,
            redirect_uri=req.payload.redirect_uri or "",
            scope=req.payload.scope or "",
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
                db.AuthCode.code == code, db.AuthCode.client_id == client.client_id
            )
        )
        return item if item is not None and not item.is_expired() else None

    def delete_authorization_code(self, authorization_code: db.AuthCode) -> None:
        s = db.session()
        s.delete(authorization_code)
        s.commit()

    def authenticate_user(self, authorization_code: db.AuthCode) -> db.Authorization | None:
        auth = authorization_code.authorization
        return auth if auth.status == 1 else None


class RefreshTokenGrant(AddsSubscription, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> db.Token | None:
        token = db.session().scalar(select(db.Token).where(db.Token.refresh_token == refresh_token))
        if token is None or token.revoked or token.is_revoked():
            return None
        return token

    def authenticate_user(self, refresh_token: db.Token) -> db.Authorization | None:
        return refresh_token.authorization

    def revoke_old_credential(self, refresh_token: db.Token) -> None:
        refresh_token.revoked = True
        db.session().commit()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        status, token, headers = super().create_token_response()
        token["client_access_token"] = token.pop("access_token")  # PG&E's key
        return status, token, headers


def init_app(app: Flask) -> None:
    app.config.setdefault(
        "OAUTH2_TOKEN_EXPIRES_IN", {"authorization_code": 3600, "client_credentials": 3600}
    )
    authorization_server = AuthorizationServer(
        app, query_client=query_client, save_token=save_token
    )
    authorization_server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=False)])
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


def bearer(kind: str) -> db.Token:
    """The request's bearer token, which must be valid and of ``kind``."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Refused(
            401, "invalid_request", f"this resource needs a {kind} (Authorization: Bearer ...)"
        )
    token = db.session().scalar(select(db.Token).where(db.Token.access_token == value.strip()))
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
