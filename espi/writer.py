"""Writer: :mod:`espi.model` -> Green Button (ESPI 4.0 Atom) XML, valid against ``xsd/``.

    espi.dumps(feed)                     # bytes
    espi.write(feed, "out.xml")          # to a path (atomically) or a binary file
    with espi.FeedWriter(f, opts) as w:  # streaming, constant memory
        w.add(usage_point); w.add(block) ...

Links follow the ESPI REST paths (``{base}/Subscription/{id}/UsagePoint/{id}/MeterReading/...``)
and are generated from the object graph, keeping each resource's own id (the last segment of
its self link) when it has one. Atom ids are kept when a resource has one, else derived from the
self link (``urn:uuid`` version 5), so writing the same data twice gives the same document.
Elements the reader did not know (``.extra``) are left out unless ``keep_unknown=True``: the
default output is schema-valid.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import re
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

from lxml import etree

from . import model as m
from .codes import Code, ItemKind
from .errors import EspiWarning
from .schema import load_schema
from .xmlmap import ATOM, CUST, ESPI, RANGES, field_specs, norm_href

INT48, INT16, UINT16, UINT32, LONG = (
    RANGES[k] for k in ("Int48", "Int16", "UInt16", "UInt32", "long")
)

#: Atom as the default namespace, ESPI and customer with their usual prefixes. (Typed Any:
#: lxml-stubs do not allow the None key that names the default namespace.)
NSMAP: Any = {None: m.ATOM_NS, "espi": m.ESPI_NS, "cust": m.CUSTOMER_NS}
DEFAULT_BASE = "https://localhost/DataCustodian/espi/1_1/resource"


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """How documents are written.

    base: the resource URL prefix links are built on (``.../espi/1_1/resource``).
    subscription: the Subscription id usage points are listed under.
    retail_customer: the RetailCustomer id customer resources are listed under.
    keep_links: keep the links a resource already has (when it has self and up) instead of
        generating them.
    keep_unknown: write back elements the reader did not know (may make output invalid).
    now: the time written where a resource has no published/updated time (default: now).
    pretty: indent the output.
    """

    base: str = DEFAULT_BASE
    subscription: str = "1"
    retail_customer: str = "1"
    keep_links: bool = False
    keep_unknown: bool = False
    now: datetime | None = None
    pretty: bool = True


# --------------------------------------------------------------------------- links


#: Where each kind of resource lives, below its parent (or below the base when it has none).
COLLECTION = {
    m.UsagePoint: "UsagePoint",
    m.MeterReading: "MeterReading",
    m.IntervalBlock: "IntervalBlock",
    m.UsageSummary: "UsageSummary",
    m.ElectricPowerQualitySummary: "ElectricPowerQualitySummary",
    m.ReadingType: "ReadingType",
    m.LocalTimeParameters: "LocalTimeParameters",
    m.ApplicationInformation: "ApplicationInformation",
    m.Authorization: "Authorization",
    m.ProgramIdMappings: "ProgramIdMappings",
}


#: Characters XML 1.0 cannot carry.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def title_of(res: Any) -> str:
    """A resource's Atom title: its own (less characters XML cannot carry), else its kind in
    words (``Usage Point``)."""
    return NOT_XML.sub("", res.title or "") or re.sub(
        r"(?<=[a-z])(?=[A-Z])", " ", type(res).__name__
    )


SUBSCRIPTION_PATH = re.compile(r"(?:^|/)Subscription/([^/]+)/UsagePoint/[^/]+$")


def parent_of(res: Any) -> Any:
    if isinstance(res, m.IntervalBlock):
        return res.meter_reading
    if isinstance(res, m.MeterReading | m.UsageSummary | m.ElectricPowerQualitySummary):
        return res.usage_point
    return None


#: How many meter readings' block segments a LinkPlan remembers at once (blocks are written a
#: meter reading after another, or a few interleaved).
BLOCK_COLLECTIONS = 16


class LinkPlan:
    """Self, up and related hrefs for resources, from the object graph."""

    def __init__(self, options: WriteOptions) -> None:
        self.base = options.base.rstrip("/")
        self.options = options
        self.paths: dict[int, str] = {}  # id(resource) -> self path, for non-block resources
        self.used: dict[str, set[str]] = {}  # collection path -> segments given out
        self.keep: list[Any] = []  # keeps the resources in `paths` alive (ids stay unique)
        # blocks are many: their segments are remembered for the last few block collections
        # only (a streamed feed's memory does not grow with its blocks), how many each was
        # given for all (numbers given out never repeat)
        self.block_segments: OrderedDict[str, set[str]] = OrderedDict()
        self.block_counts: dict[str, int] = {}

    def collection(self, res: Any) -> str:
        kind = type(res)
        if isinstance(res, m.CustomerResource):
            return f"RetailCustomer/{self.options.retail_customer}/{kind.__name__}"
        name = COLLECTION[kind]
        if kind is m.UsagePoint:
            # a feed of several subscriptions (Bulk): each usage point keeps its own
            own = SUBSCRIPTION_PATH.search(norm_href(res.link("self") or ""))
            subscription = own.group(1) if own else self.options.subscription
            return f"Subscription/{subscription}/UsagePoint"
        parent = parent_of(res)
        return f"{self.path(parent)}/{name}" if parent is not None else name

    def path(self, res: Any) -> str:
        """The self path of a resource below the base (assigned once, unique)."""
        known = self.paths.get(id(res))
        if known is not None:
            return known
        collection = self.collection(res)
        block = isinstance(res, m.IntervalBlock)
        used = self.recent_blocks(collection) if block else self.used.setdefault(collection, set())
        given = self.block_counts.get(collection, 0) if block else len(used)
        href = res.link("self")
        segment = quote(norm_href(href).rsplit("/", 1)[-1], safe="=,:@-._~") if href else ""
        if not segment or segment in used:
            n = given + 1
            while str(n) in used:
                n += 1
            segment = str(n)
        path = f"{collection}/{segment}"
        used.add(segment)
        if block:  # never a parent: no need to remember its path
            self.block_counts[collection] = given + 1
            return path
        self.paths[id(res)] = path
        self.keep.append(res)
        return path

    def recent_blocks(self, collection: str) -> set[str]:
        """The segments given to the blocks of ``collection`` (kept for the last
        :data:`BLOCK_COLLECTIONS` block collections written)."""
        used = self.block_segments.get(collection)
        if used is None:
            used = self.block_segments[collection] = set()
            if len(self.block_segments) > BLOCK_COLLECTIONS:
                self.block_segments.popitem(last=False)
        else:
            self.block_segments.move_to_end(collection)
        return used

    def links(self, res: Any) -> list[m.Link]:
        if self.options.keep_links and res.link("self") and res.link("up"):
            return list(res.links)
        me = self.path(res)
        out = [
            m.Link(rel="self", href=f"{self.base}/{me}"),
            m.Link(rel="up", href=f"{self.base}/{me.rsplit('/', 1)[0]}"),
        ]
        related: list[str] = []
        if isinstance(res, m.UsagePoint):
            related.append(f"{me}/MeterReading")
            if res.usage_summaries:
                related.append(f"{me}/UsageSummary")
            if res.power_quality_summaries:
                related.append(f"{me}/ElectricPowerQualitySummary")
            if res.local_time_parameters is not None:
                related.append(self.path(res.local_time_parameters))
        elif isinstance(res, m.MeterReading):
            related.append(f"{me}/IntervalBlock")
            if res.reading_type is not None:
                related.append(self.path(res.reading_type))
        out += [m.Link(rel="related", href=f"{self.base}/{p}") for p in related]
        return out


def derived_id(href: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, href)}"


def atom_time(value: datetime | None, default: datetime) -> str:
    """An Atom timestamp in UTC; ``default`` for none, or for one UTC cannot hold."""
    try:
        value = (value or default).astimezone(UTC)
    except (OverflowError, ValueError):
        value = default.astimezone(UTC)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


# --------------------------------------------------------------------------- elements


#: Model classes whose schema type has another name.
SCHEMA_TYPE = {"LocalTimeParameters": "TimeConfiguration", "BatchList": "BatchListType"}


@cache
def schema_type(cls_name: str) -> Any:
    """The espi.xsd / customer.xsd (ESPI 4.0) type of a model class (None if unknown)."""
    name = SCHEMA_TYPE.get(cls_name, cls_name)
    types = load_schema("4.0").maps.types
    return types.get(f"{{{m.ESPI_NS}}}{name}") or types.get(f"{{{m.CUSTOMER_NS}}}{name}")


@cache
def element_rules(xsd: Any) -> dict[str, tuple[Any, int, int | None]]:
    """What a schema type says of each of its child elements: its type, and how many times
    it must and may occur."""
    content: Any = getattr(xsd, "content", None)
    if not hasattr(content, "iter_elements"):
        return {}
    return {e.local_name: (e.type, e.min_occurs, e.max_occurs) for e in content.iter_elements()}


def default_status_time(obj: Any, options: WriteOptions) -> int:
    """A UsageSummary's statusTimeStamp when it has none: the end of its billing period, else
    its entry's updated or published time, else the time of writing."""
    period = obj.billing_period
    if period is not None and period.end is not None:
        return int(period.end)
    when = obj.updated or obj.published or options.now or datetime.now(UTC)
    return int(when.timestamp())


