"""How the model maps to ESPI XML: element names, namespaces, field specs.

Shared by the reader and the writer, so that one table says what each element is.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree

from . import model as m

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


@dataclass(frozen=True, slots=True)
class FieldSpec:
    attr: str
    kind: type[Any]  # int, str, bool, float, a Code subclass or a model dataclass
    is_list: bool
    item: str | None


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
        specs[name] = FieldSpec(f.name, kind, is_list, f.metadata.get("item"))
    _SPECS[cls] = specs
    return specs


def local(tag: str) -> str:
    return tag[tag.rfind("}") + 1 :]


def norm_href(href: str) -> str:
    """A link target reduced to what identifies it: the path below ``.../resource/``."""
    path = unquote(urlsplit(href.strip()).path)
    i = path.rfind("/resource/")
    if i >= 0:
        path = path[i + len("/resource/") :]
    return path.strip("/")


def canonical(el: Any) -> str:
    """An element as canonical XML (C14N 2.0, prefixes rewritten): the same text whatever
    prefixes the document used, so kept unknown elements compare and round-trip exactly."""
    text = etree.tostring(el, with_tail=False, encoding="unicode")
    return str(etree.canonicalize(xml_data=text, rewrite_prefixes=True))
