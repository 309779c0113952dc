"""ESPI OAuth scope strings: ``FB=1_3_4_5_13;IntervalDuration=900_3600;BlockDuration=daily;...``.

Green Button Connect My Data encodes what a third party asks for in one scope value: the
function blocks (``FB``) plus parameters of the data. :func:`parse` reads one into a
:class:`Scope`, :meth:`Scope.format` writes it back, :func:`describe` says it in words (for
consent pages). Unknown function blocks and parameters are kept, not refused: custodians use
numbers from older ESPI lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import EspiError


class ScopeError(EspiError, ValueError):
    """A scope string that cannot be read; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class FunctionBlock:
    """``covers``: the data the block shares, in a customer's words ("" for protocol blocks)."""

    number: int
    name: str
    covers: str = ""


#: Function blocks by number: the Green Button Alliance catalogue, plus the older numbers
#: PG&E's Share My Data scopes still carry (14, 32).
FUNCTION_BLOCKS: dict[int, FunctionBlock] = {
    fb.number: fb
    for fb in [
        FunctionBlock(1, "Usage Data Common", "your service agreements and meters"),
        FunctionBlock(2, "Usage Data Download My Data", "files the customer downloads"),
        FunctionBlock(3, "Usage Data Connect My Data"),
        FunctionBlock(4, "Interval Metering", "your energy use, interval by interval"),
        FunctionBlock(5, "Electricity Interval Metering", "electricity use by interval"),
        FunctionBlock(6, "Demand Electricity Metering", "demand readings"),
        FunctionBlock(7, "Net Electricity Metering", "net metering"),
        FunctionBlock(
            8,
            "Forward and Reverse Electricity Metering",
            "electricity used and sent back to the grid",
        ),
        FunctionBlock(9, "Register Values Electricity Metering", "meter register readings"),
        FunctionBlock(10, "Natural Gas Interval Metering", "gas use by interval"),
        FunctionBlock(11, "Water Interval Metering", "water use by interval"),
        FunctionBlock(12, "Cost of Interval Data", "the cost of each interval"),
        FunctionBlock(13, "Energy Usage Security and Privacy Class"),
        FunctionBlock(14, "Authorization and Authentication"),
        FunctionBlock(15, "Usage Summary", "usage totals for each bill"),
        FunctionBlock(16, "Usage Summary with Cost", "the amount of each bill"),
        FunctionBlock(17, "Electricity Power Quality Summary", "power quality"),
        FunctionBlock(27, "Usage Summary with Demands and Previous Day Attributes", "demands"),
        FunctionBlock(28, "Usage Summary Costs for Current Billing Period", "costs to date"),
        FunctionBlock(29, "Temperature Interval Metering", "temperature readings"),
        FunctionBlock(30, "Usage Data Common User Experience", ""),
        FunctionBlock(31, "Usage Data Authorization and Authentication w/o Pre-Negotiated Scope"),
        FunctionBlock(32, "Resource Level REST"),
        FunctionBlock(34, "SFTP for Usage Data Bulk", "bulk files over SFTP"),
        FunctionBlock(35, "REST for Usage Data Bulk"),
        FunctionBlock(37, "Usage Data Query Parameters"),
        FunctionBlock(39, "Usage Data PUSH Model"),
        FunctionBlock(40, "Usage Data Offline Authorization", ""),
        FunctionBlock(41, "Manage ApplicationInformation Resource", ""),
        FunctionBlock(44, "Manage Authorization Resource", ""),
        FunctionBlock(51, "Retail Customer Common", "your customer record"),
        FunctionBlock(52, "Retail Customer Download My Data", ""),
        FunctionBlock(53, "Retail Customer Connect My Data", ""),
        FunctionBlock(54, "Retail Customer Basic Information", "your name and contact details"),
        FunctionBlock(55, "Retail Customer Demographic Information", ""),
        FunctionBlock(56, "Retail Customer Billing Information", "billing details"),
        FunctionBlock(
            57,
            "Retail Customer Account-Agreement Information",
            "your accounts and service agreements",
        ),
        FunctionBlock(58, "Retail Customer Service-Location Information", "your service addresses"),
        FunctionBlock(59, "Retail Customer Service-Supplier Information", "energy suppliers"),
        FunctionBlock(60, "Retail Customer Meter Information", "meters"),
        FunctionBlock(61, "Retail Customer End-Device Information", "end devices"),
        FunctionBlock(62, "Retail Customer Program-Date-ID-Mappings Information", "programs"),
        FunctionBlock(63, "Retail Customer Common User Experience", ""),
        FunctionBlock(64, "Retail Customer Security and Privacy Class", ""),
        FunctionBlock(
            65, "Retail Customer Authorization and Authentication w/o Pre-Negotiated Scope"
        ),
        FunctionBlock(66, "SFTP for Retail Customer Bulk", ""),
        FunctionBlock(67, "REST for Retail Customer Bulk", ""),
        FunctionBlock(69, "Retail Customer PUSH Model", ""),
        FunctionBlock(70, "Retail Customer Offline Authorization", ""),
    ]
}  # fmt: skip