#: Repair rules: what is written for a required element the object lacks or breaks (each
#: applied with an EspiWarning). Required elements without a rule make the object left out.
REPAIRS: dict[tuple[type[Any], str], Callable[[Any, WriteOptions], Any]] = {
    (m.UsageSummary, "status_time_stamp"): default_status_time,
    # no DST rule known: no DST; no offset known: none (how espi.timeparams reads it)
    (m.LocalTimeParameters, "dst_start_rule"): lambda obj, _: "FFFFFFFF",
    (m.LocalTimeParameters, "dst_end_rule"): lambda obj, _: "FFFFFFFF",
    (m.LocalTimeParameters, "dst_offset"): lambda obj, _: 0,
    (m.LocalTimeParameters, "tz_offset"): lambda obj, _: 0,
    # the pre-3.3 line item, as the reader completes it
    (m.LineItem, "note"): lambda obj, _: "",
    (m.LineItem, "item_kind"): lambda obj, _: ItemKind.INFORMATION,
    # ESPI 4.0 knows only the authorization-code flow
    (m.ApplicationInformation, "response_types"): lambda obj, _: "code",
}


def repaired(obj: Any, attr: str, options: WriteOptions, why: str) -> Any:
    rule = REPAIRS.get((type(obj), attr))
    if rule is None:
        return None
    value = rule(obj, options)
    warnings.warn(
        EspiWarning(f"{type(obj).__name__}.{attr} {why}: written as {value!r}"), stacklevel=5
    )
    return value


