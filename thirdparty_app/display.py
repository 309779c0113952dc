"""What the pages show, the way people read it. Names: a usage point by its title, or, where
the source's title is a placeholder (SCE's ``????????``, "Green Button Subscription Feed"),
by its utility, service kind and id; a connection by who the source says the customer is
(name, account number, service address). Numbers: money as ``$1,234.56``, energy in kWh with
the precision it deserves."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from urllib.parse import urlsplit

import espi

from . import db, queueing
from .db import ConnectionState

#: titles that name no usage point: empty, no letter or digit at all, or a feed's generic name
PLACEHOLDER = re.compile(
    r"[\W_]*|(test )?usage ?point|(green button|gb)\b.*\b(feed|data|file|export)",
    re.IGNORECASE,
)
#: utilities by the domain of their Green Button hrefs (uploads carry no other name)
UTILITY_DOMAINS = {
    "pge.com": "PG&E",
    "sce.com": "SCE",
    "sdge.com": "SDG&E",
    "coned.com": "Con Edison",
    "comed.com": "ComEd",
    "duke-energy.com": "Duke Energy",
    "nationalgridus.com": "National Grid",
    "xcelenergy.com": "Xcel Energy",
    "dteenergy.com": "DTE Energy",
    "pepco.com": "Pepco",
    "bge.com": "BGE",
    "centerpointenergy.com": "CenterPoint Energy",
}


def service_kind(up: db.UsagePoint) -> str:
    """ "electricity", "gas", "water"... ("" when the source does not say)."""
    if up.kind is None:
        return ""
    try:
        return espi.ServiceKind(up.kind).label
    except ValueError:
        return ""


def placeholder(title: str) -> bool:
    return PLACEHOLDER.fullmatch(title.strip()) is not None


def utility_of(href: str) -> str:
    host = (urlsplit(href).hostname or "").lower()
    for domain, name in UTILITY_DOMAINS.items():
        if host == domain or host.endswith("." + domain):
            return name
    return ""


def usage_point_name(up: db.UsagePoint) -> str:
    """The source's title, unless it is a placeholder: then the utility (when its hrefs tell),
    the service kind and the usage point's id ("PG&E electricity, usage point 5391320451")."""
    if not placeholder(up.title or ""):
        return (up.title or "").strip()
    ident = up.href.rstrip("/").rsplit("/", 1)[-1]
    what = " ".join(p for p in (utility_of(up.href), service_kind(up)) if p) or "Usage point"
    name = f"{what}, usage point {ident}" if ident and what != "Usage point" else f"{what} {ident}"
    return name[:1].upper() + name[1:]


def customer_facts(conn: db.Connection | None) -> list[str]:
    """Who the source says the customer is, as shared: name, account, service address."""
    if conn is None:
        return []
    facts = [conn.customer_name, f"account {conn.account_number}" if conn.account_number else ""]
    return [f for f in (*facts, conn.service_address) if f]


def reason(conn: db.Connection, title: str) -> str:
    """A connection's state for its customer, in plain words: what happened and what to do.
    Never the source's own text (an exception's message, an answer's body): that is
    ``conn.reason``, in the log and for operators only."""
    if conn.status == ConnectionState.FAILED:
        if not conn.connected:
            return f"{title} did not complete the connection: authorize again to share your data."
        if queueing.spent(conn.reason):
            return f"{title} could not be reached, even after several attempts. Press Retry."
        return (
            f"{title} did not give your data. Press Retry; if it fails again, authorize again "
            "(the authorization may have ended, or its password changed)."
        )
    if conn.status == ConnectionState.CONNECTING:
        return f"Waiting for your answer at {title}."
    if conn.status == ConnectionState.REVOKED:
        return "Sharing stopped: what was shared stays here until you delete it."
    attempt = queueing.next_attempt(conn.reason)
    return f"No data from {title} yet: {attempt}." if attempt else ""


# --------------------------------------------------------------------------- numbers

SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "EUR": "€", "GBP": "£"}


def money(amount: int | None, currency: str = "USD") -> str:
    """An ESPI amount (1/100000 of the currency) as people write it: ``$1,234.56``, ``−$3.10``
    ("—" when there is none)."""
    if amount is None:
        return "—"
    value = cents(amount)
    symbol = SYMBOLS.get(currency)
    text = f"{symbol}{abs(value):,.2f}" if symbol else f"{abs(value):,.2f} {currency}"
    return f"−{text}" if value < 0 else text


def cents(amount: int) -> Decimal:
    """An ESPI amount to the cent, as :func:`money` shows it."""
    return Decimal(amount).scaleb(-5).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def versus(amount: int, other: int, currency: str = "USD") -> str:
    """An amount beside another, as both are shown (to the cent): "$3.10 more than", "$0.40
    less than" or "the same as"."""
    diff = cents(amount) - cents(other)
    if not diff:
        return "the same as"
    return f"{money(int(abs(diff).scaleb(5)), currency)} {'more' if diff > 0 else 'less'} than"


def quantity(value: Decimal | float | None, unit: str = "kWh") -> str:
    """Energy (or gas, water) with the precision it deserves: two decimals under 10, one under
    100, none above; thousands separated (``1,234 kWh``, ``12.3 kWh``, ``0.42 kWh``)."""
    if value is None:
        return "—"
    size = abs(Decimal(value))
    places = 2 if size < 10 else 1 if size < 100 else 0
    return f"{Decimal(value):,.{places}f} {unit}"
