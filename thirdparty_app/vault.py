"""Tokens encrypted at rest (Fernet). The key comes from the environment
(``THIRDPARTY_TOKEN_KEY``, made with ``Fernet.generate_key()``), never from the repository."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def fernet() -> Fernet:
    return Fernet(current_app.config["TOKEN_KEY"])


def seal(secret: str | None) -> str | None:
    return None if secret is None else fernet().encrypt(secret.encode()).decode()


def unseal(sealed: str | None) -> str | None:
    if sealed is None:
        return None
    try:
        return fernet().decrypt(sealed.encode()).decode()
    except InvalidToken as err:
        raise RuntimeError(
            "a stored token cannot be decrypted: was THIRDPARTY_TOKEN_KEY changed?"
        ) from err