def left_out(what: str, why: str) -> None:
    warnings.warn(EspiWarning(f"{what} left out: {why}"), stacklevel=5)


def to_element(
    obj: Any,
    tag: str,
    options: WriteOptions,
    parent: Any = None,
    nsmap: Any = None,
    xsd: Any = None,
) -> Any:
    """An ESPI object as an lxml element named ``tag`` (children share its namespace),
    appended to ``parent``; None when it cannot be written validly: then a required element
    is missing or invalid and no repair rule applies (an EspiWarning says which). ``xsd``:
    its schema type (default: the one named like its class)."""
    el = etree.Element(tag, nsmap=nsmap)
    ns = tag[: tag.index("}") + 1]
    cls_name = type(obj).__name__
    rules = element_rules(xsd if xsd is not None else schema_type(cls_name))
    for name, spec in field_specs(type(obj)).items():
        kind, least, most = rules.get(name, (None, 0, None))
        value = getattr(obj, spec.attr)
        values = value if spec.is_list else [] if value is None else [value]
        if most is not None and len(values) > most:
            left_out(f"{cls_name}.{name} past the first {most}", "ESPI 4.0 allows no more")
            values = values[:most]
        where = f"{cls_name}.{name}"
        if spec.item is not None:
            wrapper = etree.Element(ns + name)
            item = element_rules(kind).get(spec.item, (None, 0, None))[0]
            for v in values:
                add_value(wrapper, ns + spec.item, v, options, item, where)
            written = len(wrapper)
            if written:
                el.append(wrapper)
        elif spec.kind is m.IntervalReading:  # written as text where the mark is: entry_xml
            if values:
                el.append(etree.Comment(READINGS_MARK))
            written = len(values)
        else:
            written = sum(add_value(el, ns + name, v, options, kind, where) for v in values)
        if written >= least:
            continue
        why = "is missing" if not values else "is not valid"
        if written < len(values):
            why = "is not valid"
        elif least > 1:
            why = f"occurs {written} times, not {least}"
        fix = repaired(obj, spec.attr, options, why) if not written else None
        if fix is None or not add_value(el, ns + name, fix, options, kind, where):
            left_out(f"{cls_name} {getattr(obj, 'id', None) or ''}".strip(),
                     f"{name}, which ESPI 4.0 requires, {why}")  # fmt: skip
            return None
    if options.keep_unknown:
        for text in getattr(obj, "extra", ()):
            el.append(etree.fromstring(text))
    if parent is not None:
        parent.append(el)
    return el


