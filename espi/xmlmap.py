"""How the model maps to ESPI XML: element names, namespaces, field specs.

Shared by the reader and the writer, so that one table says what each element is.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from lxml import etree

from . import model as m
from .codes import Code, UnitMultiplierKind
from .model import norm_href as norm_href  # where links are compared

ATOM = f"{{{m.ATOM_NS}}}"
ESPI = f"{{{m.ESPI_NS}}}"
CUST = f"{{{m.CUSTOMER_NS}}}"

#: Resource element name -> model class (both namespaces; the namespace is checked apart).
RESOURCES: dict[str, type[Any]] = {
    "UsagePoint": m.UsagePoint,
    "MeterReading": m.MeterReading,
    "ReadingType": m.ReadingType,
    "IntervalBlock": m.IntervalBlock,
    "UsageSummary": m.UsageSummary,
    "ElectricPowerUsageSummary": m.UsageSummary,
    "ElectricPowerQualitySummary": m.ElectricPowerQualitySummary,
    "LocalTimeParameters": m.LocalTimeParameters,
    "TimeConfiguration": m.LocalTimeParameters,
    "ApplicationInformation": m.ApplicationInformation,
    "Authorization": m.Authorization,
    "ProgramIdMappings": m.ProgramIdMappings,
    "ServiceStatus": m.ServiceStatus,
    "BatchList": m.BatchList,
    "Customer": m.Customer,
    "CustomerAccount": m.CustomerAccount,
    "CustomerAgreement": m.CustomerAgreement,
    "ServiceLocation": m.ServiceLocation,
    "Meter": m.Meter,
    "ServiceSupplier": m.ServiceSupplier,
    "Statement": m.Statement,
}

#: Element names used by older schemas and real files, by class: legacy name -> current name.
LEGACY_NAMES: dict[type[Any], dict[str, str]] = {
    m.UsagePoint: {"ServiceDeliveryPoint": "serviceDeliveryPoint"},
}


def xml_name(f: dataclasses.Field[Any]) -> str | None:
    """The XML element name of a model field, or None when it is not XML content."""
    name = f.metadata.get("xml")
    if name is None:
        return None
    if name == "":
        head, *rest = f.name.split("_")
        return head + "".join(p[:1].upper() + p[1:] for p in rest)
    return str(name)


#: The instants ESPI can carry that every consumer can show: 0001-01-02 to 9999-12-30 UTC
#: (a day inside the range of ``datetime``, so any UTC offset still gives a date).
TIME_MIN = -62_135_510_400
TIME_MAX = 253_402_128_000

#: Integer types of espi.xsd and customer.xsd (and of ESPI code lists) -> inclusive range.
RANGES: dict[str, tuple[int, int]] = {
    "Int16": (-(2**15), 2**15 - 1),
    "UInt8": (0, 2**8 - 1),
    "UInt16": (0, 2**16 - 1),
    "UInt32": (0, 2**32 - 1),
    "Int48": (-(2**47), 2**47),  # the schema's own facets (its documentation says 2^47-1)
    "long": (-(2**63), 2**63 - 1),
    "TimeType": (TIME_MIN, TIME_MAX),
    # times and a period's duration, which some files give in milliseconds, and durations
    # open-ended beyond UInt32 (the reader converts them, then clamps the duration to UInt32)
    "TimeType (s or ms)": (TIME_MIN, TIME_MAX * 1000),
    "UInt32 (s or ms)": (0, 2**63 - 1),
    # TimeType offsets, kept within what a UTC offset can be (tzinfo: under a day)
    "tzOffset": (-16 * 3600, 16 * 3600),
    "dstOffset": (-4 * 3600, 4 * 3600),
    # the code list's own extent, pico to tera: a power of ten, so it must stay small
    "UnitMultiplierKind": (int(min(UnitMultiplierKind)), int(max(UnitMultiplierKind))),
}

#: The integer type of each integer element, by name: one name has one type throughout ESPI
#: (tests/test_numbers.py checks this table against the schemas). Other integers: xs:long.
INT_TYPES: dict[str, str] = {
    **dict.fromkeys(
        ("value", "cost", "amount", "rounding", "unitCost", "billLastPeriod", "billToDate",
         "costAdditionalLastPeriod", "purchasePrice", "lastBillAmount", "flickerPlt",
         "flickerPst", "harmonicVoltage", "longInterruptions", "mainsVoltage", "powerFrequency",
         "rapidVoltageChanges", "shortInterruptions", "supplyVoltageDips",
         "supplyVoltageImbalance", "supplyVoltageVariations", "tempOvervoltage"),
        "Int48",
    ),
    "intervalLength": "UInt32",
    **dict.fromkeys(("tou", "cpp", "consumptionTier"), "Int16"),
    **dict.fromkeys(("status", "measurementProtocol"), "UInt8"),
    **dict.fromkeys(
        ("dateTime", "time", "startEffectiveDate", "endEffectiveDate", "client_id_issued_at",
         "client_secret_expires_at", "expires_at", "createdDateTime", "lastModifiedDateTime",
         "signDate", "shutOffDateTime", "manufacturedDate", "purchaseDate", "receivedDate",
         "installationDate", "removalDate", "retiredDate", "programDate", "effectiveDate",
         "issueDateTime", "timeStamp", "statusTimeStamp"),
        "TimeType (s or ms)",
    ),
    "start": "TimeType (s or ms)",
    "duration": "UInt32 (s or ms)",
    "tzOffset": "tzOffset",
    "dstOffset": "dstOffset",
}  # fmt: skip


def int_type(name: str, kind: type[Any]) -> str:
    """The integer type (a key of :data:`RANGES`) of element ``name`` read as ``kind``."""
    if kind is UnitMultiplierKind:
        return "UnitMultiplierKind"
    if issubclass(kind, Code):
        return "UInt16"  # every other ESPI code list is a union over UInt16
    return INT_TYPES.get(name, "long")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    attr: str
    kind: type[Any]  # int, str, bool, float, a Code subclass or a model dataclass
    is_list: bool
    item: str | None
    int_type: str = "long"  # for integers and codes: a key of RANGES


_SPECS: dict[type[Any], dict[str, FieldSpec]] = {}


def field_specs(cls: type[Any]) -> dict[str, FieldSpec]:
    """XML element name -> how to read it, for a model class (computed once per class)."""
    if cls in _SPECS:
        return _SPECS[cls]
    hints = typing.get_type_hints(cls)
    specs: dict[str, FieldSpec] = {}
    for f in dataclasses.fields(cls):
        name = xml_name(f)
        if name is None:
            continue
        hint = hints[f.name]
        is_list = typing.get_origin(hint) is list
        if is_list:
            (kind,) = typing.get_args(hint)
        else:
            kind = next(a for a in typing.get_args(hint) if a is not type(None))
        number = isinstance(kind, type) and issubclass(kind, int) and kind is not bool
        specs[name] = FieldSpec(
            f.name,
            kind,
            is_list,
            f.metadata.get("item"),
            int_type(name, kind) if number else "long",
        )
    _SPECS[cls] = specs
    return specs


def local(tag: str) -> str:
    return tag[tag.rfind("}") + 1 :]


def canonical(el: Any) -> str:
    """An element as canonical XML (C14N 2.0, prefixes rewritten): the same text whatever
    prefixes the document used, so kept unknown elements compare and round-trip exactly."""
    text = etree.tostring(el, with_tail=False, encoding="unicode")
    return str(etree.canonicalize(xml_data=text, rewrite_prefixes=True))