def function_block(number: int) -> FunctionBlock:
    return FUNCTION_BLOCKS.get(number) or FunctionBlock(number, f"Function block {number}")


#: The parameters a scope may carry, in the order they are written.
KNOWN_PARAMETERS = (
    "IntervalDuration",
    "BlockDuration",
    "HistoryLength",
    "SubscriptionFrequency",
    "AccountCollection",
    "BR",
)
NUMERIC_LISTS = ("IntervalDuration",)
NUMBERS = ("HistoryLength", "AccountCollection")


@dataclass(frozen=True, slots=True)
class Scope:
    """One ESPI scope. Durations in seconds; other parameters kept as written."""

    function_blocks: tuple[int, ...]
    interval_durations: tuple[int, ...] = ()
    block_duration: str | None = None
    history_length: int | None = None
    subscription_frequency: str | None = None
    account_collection: int | None = None
    bulk_id: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())

    def format(self) -> str:
        parts = ["FB=" + "_".join(str(n) for n in self.function_blocks)]
        if self.interval_durations:
            parts.append("IntervalDuration=" + "_".join(map(str, self.interval_durations)))
        for key, value in (
            ("BlockDuration", self.block_duration),
            ("HistoryLength", self.history_length),
            ("SubscriptionFrequency", self.subscription_frequency),
            ("AccountCollection", self.account_collection),
            ("BR", self.bulk_id),
        ):
            if value is not None:
                parts.append(f"{key}={value}")
        parts += [f"{k}={v}" for k, v in self.extra]
        return ";".join(parts)

    def __str__(self) -> str:
        return self.format()

    def blocks(self) -> list[FunctionBlock]:
        return [function_block(n) for n in self.function_blocks]

    def includes(self, number: int) -> bool:
        return number in self.function_blocks


SCOPE_PART = re.compile(r"^([A-Za-z]+)=([^;=]*)$")


def parse(text: str) -> Scope:
    """Read a scope string. Raises :class:`ScopeError` naming the part that is wrong."""
    text = text.strip()
    if not text:
        raise ScopeError("empty scope")
    values: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = SCOPE_PART.match(part)
        if match is None:
            raise ScopeError(f"scope part {part!r} is not NAME=VALUE")
        key, value = match.groups()
        if key in values:
            raise ScopeError(f"scope names {key} twice")
        if key == "FB" or key in KNOWN_PARAMETERS:
            values[key] = value
        else:
            extra.append((key, value))
    if "FB" not in values:
        raise ScopeError(f"scope {text!r} has no FB= list of function blocks")
    blocks = numbers("FB", values["FB"])
    if not blocks:
        raise ScopeError("FB= names no function block")
    return Scope(
        function_blocks=blocks,
        interval_durations=numbers("IntervalDuration", values.get("IntervalDuration", "")),
        block_duration=values.get("BlockDuration"),
        history_length=number("HistoryLength", values.get("HistoryLength")),
        subscription_frequency=values.get("SubscriptionFrequency"),
        account_collection=number("AccountCollection", values.get("AccountCollection")),
        bulk_id=values.get("BR"),
        extra=tuple(extra),
    )


def numbers(key: str, text: str) -> tuple[int, ...]:
    if not text:
        return ()
    out = []
    for item in text.split("_"):
        if not item.isdigit():
            raise ScopeError(f"{key}={text}: {item!r} is not a whole number")
        out.append(int(item))
    return tuple(out)


def number(key: str, text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise ScopeError(f"{key}={text}: not a whole number")
    return int(text)


def duration_words(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def describe(scope: Scope) -> list[str]:
    """What the scope shares, in a customer's words, a line per item (for consent pages):
    the data its function blocks cover, then how fine and how far back."""
    lines: list[str] = []
    for fb in scope.blocks():
        line = fb.covers[:1].upper() + fb.covers[1:]
        if line and line not in lines:
            lines.append(line)
    if scope.interval_durations:
        lines.append("Readings every " + " or ".join(map(duration_words, scope.interval_durations)))
    if scope.history_length:
        lines.append(f"History: {duration_words(scope.history_length)}")
    if scope.subscription_frequency:
        lines.append(f"Updated: {scope.subscription_frequency.lower()}")
    return lines