def add_value(
    parent: Any, tag: str, value: Any, options: WriteOptions, xsd: Any, where: str
) -> bool:
    """Append one value as ``tag``; False (and an EspiWarning) when it is not valid for its
    schema type ``xsd``, and so is left out."""
    if dataclasses.is_dataclass(value):
        return to_element(value, tag, options, parent, xsd=xsd) is not None
    text = text_of(value)
    child = etree.Element(tag)
    try:
        child.text = text
    except ValueError:  # characters XML cannot carry
        ok = False
    else:
        ok = xsd is None or not xsd.is_simple() or valid_text(xsd, value, text)
    if not ok:
        shown = text if len(text) <= 40 else text[:37] + "..."
        left_out(f"{where} {shown!r}", f"not a valid {getattr(xsd, 'local_name', None) or 'value'}")
        return False
    parent.append(child)
    return True


XS = "{http://www.w3.org/2001/XMLSchema}"
#: Facets that leave an integer type a plain range (None: the built-in types' own checks).
RANGE_FACETS = frozenset({None, XS + "minInclusive", XS + "maxInclusive", XS + "whiteSpace"})


@cache
def integer_range(xsd: Any) -> tuple[int | None, int | None] | None:
    """(lowest, highest) when a schema simple type is an integer type bounded by nothing but
    inclusive limits (None: unbounded on that side); None for any other type."""
    integer = load_schema("4.0").maps.types[XS + "integer"]
    if not xsd.is_derived(integer) or xsd.patterns or xsd.enumeration:
        return None
    step = xsd
    while step is not None and hasattr(step, "facets"):
        if not RANGE_FACETS.issuperset(step.facets):
            return None
        step = getattr(step, "base_type", None)
    return xsd.min_value, xsd.max_value


def valid_text(xsd: Any, value: Any, text: str) -> bool:
    """Whether ``text`` (written for ``value``) is valid for the simple type ``xsd``. An
    integer of a plain range is checked here, and a short text seen before is not checked
    again: xmlschema takes some 40 µs a value."""
    if isinstance(value, int) and not isinstance(value, bool):
        bounds = integer_range(xsd)
        if bounds is not None:
            low, high = bounds
            return (low is None or low <= value) and (high is None or value <= high)
    return schema_valid(xsd, text) if len(text) <= 200 else bool(xsd.is_valid(text))


@lru_cache(maxsize=4096)
def schema_valid(xsd: Any, text: str) -> bool:
    return bool(xsd.is_valid(text))


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Code):
        return str(int(value))
    if isinstance(value, float):
        return (
            "NaN"
            if math.isnan(value)
            else "INF"
            if value == math.inf
            else "-INF"
            if value == -math.inf
            else repr(value)
        )
    return str(value)


