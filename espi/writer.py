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
import os
import re
import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

from lxml import etree

from . import model as m
from .codes import Code
from .errors import EspiWarning
from .xmlmap import ATOM, CUST, ESPI, FieldSpec, field_specs, norm_href

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

#: Elements espi.xsd requires of the resources real files most often leave incomplete. A
#: resource without them cannot be written validly, so it is left out with a warning.
REQUIRED: dict[type[Any], tuple[str, ...]] = {
    m.ApplicationInformation: (
        "data_custodian_id", "data_custodian_application_status", "third_party_notify_uri",
        "authorization_server_authorization_endpoint", "authorization_server_token_endpoint",
        "data_custodian_bulk_request_uri", "data_custodian_resource_endpoint", "client_secret",
        "client_name", "client_id", "software_id", "software_version", "client_id_issued_at",
        "client_secret_expires_at", "token_endpoint_auth_method", "response_types",
        "registration_client_uri", "registration_access_token",
    ),
    m.Authorization: (
        "status", "expires_at", "scope", "token_type", "resource_uri", "authorization_uri",
    ),
}  # fmt: skip


def title_of(res: Any) -> str:
    """A resource's Atom title: its own, else its kind in words (``Usage Point``)."""
    return res.title or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", type(res).__name__)


def missing(res: Any) -> list[str]:
    return [name for name in REQUIRED.get(type(res), ()) if getattr(res, name) in (None, [])]


SUBSCRIPTION_PATH = re.compile(r"(?:^|/)Subscription/([^/]+)/UsagePoint/[^/]+$")


def parent_of(res: Any) -> Any:
    if isinstance(res, m.IntervalBlock):
        return res.meter_reading
    if isinstance(res, m.MeterReading | m.UsageSummary | m.ElectricPowerQualitySummary):
        return res.usage_point
    return None


class LinkPlan:
    """Self, up and related hrefs for resources, from the object graph."""

    def __init__(self, options: WriteOptions) -> None:
        self.base = options.base.rstrip("/")
        self.options = options
        self.paths: dict[int, str] = {}  # id(resource) -> self path, for non-block resources
        self.used: dict[str, set[str]] = {}  # collection path -> segments given out
        self.keep: list[Any] = []  # keeps the resources in `paths` alive (ids stay unique)

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
        used = self.used.setdefault(collection, set())
        href = res.link("self")
        segment = quote(norm_href(href).rsplit("/", 1)[-1], safe="=,:@-._~") if href else ""
        if not segment or segment in used:
            n = len(used) + 1
            while str(n) in used:
                n += 1
            segment = str(n)
        path = f"{collection}/{segment}"
        if isinstance(res, m.IntervalBlock):
            used.add(segment)  # blocks are many and never parents: no need to remember them
            return path
        used.add(segment)
        self.paths[id(res)] = path
        self.keep.append(res)
        return path

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


def atom_time(value: datetime) -> str:
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


# --------------------------------------------------------------------------- elements


def to_element(
    obj: Any, tag: str, options: WriteOptions, parent: Any = None, nsmap: Any = None
) -> Any:
    """An ESPI object as an lxml element named ``tag``; children share its namespace."""
    el = etree.Element(tag, nsmap=nsmap) if parent is None else etree.SubElement(parent, tag)
    ns = tag[: tag.index("}") + 1]
    for name, spec in field_specs(type(obj)).items():
        value = getattr(obj, spec.attr)
        if value is None or (spec.is_list and not value):
            continue
        if spec.item is not None:
            wrapper = etree.SubElement(el, ns + name)
            for v in value:
                add_value(wrapper, ns + spec.item, v, spec, options)
        elif spec.is_list:
            for v in value:
                add_value(el, ns + name, v, spec, options)
        else:
            add_value(el, ns + name, value, spec, options)
    if options.keep_unknown:
        for text in getattr(obj, "extra", ()):
            el.append(etree.fromstring(text))
    return el


def add_value(parent: Any, tag: str, value: Any, spec: FieldSpec, options: WriteOptions) -> None:
    if isinstance(value, m.IntervalReading):
        add_reading(parent, value, tag[: tag.index("}") + 1])
    elif dataclasses.is_dataclass(value):
        to_element(value, tag, options, parent)
    else:
        etree.SubElement(parent, tag).text = text_of(value)


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Code):
        return str(int(value))
    return str(value)


def add_reading(parent: Any, r: m.IntervalReading, ns: str) -> None:
    """The hot path of writing: one IntervalReading, in schema order."""
    sub = etree.SubElement
    el = sub(parent, ns + "IntervalReading")
    if r.cost is not None:
        sub(el, ns + "cost").text = str(r.cost)
    for q in r.qualities:
        sub(sub(el, ns + "ReadingQuality"), ns + "quality").text = str(int(q))
    if r.start is not None or r.duration is not None:
        period = sub(el, ns + "timePeriod")
        if r.duration is not None:
            sub(period, ns + "duration").text = str(r.duration)
        if r.start is not None:
            sub(period, ns + "start").text = str(r.start)
    for name, value in (
        ("value", r.value),
        ("consumptionTier", r.consumption_tier),
        ("tou", r.tou),
        ("cpp", r.cpp),
    ):
        if value is not None:
            sub(el, ns + name).text = str(value)


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

    def entry(self, res: Any) -> Any:
        links = self.plan.links(res)
        self_href = next(lk.href for lk in links if lk.rel == "self")
        atom_id = res.id
        if not atom_id or (atom_id in self.ids and not isinstance(res, m.IntervalBlock)):
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
        etree.SubElement(entry, ATOM + "published").text = atom_time(res.published or self.now)
        etree.SubElement(entry, ATOM + "updated").text = atom_time(res.updated or self.now)
        content = etree.SubElement(entry, ATOM + "content")
        to_element(res, element_tag(res), self.options, content)
        return entry


# --------------------------------------------------------------------------- documents


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
        self.feed_id = feed_id or derived_id(self.self_href)
        self.title = title
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
            self._leaf("updated", atom_time(self.updated)),
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
        lacking = missing(res)
        if lacking:
            warnings.warn(
                EspiWarning(
                    f"{type(res).__name__} {res.id or ''} left out: it lacks {', '.join(lacking)}, "
                    "which ESPI requires"
                ),
                stacklevel=2,
            )
            return
        self._xf.write(self.entries.entry(res), pretty_print=self.options.pretty)

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
        target.write(
            etree.tostring(doc, xml_declaration=True, encoding="utf-8", pretty_print=options.pretty)
        )
    elif isinstance(obj, m.BatchList | m.ServiceStatus):
        el = to_element(obj, ESPI + type(obj).__name__, options, nsmap={None: m.ESPI_NS})
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
