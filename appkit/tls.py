"""TLS for the servers here: the custodian, and the fakes of providers that demand client
certificates (WattzOn)."""

from __future__ import annotations

import ssl


def tls_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """The server's TLS: its certificate, and (with ``client_ca``) client certificates asked for
    and checked against that CA. A connection without one is let in and the app answers it (the
    custodian 400 as PG&E does, WattzOn's fake 403); one another CA signed fails the handshake."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(client_ca)
    return ctx