#: Where a block's readings go in its entry as lxml serializes it: they are written as text
#: there (building an element per number cost three times as much as the text). No other
#: comment is ever written: the reader drops comments, and text is escaped.
READINGS_MARK = "espi:readings"
#: The text of each quality code written so far (at most 65,536 of them).
QUALITY_TEXT: dict[int, str] = {}


@cache
def reading_markup(prefix: str, indent: str | None) -> tuple[str, ...]:
    """The fixed pieces of an IntervalReading's markup, its elements named with ``prefix``
    and laid out as lxml pretty-prints them at ``indent`` (None: on one line)."""
    p = f"{prefix}:" if prefix else ""
    n1 = "" if indent is None else "\n" + indent
    n2, n3 = (n1 + "  ", n1 + "    ") if indent is not None else ("", "")
    return (
        f"<{p}IntervalReading>",
        f"{n1}</{p}IntervalReading>",
        f"<{p}IntervalReading/>",
        f"{n2}<{p}cost>",
        f"</{p}cost>",
        f"{n2}<{p}ReadingQuality>{n3}<{p}quality>",
        f"</{p}quality>{n2}</{p}ReadingQuality>",
        f"{n2}<{p}timePeriod>{n3}<{p}duration>",
        f"</{p}duration>{n3}<{p}start>",
        f"</{p}start>{n2}</{p}timePeriod>",
        f"{n2}<{p}value>",
        f"</{p}value>",
        f"{n2}<{p}consumptionTier>",
        f"</{p}consumptionTier>",
        f"{n2}<{p}tou>",
        f"</{p}tou>",
        f"{n2}<{p}cpp>",
        f"</{p}cpp>",
        n1,
    )


def readings_xml(readings: list[m.IntervalReading], prefix: str, indent: str | None) -> bytes:
    """The hot path of writing: IntervalReadings as markup, in schema order. Numbers are all
    they hold, so nothing needs escaping; one out of its ESPI type's range is left out with an
    EspiWarning (a reading with a start but no duration, or the reverse, has no time period
    written)."""
    (opening, closing, empty, cost_a, cost_b, quality_a, quality_b, period_a, period_m, period_b,
     value_a, value_b, tier_a, tier_b, tou_a, tou_b, cpp_a, cpp_b, between) = reading_markup(
        prefix, indent)  # fmt: skip
    low48, high48 = INT48
    low16, high16 = INT16
    high32 = UINT32[1]
    low64, high64 = LONG
    texts = QUALITY_TEXT
    out = []
    for r in readings:
        inner = ""
        number = r.cost
        if number is not None and (low48 <= number <= high48 or fits(number, INT48)):
            inner = f"{cost_a}{number}{cost_b}"
        for q in r.qualities:
            text = texts.get(q)
            if text is None:
                if not fits(q, UINT16):
                    continue
                text = texts[q] = str(int(q))
            inner += f"{quality_a}{text}{quality_b}"
        start, duration = r.start, r.duration
        if start is not None and duration is not None:
            if (low64 <= start <= high64 or fits(start, LONG)) and (
                0 <= duration <= high32 or fits(duration, UINT32)
            ):
                inner += f"{period_a}{duration}{period_m}{start}{period_b}"
        elif start is not None or duration is not None:
            left_out("IntervalReading time period", "it needs both a start and a duration")
        number = r.value
        if number is not None and (low48 <= number <= high48 or fits(number, INT48)):
            inner += f"{value_a}{number}{value_b}"
        for a, number, b in ((tier_a, r.consumption_tier, tier_b), (tou_a, r.tou, tou_b),
                             (cpp_a, r.cpp, cpp_b)):  # fmt: skip
            if number is not None and (low16 <= number <= high16 or fits(number, INT16)):
                inner += f"{a}{number}{b}"
        out.append(f"{opening}{inner}{closing}" if inner else empty)
    return between.join(out).encode()


def fits(value: int, kind: tuple[int, int]) -> bool:
    if kind[0] <= value <= kind[1]:
        return True
    left_out(f"IntervalReading number {int(value)}", f"out of range ({kind[0]} to {kind[1]})")
    return False


