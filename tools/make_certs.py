"""A test certificate authority with a server and a client certificate, for mutual TLS.

    python tools/make_certs.py [FOLDER]     (default var/certs)

Writes ca.pem, server.pem + server.key (for 127.0.0.1 and localhost), client.pem + client.key.
Test material only: keys are unencrypted and the CA lives 10 days.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    usage: list[x509.ObjectIdentifier] | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None
) -> None:
    (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path = folder / f"{stem}.key"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
        path.chmod(0o600)


def make(folder: Path, clients: dict[str, str] | None = None) -> Path:
    """``clients``: file stem -> common name of each client certificate (default: ``client``,
    "third party")."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("espi test CA", ca_key, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = issue("127.0.0.1", server_key, (ca.subject, ca_key), usage=[ExtendedKeyUsageOID.SERVER_AUTH],
                   sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])  # fmt: skip
    write(folder, "ca", ca, None)
    write(folder, "server", server, server_key)
    for stem, common in (clients or {"client": "third party"}).items():
        client_key = ec.generate_private_key(ec.SECP256R1())
        usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
        client = issue(common, client_key, (ca.subject, ca_key), usage=usage)
        write(folder, stem, client, client_key)
    return folder


if __name__ == "__main__":
    out = make(
        Path(
            sys.argv[1]
            if len(sys.argv) > 1
            else Path(__file__).resolve().parent.parent / "var" / "certs"
        )
    )
    print(f"test CA, server and client certificates in {out}")