def element_tag(res: Any) -> str:
    """The qualified element name a resource is written as."""
    if isinstance(res, m.UsageSummary) and res.legacy_element:
        return ESPI + "ElectricPowerUsageSummary"
    ns = CUST if isinstance(res, m.CustomerResource) else ESPI
    return ns + type(res).__name__


class _Entries:
    """Builds Atom entries for resources: links, ids, times, title, content."""

    def __init__(self, options: WriteOptions) -> None:
        self.options = options
        self.plan = LinkPlan(options)
        self.now = options.now or datetime.now(UTC)
        self.ids: set[str] = set()

    def entry(self, res: Any) -> bytes | None:
        """The Atom entry of a resource, serialized (UTF-8, no XML declaration); None when the
        resource cannot be written validly."""
        content = to_element(res, element_tag(res), self.options)
        if content is None:
            return None
        links = self.plan.links(res)
        self_href = next(lk.href for lk in links if lk.rel == "self")
        atom_id = res.id
        if (
            not atom_id
            or NOT_XML.search(atom_id)
            or (atom_id in self.ids and not isinstance(res, m.IntervalBlock))
        ):
            atom_id = derived_id(self_href)
        if not isinstance(res, m.IntervalBlock):
            self.ids.add(atom_id)
        entry = etree.Element(ATOM + "entry", nsmap=NSMAP)
        etree.SubElement(entry, ATOM + "id").text = atom_id
        for link in links:
            attrs = {"rel": link.rel or "related", "href": link.href}
            if link.type:
                attrs["type"] = link.type
            etree.SubElement(entry, ATOM + "link", attrs)
        etree.SubElement(entry, ATOM + "title").text = title_of(res)
        etree.SubElement(entry, ATOM + "published").text = atom_time(res.published, self.now)
        etree.SubElement(entry, ATOM + "updated").text = atom_time(res.updated, self.now)
        etree.SubElement(entry, ATOM + "content").append(content)
        data: bytes = etree.tostring(entry, encoding="utf-8", pretty_print=self.options.pretty)
        if isinstance(res, m.IntervalBlock) and res.readings:
            head, _, tail = data.partition(b"<!--" + READINGS_MARK.encode() + b"-->")
            indent = head[head.rfind(b"\n") + 1 :].decode() if self.options.pretty else None
            data = head + readings_xml(res.readings, content.prefix or "", indent) + tail
        return data


# --------------------------------------------------------------------------- documents

XML_DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>\n"


class FeedWriter:
    """Writes an Atom feed entry by entry: memory stays constant however many are added.

    ``add`` takes any resource; its links come from the object graph (``block.meter_reading``,
    ``meter_reading.usage_point`` ...), so add parents before their children.
    """

    def __init__(
        self,
        target: IO[bytes],
        options: WriteOptions | None = None,
        *,
        feed_id: str | None = None,
        title: str = "Green Button Usage Feed",
        self_href: str | None = None,
        updated: datetime | None = None,
    ) -> None:
        self.options = options or WriteOptions()
        self.entries = _Entries(self.options)
        self.target = target
        self.self_href = (
            self_href
            or f"{self.options.base.rstrip('/')}/Batch/Subscription/{self.options.subscription}"
        )
        self.feed_id = (
            feed_id if feed_id and not NOT_XML.search(feed_id) else derived_id(self.self_href)
        )
        self.title = NOT_XML.sub("", title)
        self.updated = updated or self.entries.now
        self._xf: Any = None
        self._stack: list[Any] = []

    def __enter__(self) -> FeedWriter:
        xf_cm = etree.xmlfile(self.target, encoding="utf-8")
        xf = xf_cm.__enter__()
        self._stack.append(xf_cm)
        xf.write_declaration()
        root_cm = xf.element(ATOM + "feed", nsmap=NSMAP)
        root_cm.__enter__()
        self._stack.append(root_cm)
        self._xf = xf
        nl = "\n" if self.options.pretty else ""
        xf.write(nl)
        head = [
            self._leaf("id", self.feed_id),
            self._leaf("title", self.title),
            self._leaf("updated", atom_time(self.updated, self.entries.now)),
            etree.Element(ATOM + "link", {"rel": "self", "href": self.self_href}),
        ]
        for el in head:
            xf.write(el)
            xf.write(nl)
        return self

    @staticmethod
    def _leaf(name: str, text: str) -> Any:
        el = etree.Element(ATOM + name)
        el.text = text
        return el

    def add(self, res: Any) -> None:
        """Write one resource's entry (left out, with an EspiWarning, when ESPI 4.0 cannot
        carry it: a required element missing or invalid, and no repair rule)."""
        entry = self.entries.entry(res)
        if entry is not None:
            self._xf.flush()  # what lxml holds goes out before the entry
            self.target.write(entry)

    def add_all(self, resources: Iterable[Any]) -> None:
        for res in resources:
            self.add(res)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._stack:
            self._stack.pop().__exit__(exc_type, exc, tb)
        if exc is None and self.options.pretty:
            self.target.write(b"\n")


def feed_order(feed: m.Feed) -> Iterator[Any]:
    """Every resource of a feed once: each usage point followed by what hangs under it
    (local time parameters, reading types before the meter readings that use them, blocks,
    summaries), then everything else in document order."""
    seen: set[int] = set()

    def once(res: Any) -> Iterator[Any]:
        if res is not None and id(res) not in seen:
            seen.add(id(res))
            yield res

    def meter_reading(mr: m.MeterReading) -> Iterator[Any]:
        yield from once(mr.reading_type)
        yield from once(mr)
        for block in mr.interval_blocks:
            yield from once(block)

    for up in feed.usage_points:
        yield from once(up.local_time_parameters)
        yield from once(up)
        for mr in up.meter_readings:
            yield from meter_reading(mr)
        for summary in [*up.usage_summaries, *up.power_quality_summaries]:
            yield from once(summary)
    for mr in feed.meter_readings:
        yield from meter_reading(mr)
    for res in feed.entries:
        yield from once(res)
    for block in feed.interval_blocks:
        yield from once(block)


def write(
    obj: Any, target: str | os.PathLike[str] | IO[bytes], options: WriteOptions | None = None
) -> None:
    """Write a Feed, a resource (as an Atom entry), a list of resources (as a feed), a
    BatchList or a ServiceStatus. A path is written atomically (``.partial``, then renamed)."""
    options = options or WriteOptions()
    if isinstance(target, str | os.PathLike):
        path = os.fspath(target)
        tmp = path + ".partial"
        try:
            with open(tmp, "wb") as f:
                write(obj, f, options)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    if isinstance(obj, m.Feed):
        with FeedWriter(
            target,
            options,
            feed_id=obj.id,
            title=obj.title or "Green Button Usage Feed",
            self_href=obj.link("self"),
            updated=obj.updated,
        ) as w:
            w.add_all(feed_order(obj))
    elif isinstance(obj, list | tuple):
        with FeedWriter(target, options) as w:
            w.add_all(obj)
    elif isinstance(obj, m.Resource):
        doc = _Entries(options).entry(obj)
        if doc is None:
            raise ValueError(f"{type(obj).__name__} cannot be written as valid ESPI 4.0")
        target.write(XML_DECLARATION + doc)
    elif isinstance(obj, m.BatchList | m.ServiceStatus):
        el = to_element(obj, ESPI + type(obj).__name__, options, nsmap={None: m.ESPI_NS})
        if el is None:
            raise ValueError(f"{type(obj).__name__} cannot be written as valid ESPI 4.0")
        target.write(
            etree.tostring(el, xml_declaration=True, encoding="utf-8", pretty_print=options.pretty)
        )
    else:
        raise TypeError(f"cannot write a {type(obj).__name__} as Green Button XML")


def dumps(obj: Any, options: WriteOptions | None = None) -> bytes:
    """The Green Button XML of ``obj`` (see :func:`write`), as bytes."""
    out = io.BytesIO()
    write(obj, out, options)
    return out.getvalue()
