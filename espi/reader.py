"""Streaming reader: Green Button (ESPI Atom) XML -> :mod:`espi.model`.

One engine serves both doors. It walks the document with lxml's ``iterparse``, handles each Atom
``entry`` when it ends and then frees it, so memory is bounded by the largest IntervalBlock, not
by the file. :func:`parse` keeps every resource and returns a :class:`~espi.model.Feed`;
:func:`iter_readings` yields readings as their blocks complete and keeps only the small
resources (usage points, meter readings, reading types) needed to say what a reading is.

Safe by default: no DTD, no entities, no network, lxml's size guards on; a document that
declares a DTD is refused. Real files deviate from the standard in known ways (prefixes, legacy
element names, missing links, bare dates...): those are tolerated on purpose and reported as
:class:`~espi.errors.Quirk` records and one :class:`~espi.errors.EspiWarning` per kind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, Protocol, Union

from lxml import etree

from . import model as m
from . import timeparams
from .codes import ItemKind, QualityOfReading
from .errors import EspiWarning, ParseError, Quirk
from .xmlmap import (
    ATOM,
    CUST,
    ESPI,
    INT_TYPES,
    LEGACY_NAMES,
    RANGES,
    RESOURCES,
    TIME_MAX,
    TIME_MIN,
    FieldSpec,
    canonical,
    field_specs,
    local,
    norm_href,
)


class Readable(Protocol):
    """A binary stream, as the reader uses one: a file, a gzip or zip member, a socket file."""

    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Readable]

#: Readings held back while their reading type is not known yet (files often put the
#: ReadingType entry after the IntervalBlocks). Past this, they are released without it.
HOLD_BACK_READINGS = 50_000

#: A period start beyond this (year 5138 in seconds) can only be milliseconds.
MILLISECONDS_AFTER = 10**11
UINT32_MAX = 2**32 - 1
#: ParseOptions defaults: no real file comes near them (two million elements are a quarter of
#: a million readings in one IntervalBlock); memory stays within a few hundred MiB.
MAX_MARKUP = 1 << 20
MAX_ELEMENTS = 2_000_000
INT48 = RANGES["Int48"][1]
INT16_MIN, INT16_MAX = RANGES["Int16"]
#: An integer as ESPI writes it (leading zeros apart, at most 19 digits fit any ESPI type).
INTEGER = re.compile(r"([+-]?)0*(\d{1,19})", re.ASCII)


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """How the reader treats its input.

    strict: raise :class:`ParseError` on the first deviation instead of tolerating it.
    warn: issue an :class:`EspiWarning` the first time each kind of deviation is seen.
    max_bytes: refuse documents larger than this (``None``: no limit).
    progress: called with the number of bytes read so far, as reading advances.
    max_markup: the longest single piece of markup or text, in bytes: a tag with its
        attributes, a name, a comment, a processing instruction, a CDATA section, a run of
        text or whitespace. Longer pieces are refused as they stream in, before they are held.
    max_elements: the most elements one Atom entry (or the part of a document outside
        entries) may hold; about eight per IntervalReading. Together these bound the memory
        a document can take, whatever its size.
    """

    strict: bool = False
    warn: bool = True
    max_bytes: int | None = None
    progress: Callable[[int], None] | None = None
    max_markup: int = MAX_MARKUP
    max_elements: int = MAX_ELEMENTS


# --------------------------------------------------------------------------- input


class GuardedInput(io.RawIOBase):
    """A binary stream that counts what lxml reads: size limit and progress, and a
    :class:`_Guard` that refuses what would make the parser hold unbounded memory."""

    def __init__(self, raw: Readable, name: str, opts: ParseOptions) -> None:
        self.raw = raw
        self.name = name
        self.opts = opts
        self.count = 0
        self.guard = _Guard(name, opts.max_markup, opts.max_elements)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        if self.opts.max_bytes is not None and self.count > self.opts.max_bytes:
            raise ParseError(
                f"document larger than the limit of {self.opts.max_bytes} bytes", file=self.name
            )
        self.guard.check(data)
        if self.opts.progress is not None:
            self.opts.progress(self.count)
        return data


#: Markup that may hold "<" inside (so the gap between two "<" does not bound it): its
#: opening, its closing and what to call it.
SPECIAL = {
    b"<!--": (b"-->", "comment"),
    b"<?": (b"?>", "processing instruction"),
    b"<![CDATA[": (b"]]>", "CDATA section"),
}
SPECIAL_START = re.compile(rb"<[!?]")
DECLARATION = re.compile(rb"<![A-Za-z]")
ENTRY_END = re.compile(rb"</(?:[^\s<>:]+:)?entry\s*>")
DTD_REFUSED = (
    "document type declarations (DTD) and entities are refused "
    "(Green Button files never need them; they enable entity-expansion attacks)"
)


class _Guard:
    """Watches the bytes before lxml sees them and refuses, as they stream in, a piece of
    markup or text longer than ``max_markup`` (libxml2's push parser would buffer it whole,
    however long, waiting for its end), a DTD, and more than ``max_elements`` elements in
    one entry. Everything is checked with a few byte searches per chunk."""

    def __init__(self, name: str, max_markup: int, max_elements: int) -> None:
        self.name = name
        self.max_markup = max_markup
        self.max_elements = max_elements
        self.seen = 0  # bytes checked before the current chunk
        self.lines = 0  # newlines in them
        self.since_lt = 0  # bytes since the last "<"
        self.elements = 0  # start tags since the last entry ended
        self.tail = b""  # the last bytes, where an opening split between chunks begins
        self.open: tuple[int, int, bytes, str] | None = None  # start, line, closing, kind
        self.pos = 0  # where to look next, as an offset in the document

    def refuse(self, message: str, line: int) -> NoReturn:
        raise ParseError(message, file=self.name, line=line)

    def check(self, data: bytes) -> None:
        if not data:
            return
        window = self.tail + data
        base = self.seen - len(self.tail)  # document offset of window[0]
        entries_from = max(0, self.pos - base - 16)  # before _special moves pos on
        self._special(window, base)
        first = data.find(b"<")
        if first < 0:
            self.since_lt += len(data)
        else:
            self.since_lt += first
            if self.since_lt <= self.max_markup:
                self.since_lt = len(data) - data.rfind(b"<") - 1
        if self.since_lt > self.max_markup and self.open is None:
            self.refuse(
                f"a tag or text of more than {self.max_markup:,} bytes "
                "(limit: ParseOptions.max_markup)",
                self.lines + data.count(b"\n", 0, first if first >= 0 else len(data)) + 1,
            )
        last_end = last_entry_end(window, entries_from)
        counted = len(self.tail) if last_end < 0 else last_end
        if last_end >= 0:
            self.elements = 0
        self.elements += window.count(b"<", counted) - window.count(b"</", counted)
        if self.elements > self.max_elements:
            self.refuse(
                f"more than {self.max_elements:,} elements in one entry "
                "(limit: ParseOptions.max_elements)",
                self.lines + 1,
            )
        self.seen += len(data)
        self.lines += data.count(b"\n")
        self.tail = window[-16:]
        self.pos = max(self.pos, self.seen - 16)

    def _special(self, window: bytes, base: int) -> None:
        """Comments, PIs and CDATA sections: each must close within max_markup bytes;
        a declaration (``<!DOCTYPE``) is refused at once."""
        at = max(self.pos - base, 0)
        while True:
            if self.open is not None:
                start, line, closing, kind = self.open
                found = window.find(closing, at)
                if found < 0:
                    if base + len(window) - start > self.max_markup:
                        self.refuse(
                            f"a {kind} of more than {self.max_markup:,} bytes "
                            "(limit: ParseOptions.max_markup)",
                            line,
                        )
                    self.pos = base + max(at, len(window) - len(closing) + 1)
                    return
                self.open = None
                at = found + len(closing)
                continue
            found = next_special(window, at)
            if found < 0:
                self.pos = base + max(at, len(window) - 8)  # an opening may be cut off
                return
            at = found
            rest = window[at : at + 9]
            line = self.lines + window.count(b"\n", len(self.tail), at) + 1
            if DECLARATION.match(rest):
                self.refuse(DTD_REFUSED, line)
            opening = next((o for o in SPECIAL if rest.startswith(o)), None)
            if opening is None:
                if len(rest) < 9 and any(o.startswith(rest) for o in SPECIAL):
                    self.pos = base + at  # cut off: look again with the next chunk
                    return
                at += 2  # "<!" followed by something else: libxml2 reports it
                continue
            closing, kind = SPECIAL[opening]
            self.open = (base + at, line, closing, kind)
            at += len(opening)


# The guard's searches run over every byte read: plain byte searches (memchr for the rare
# "!", "?" and the name "entry") cost a fraction of a regex scanning each byte, which took
# a sixth of the reader's time.


def last_entry_end(window: bytes, start: int) -> int:
    """Where the last entry end tag (``</entry>``, any prefix) beginning at or after
    ``start`` ends; -1 when there is none. Looked for backwards from each ``entry``: an end
    tag holds no ``<`` but its first, so it can only begin at the last ``<`` before it."""
    at = len(window)
    while (name := window.rfind(b"entry", start, at)) >= 0:
        lt = window.rfind(b"<", start, name)
        if lt < 0:
            return -1
        match = ENTRY_END.match(window, lt)
        if match is not None:
            return match.end()
        at = lt  # every "entry" between lt and name has lt as its last "<"
    return -1


def next_special(window: bytes, at: int) -> int:
    """Where the first ``<!`` or ``<?`` at or after ``at`` begins; -1 when there is none."""
    bang = window.find(b"!", at + 1)
    ask = window.find(b"?", at + 1)
    if bang < 0 and ask < 0:
        return -1
    first = bang if ask < 0 or 0 <= bang < ask else ask
    match = SPECIAL_START.search(window, first - 1)
    return -1 if match is None else match.start()


def open_source(source: Source) -> tuple[Readable, str, bool]:
    """(binary stream, display name, whether we opened it and must close it)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source)), "<bytes>", True
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        try:
            return open(path, "rb"), path, True
        except OSError as err:
            raise ParseError(f"cannot open: {err.strerror}", file=path) from err
    if hasattr(source, "read"):
        return source, str(getattr(source, "name", "<stream>")), False
    raise TypeError(f"source must be a path, bytes or a binary file, not {type(source).__name__}")


def refuse_dtd(el: Any, file: str) -> None:
    """Refuse a document that declares a DTD (the door to entity expansion and XXE)."""
    docinfo = el.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ParseError(DTD_REFUSED, file=file, line=1)


#: The position libxml2 appends to its messages (the ParseError gives it once, up front).
POSITION = re.compile(r",? line \d+, column \d+\s*$")


def syntax_error(err: etree.XMLSyntaxError, file: str) -> ParseError:
    line, column = err.position if err.position else (err.lineno, err.offset)
    message = POSITION.sub("", str(err.msg or err))
    if not line:  # nothing was read: an empty document
        return ParseError(f"not well-formed XML: {message} (empty document?)", file=file)
    return ParseError(f"not well-formed XML: {message}", file=file, line=line, column=column)


#: The one safe configuration for every lxml parse in this package.
SAFE: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


# --------------------------------------------------------------------------- the engine


class _Engine:
    """Reads one document; yields each resource as its entry completes."""

    def __init__(self, source: Source, opts: ParseOptions, keep_blocks: bool = True) -> None:
        self.opts = opts
        self.source = source
        self.file = "<input>"
        self.quirks: dict[str, Quirk] = {}
        self.entry_no = 0
        self.header: dict[str, Any] = {"links": []}
        self.linker = _Linker(self, keep_blocks)
        self.root_kind: str | None = None

    # ---- reporting

    def quirk(self, code: str, message: str, el: Any = None) -> None:
        q = self.quirks.get(code)
        if q is not None:
            q.count += 1
            return
        line = el.sourceline if el is not None else None
        path = self.path(el) if el is not None else None
        if self.opts.strict:
            raise ParseError(message, file=self.file, line=line, element=path)
        q = Quirk(code, message, self.file, line, path)
        self.quirks[code] = q
        if self.opts.warn:
            warnings.warn(EspiWarning(str(q)), stacklevel=4)

    def path(self, el: Any) -> str:
        names = []
        while el is not None:
            name = local(el.tag) if isinstance(el.tag, str) else "?"
            if name == "entry" and self.entry_no:
                name = f"entry[{self.entry_no}]"
            names.append(name)
            el = el.getparent()
        return "/" + "/".join(reversed(names))

    # ---- the walk

    def run(self) -> Iterator[Any]:
        raw, self.file, close = open_source(self.source)
        stream = GuardedInput(raw, self.file, self.opts)
        try:
            yield from self._walk(stream)
        except etree.XMLSyntaxError as err:
            raise syntax_error(err, self.file) from err
        finally:
            if close:
                raw.close()

    def _walk(self, stream: GuardedInput) -> Iterator[Any]:
        events = etree.iterparse(
            stream,
            events=("end",),
            tag=("{*}entry",),
            **SAFE,
        )
        checked = False
        for _, el in events:
            if not checked:
                refuse_dtd(el, self.file)
                checked = True
            log = events.error_log  # a snapshot: read it afresh at each entry
            if len(log):
                self._refuse_logged(log)
            parent = el.getparent()
            if parent is not None:
                self._header(parent, el)
            self.entry_no += 1
            yield from self._entry(el)
            el.clear(keep_tail=False)
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
        root = events.root
        if root is None:
            raise ParseError("empty document", file=self.file)
        if not checked:
            refuse_dtd(root, self.file)
        tag = local(root.tag)
        self.root_kind = tag
        if tag == "feed":
            self._header(root, None)
            if root.tag != ATOM + "feed":
                self.quirk("atom-namespace", "feed element outside the Atom namespace", root)
        elif tag != "entry":
            found = self._resource(root)
            if not found:
                raise ParseError(
                    f"not a Green Button document: root element <{tag}>",
                    file=self.file,
                    line=root.sourceline,
                )
            yield from found
        self.linker.finish()

    def _refuse_logged(self, log: Any) -> None:
        """libxml2 reports some errors (unbound prefixes) in its log and goes on: refuse them
        as soon as they are seen, before any of the document is used."""
        for e in log:
            if e.level >= etree.ErrorLevels.ERROR:
                raise ParseError(
                    f"not well-formed XML: {e.message}",
                    file=self.file,
                    line=e.line,
                    column=e.column,
                )

    def _header(self, feed: Any, until: Any) -> None:
        """Read the feed's own id/title/updated/links from the children before ``until``."""
        for child in feed:
            if child is until:
                break
            tag = child.tag
            if tail := (child.tail or "").strip():
                self.quirk(
                    "stray-text", f"character data between elements ({tail[:20]!r}) ignored", child
                )
            if tag == ATOM + "entry" or local(tag) == "entry":
                continue
            name = local(tag)
            if name == "link":
                self.header["links"].append(self._link(child))
            elif name in ("id", "title"):
                self.header[name] = (child.text or "").strip() or None
            elif name == "updated":
                self.header["updated"] = self._datetime(child)

    # ---- entries and resources

    def _entry(self, el: Any) -> list[Any]:
        if el.tag != ATOM + "entry":
            self.quirk("atom-namespace", "entry element outside the Atom namespace", el)
        meta: dict[str, Any] = {"links": [], "source_line": el.sourceline}
        content = None
        for child in el:
            name = local(child.tag)
            if name == "content":
                content = child
            elif name == "link":
                meta["links"].append(self._link(child))
            elif name in ("id", "title"):
                meta[name] = (child.text or "").strip() or None
            elif name in ("published", "updated"):
                meta[name] = self._datetime(child)
        if content is None:
            self.quirk("entry-without-content", "entry without content skipped", el)
            return []
        found = []
        for child in content:
            name = local(child.tag)
            if name in RESOURCES:
                found.append(child)
            elif child.tag in (ATOM + "published", ATOM + "updated"):
                self.quirk(
                    "atom-in-content", f"atom:{name} inside content read as entry metadata", child
                )
                meta.setdefault(name, self._datetime(child))
            else:
                self.quirk(
                    f"unknown-content-{name}",
                    f"unexpected element <{name}> in content ignored",
                    child,
                )
        if not found:
            self.quirk("entry-without-resource", "entry whose content holds no ESPI resource", el)
        elif len(found) > 1:
            self.quirk(
                "several-resources",
                f"{len(found)} resources in one entry's content; each read as its own, "
                "sharing the entry's metadata",
                found[1],
            )
        return [
            res for r in found for res in self._resource(r, dict(meta, links=list(meta["links"])))
        ]

    def _resource(self, el: Any, meta: dict[str, Any] | None = None) -> list[Any]:
        """The resources an element holds: itself, after any it embeds (empty if unknown)."""
        name = local(el.tag)
        cls = RESOURCES.get(name)
        if cls is None:
            return []
        expected = CUST if issubclass(cls, m.CustomerResource) else ESPI
        if not el.tag.startswith(expected):
            self.quirk(
                "resource-namespace",
                f"<{name}> in namespace {el.tag[1 : el.tag.find('}')] or '(none)'}; "
                f"read as {expected[1:-1]}",
                el,
            )
        out: list[Any] = []
        if cls is m.MeterReading:
            for child in el.iterchildren("{*}ReadingType"):
                self.quirk(
                    "embedded-ReadingType",
                    "ReadingType embedded in MeterReading read as its reading type",
                    child,
                )
                out += self._resource(child)
                el.remove(child)
        if cls is m.IntervalBlock:
            res: Any = self._block(el, meta or {})
        else:
            res = self._decode(cls, el, meta)
        if name == "ElectricPowerUsageSummary":
            res.legacy_element = True
        if out:
            res.reading_type = out[-1]
        if isinstance(res, m.Resource):
            self.linker.add(res)
        if cls is m.IntervalBlock:
            self._duplicates(res, el)
        return [*out, res]

    def _duplicates(self, block: m.IntervalBlock, el: Any) -> None:
        """Two readings with one start in a block. Real files give both hours of a DST
        fall-back night the same start: where local time repeats at that start and the block
        lacks exactly the hour after, the second reading is that hour (reported); otherwise
        both are kept and reported."""
        starts: set[int] = set()
        twins: list[tuple[int, m.IntervalReading]] = []
        for r in block.readings:
            if r.start is not None:
                if r.start in starts:
                    twins.append((r.start, r))
                starts.add(r.start)
        if not twins:
            return
        zone = self._zone(block)
        for start, r in twins:
            shift = getattr(zone, "dst_offset", 0) or 3600
            wall = local_wall(start, zone)
            if (
                zone is not None
                and r.duration
                and wall == local_wall(start + shift, zone)
                and start + shift not in starts
                and one_slot_missing(block, len(starts), r.duration)
            ):
                r.start = start + shift
                starts.add(r.start)
                self.quirk(
                    "dst-duplicate",
                    f"two readings at {wall:%Y-%m-%d %H:%M} local, the hour a DST change "
                    "repeats: the second read as the repeated hour",
                    el,
                )
            else:
                self.quirk(
                    "duplicate-start",
                    f"two readings start at {m.to_datetime(start):%Y-%m-%d %H:%M}Z in one "
                    "block: both kept",
                    el,
                )

    def _zone(self, block: m.IntervalBlock) -> Any:
        """The local time of a block's usage point (or of the document's one
        LocalTimeParameters); None when the document does not say."""
        mr = block.meter_reading
        up = mr.usage_point if mr is not None else None
        ltp = up.local_time_parameters if up is not None else None
        if ltp is None:
            ltps = [r for r in self.linker.order if isinstance(r, m.LocalTimeParameters)]
            ltp = ltps[0] if len(ltps) == 1 else None
        if ltp is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EspiWarning)  # odd rules are lint's to report
            return timeparams.zone(ltp)

    def _decode(self, cls: type[Any], el: Any, meta: dict[str, Any] | None = None) -> Any:
        specs = field_specs(cls)
        values: dict[str, Any] = dict(meta) if meta else {}
        legacy = LEGACY_NAMES.get(cls, {})
        for child in el:
            name = local(child.tag)
            spec = specs.get(name)
            if spec is None and name in legacy:
                self.quirk(
                    f"legacy-name-{name}",
                    f"legacy element name <{name}> read as <{legacy[name]}>",
                    child,
                )
                spec = specs[legacy[name]]
            if spec is None:
                if name != "extension":  # Object's own open extension point
                    self.quirk(
                        f"unknown-element-{name}", f"unknown element <{name}> kept as is", child
                    )
                values.setdefault("extra", []).append(canonical(child))
                continue
            value = self._value(spec, child)
            if (
                spec.int_type == "TimeType (s or ms)"
                and cls is not m.DateTimeInterval  # a period: _period converts it whole
                and value is not None
                and value > MILLISECONDS_AFTER
            ):
                self.quirk("milliseconds", "time in milliseconds read as seconds", child)
                value //= 1000
            if spec.is_list:
                if spec.item is not None and isinstance(value, list):
                    values.setdefault(spec.attr, []).extend(value)
                else:
                    values.setdefault(spec.attr, []).append(value)
            else:
                values[spec.attr] = value
        obj = cls(**values)
        if cls is m.DateTimeInterval:
            self._period(obj, el)
        elif cls is m.LineItem and (obj.item_kind is None or obj.note is None):
            self.quirk(
                "line-item-incomplete",
                "line item without itemKind or note (the pre-3.3 shape) read as an "
                "information item (10) with an empty note",
                el,
            )
            obj.item_kind = obj.item_kind if obj.item_kind is not None else ItemKind.INFORMATION
            obj.note = obj.note if obj.note is not None else ""
        return obj

    def _period(self, period: m.DateTimeInterval, el: Any) -> None:
        """PG&E writes some periods in milliseconds, and open-ended ones longer than ESPI's
        UInt32 allows: read them as seconds and as the longest ESPI duration."""
        if period.start is not None and period.start > MILLISECONDS_AFTER:
            self.quirk("milliseconds", "period in milliseconds read as seconds", el)
            period.start //= 1000
            if period.duration is not None:
                period.duration //= 1000
        if period.duration is not None and period.duration > UINT32_MAX:
            self.quirk(
                "duration-overflow",
                f"duration {period.duration} s beyond ESPI's UInt32 read as {UINT32_MAX} s",
                el,
            )
            period.duration = UINT32_MAX

    def _value(self, spec: FieldSpec, el: Any) -> Any:
        if spec.item is not None:
            inner = dataclasses.replace(spec, is_list=False, item=None)
            return [self._value(inner, c) for c in el if local(c.tag) == spec.item]
        kind = spec.kind
        if dataclasses.is_dataclass(kind):
            return self._decode(kind, el)
        text = (el.text or "").strip()
        if not text:
            if kind is str and len(el):
                self.quirk("unexpected-children", "element with children where text belongs", el)
            else:
                self.quirk("empty-element", "empty element read as absent", el)
            return None
        if kind is str:
            return text
        if kind is bool:
            if text in ("true", "1"):
                return True
            if text in ("false", "0"):
                return False
            self.quirk("bad-boolean", f"{text!r} is not a boolean; read as absent", el)
            return None
        if kind is float:
            try:
                return float(text)
            except ValueError:
                self.quirk("bad-number", f"{text!r} is not a number; read as absent", el)
                return None
        number = self._int(text, el, spec.int_type)
        if number is None or kind is int:
            return number
        return kind(number)

    def _int(self, text: str, el: Any, int_type: str) -> int | None:
        """An integer of an ESPI type (a key of RANGES): a fraction is truncated, anything
        else that is not a number, or is out of the type's range, is reported and absent."""
        if match := INTEGER.fullmatch(text):
            value = int(match.group(1) + match.group(2))
        else:
            try:
                number = Decimal(text)
            except InvalidOperation:
                number = Decimal("NaN")
            if not number.is_finite():
                self.quirk("bad-number", f"{text[:40]!r} is not a number; read as absent", el)
                return None
            if number.adjusted() >= 19:
                self._out_of_range(text, el, int_type)
                return None
            value = int(number)
            self.quirk(
                "fractional-number", f"fractional value {text!r} truncated to an integer", el
            )
        low, high = RANGES[int_type]
        if not low <= value <= high:
            self._out_of_range(text, el, int_type)
            return None
        return value

    def _out_of_range(self, text: str, el: Any, int_type: str) -> None:
        low, high = RANGES[int_type]
        shown = text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"
        self.quirk(
            "out-of-range",
            f"{shown} is out of range for {int_type} ({low} to {high}); read as absent",
            el,
        )

    def _link(self, el: Any) -> m.Link:
        href = el.get("href") or ""
        if not href:
            self.quirk("link-without-href", "link without href", el)
        return m.Link(href=href, rel=el.get("rel"), type=el.get("type") or None)

    def _datetime(self, el: Any) -> datetime | None:
        text = (el.text or "").strip()
        if not text:
            self.quirk("empty-element", "empty element read as absent", el)
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            self.quirk("bad-timestamp", f"{text!r} is not an xs:dateTime; read as absent", el)
            return None
        if "T" not in text:
            self.quirk("date-only-timestamp", f"date-only timestamp {text!r} read as 00:00 UTC", el)
        elif value.tzinfo is None:
            self.quirk("timestamp-without-zone", f"timestamp {text!r} without zone read as UTC", el)
        value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        try:
            epoch = value.timestamp()
        except (OverflowError, ValueError):
            epoch = TIME_MIN - 1
        if not TIME_MIN <= epoch <= TIME_MAX:
            self.quirk(
                "out-of-range",
                f"timestamp {text!r} is out of range (0001-01-02 to 9999-12-30 UTC); "
                "read as absent",
                el,
            )
            return None
        return value

    # ---- the hot path: IntervalBlock and its readings

    def _block(self, el: Any, meta: dict[str, Any]) -> m.IntervalBlock:
        block = m.IntervalBlock(**meta)
        readings = block.readings
        append = readings.append
        reading_tag = ESPI + "IntervalReading"
        fast = self._reading
        for child in el:
            if child.tag == reading_tag:
                try:
                    r = fast(child)
                except (TypeError, ValueError, IndexError):
                    r = self._reading_lenient(child)
                r.block = block
                append(r)
            else:
                name = local(child.tag)
                if name == "IntervalReading":
                    r = self._reading_lenient(child)
                    r.block = block
                    append(r)
                elif name == "interval":
                    block.interval = self._decode(m.DateTimeInterval, child)
                else:
                    self.quirk(
                        f"unknown-element-{name}", f"unknown element <{name}> kept as is", child
                    )
                    block.extra.append(canonical(child))
        return block

    @staticmethod
    def _reading(
        el: Any,
        _value: str = ESPI + "value",
        _period: str = ESPI + "timePeriod",
        _start: str = ESPI + "start",
        _duration: str = ESPI + "duration",
        _cost: str = ESPI + "cost",
        _quality: str = ESPI + "ReadingQuality",
        _tou: str = ESPI + "tou",
        _cpp: str = ESPI + "cpp",
        _tier: str = ESPI + "consumptionTier",
        _qualities: dict[int, tuple[QualityOfReading]] = {},  # noqa: B006 - a deliberate cache
    ) -> m.IntervalReading:
        """Read one IntervalReading that follows the schema, its numbers in range; anything
        else raises and the lenient path takes over."""
        start = duration = value = cost = tou = cpp = tier = None
        qualities: tuple[QualityOfReading, ...] = ()
        for c in el:
            t = c.tag
            if t == _value:
                value = int(c.text)
                if not -INT48 <= value <= INT48:
                    raise ValueError
            elif t == _period:
                for g in c:
                    if g.tag == _start:
                        start = int(g.text)
                        if not TIME_MIN <= start <= MILLISECONDS_AFTER:
                            raise ValueError
                    elif g.tag == _duration:
                        duration = int(g.text)
                        if not 0 <= duration <= UINT32_MAX:
                            raise ValueError
                    else:
                        raise ValueError
            elif t == _cost:
                cost = int(c.text)
                if not -INT48 <= cost <= INT48:
                    raise ValueError
            elif t == _quality:
                code = int(c[0].text)
                one = _qualities.get(code)
                if one is None:
                    if not 0 <= code <= 0xFFFF:
                        raise ValueError
                    one = _qualities[code] = (QualityOfReading(code),)
                qualities = qualities + one if qualities else one  # one tuple for all readings
            elif t == _tou:
                tou = int(c.text)
                if not INT16_MIN <= tou <= INT16_MAX:
                    raise ValueError
            elif t == _cpp:
                cpp = int(c.text)
                if not INT16_MIN <= cpp <= INT16_MAX:
                    raise ValueError
            elif t == _tier:
                tier = int(c.text)
                if not INT16_MIN <= tier <= INT16_MAX:
                    raise ValueError
            else:
                raise ValueError
        return m.IntervalReading(
            start=start,
            duration=duration,
            value=value,
            cost=cost,
            qualities=qualities,
            tou=tou,
            cpp=cpp,
            consumption_tier=tier,
        )

    def _reading_lenient(self, el: Any) -> m.IntervalReading:
        """The same reading with every deviation reported instead of raised."""
        values: dict[str, Any] = {}
        qualities: list[QualityOfReading] = []
        for c in el:
            name = local(c.tag)
            if name == "timePeriod":
                period = self._decode(m.DateTimeInterval, c)
                values["start"], values["duration"] = period.start, period.duration
            elif name == "ReadingQuality":
                rq = self._decode(m.ReadingQuality, c)
                if rq.quality is not None:
                    qualities.append(rq.quality)
            elif name in ("value", "cost", "tou", "cpp", "consumptionTier"):
                text = (c.text or "").strip()
                if not text:
                    self.quirk("empty-element", "empty element read as absent", c)
                    continue
                attr = "consumption_tier" if name == "consumptionTier" else name
                values[attr] = self._int(text, c, INT_TYPES[name])
            else:
                self.quirk(
                    f"unknown-reading-element-{name}",
                    f"unknown element <{name}> in IntervalReading ignored",
                    c,
                )
        if not el.tag.startswith(ESPI):
            self.quirk("reading-namespace", "IntervalReading outside the ESPI namespace", el)
        return m.IntervalReading(qualities=tuple(qualities), **values)


# --------------------------------------------------------------------------- linking


class _Index:
    """href -> resource, where an href claimed by two resources of one kind is ambiguous."""

    def __init__(self) -> None:
        self.map: dict[str, Any] = {}

    def add(self, href: str | None, res: Any) -> None:
        if not href:
            return
        key = norm_href(href)
        if not key:
            return
        self.map[key] = None if key in self.map and self.map[key] is not res else res

    def get(self, href: str | None) -> Any:
        return self.map.get(norm_href(href)) if href else None


#: child kind -> (parent kind, the child's attribute naming its parent, the parent's list)
PARENT: dict[type[Any], tuple[type[Any], str, str]] = {
    m.MeterReading: (m.UsagePoint, "usage_point", "meter_readings"),
    m.UsageSummary: (m.UsagePoint, "usage_point", "usage_summaries"),
    m.ElectricPowerQualitySummary: (m.UsagePoint, "usage_point", "power_quality_summaries"),
    m.IntervalBlock: (m.MeterReading, "meter_reading", "interval_blocks"),
}


class _Linker:
    """Ties resources together as they arrive: by Atom links first, by document order where a
    file has no usable links (reported as a quirk). ``keep_blocks``: list each IntervalBlock in
    its meter reading's ``interval_blocks`` (:func:`parse`); streaming, a block only points to
    its meter reading, so nothing keeps the blocks already handed out."""

    def __init__(self, engine: _Engine, keep_blocks: bool = True) -> None:
        self.engine = engine
        self.keep_blocks = keep_blocks
        self.selfs: dict[type[Any], _Index] = {}
        self.collections: dict[type[Any], _Index] = {}  # parent's related hrefs -> parent
        self.last: dict[type[Any], Any] = {}
        self.order: list[Any] = []  # non-block resources, in document order
        self.orphans: list[Any] = []  # children whose parent has not been seen yet
        self.untyped: list[m.MeterReading] = []  # meter readings without a reading type yet
        self.claimed: set[str] = set()  # hrefs meter readings link to
        self.loose: m.ReadingType | None = None  # the last ReadingType nobody links to
        self.held: list[m.IntervalBlock] = []  # blocks held until their reading type is known
        self.held_readings = 0
        self.typed = False  # a meter reading got its reading type since the last look

    def add(self, res: Any) -> None:
        kind = type(res)
        if kind is not m.IntervalBlock:
            self.order.append(res)
            self.selfs.setdefault(kind, _Index()).add(res.link("self"), res)
            for href in res.related():
                self.collections.setdefault(kind, _Index()).add(href, res)
            self.last[kind] = res
        if kind in PARENT:
            parent_kind = PARENT[kind][0]
            parent = self._by_link(res, parent_kind)
            if parent is None and parent_kind in self.last:
                parent = self.last[parent_kind]
                if res.links:
                    self.engine.quirk(
                        f"unlinked-{kind.__name__}",
                        f"{kind.__name__} links match no {parent_kind.__name__}; "
                        "attached to the preceding one",
                    )
            if parent is None:
                self.orphans.append(res)
            else:
                self.attach(res, parent)
        if kind is m.UsagePoint or kind is m.LocalTimeParameters:
            self._local_time(res)
        if kind is m.MeterReading:
            self.claimed.update(norm_href(h) for h in res.related())
            if res.reading_type is None:
                self._meter_reading(res)
        elif kind is m.ReadingType:
            self._reading_type(res)

    def attach(self, child: Any, parent: Any) -> None:
        _, back, children = PARENT[type(child)]
        setattr(child, back, parent)
        if self.keep_blocks or type(child) is not m.IntervalBlock:
            getattr(parent, children).append(child)

    def _by_link(self, res: Any, parent_kind: type[Any]) -> Any:
        up = res.link("up")
        collections = self.collections.get(parent_kind)
        if up and collections is not None and (p := collections.get(up)) is not None:
            return p
        selfs = self.selfs.get(parent_kind)
        if selfs is None:
            return None
        if up and (p := selfs.get(up)) is not None:
            return p
        for href in (up, res.link("self")):
            if not href:
                continue
            path = norm_href(href).split("/")
            while len(path) > 1:
                path.pop()
                p = selfs.map.get("/".join(path))
                if p is not None:
                    return p
        return None

    def _local_time(self, res: m.UsagePoint | m.LocalTimeParameters) -> None:
        """Tie usage points to the LocalTimeParameters they link to, whichever comes first."""
        index = self.selfs.get(m.LocalTimeParameters)
        if index is None:
            return
        ups = [res] if isinstance(res, m.UsagePoint) else self.order
        for up in ups:
            if isinstance(up, m.UsagePoint) and up.local_time_parameters is None:
                found = next((t for h in up.related() if (t := index.get(h)) is not None), None)
                up.local_time_parameters = found

    def _meter_reading(self, mr: m.MeterReading) -> None:
        """Its reading type: the one it links to; else, when it links to none, the unclaimed
        ReadingType just before it; else wait for one."""
        types = self.selfs.get(m.ReadingType)
        rt = (
            next((t for h in mr.related() if (t := types.get(h)) is not None), None)
            if types
            else None
        )
        if rt is None and self.loose is not None and not names_type(mr):
            rt, self.loose = self.loose, None
            self._by_order()
        if rt is None:
            self.untyped.append(mr)
        else:
            mr.reading_type = rt
            self.typed = True

    def _reading_type(self, rt: m.ReadingType) -> None:
        """A new ReadingType: to the meter readings that link to it; else, when nobody links to
        it, to the first waiting meter reading that links to no reading type at all."""
        href = rt.link("self")
        key = norm_href(href) if href else ""
        linked = [mr for mr in self.untyped if key and key in map(norm_href, mr.related())]
        if not linked and key not in self.claimed:
            linked = [mr for mr in self.untyped if not names_type(mr)][:1]
            if linked:
                self._by_order()
            else:
                self.loose = rt
        for mr in linked:
            mr.reading_type = rt
            self.untyped.remove(mr)
            self.typed = True

    def _by_order(self) -> None:
        self.engine.quirk(
            "unlinked-ReadingType",
            "MeterReading links to no ReadingType; the one beside it in the document was taken",
        )

    def _claimed(self, rt: m.ReadingType) -> bool:
        href = rt.link("self")
        return href is not None and norm_href(href) in self.claimed

    # ---- streaming hold-back: a block is released once its reading type is known

    def ready(self, block: m.IntervalBlock) -> list[m.IntervalBlock]:
        """Blocks that may be handed out now, in document order. Held blocks only become
        ready when a meter reading gets its type, so only then are they all looked at again."""
        self.held.append(block)
        self.held_readings += len(block.readings)
        # When blocks were held before and no meter reading got its type since, still not ready.
        go = (len(self.held) == 1 or self.typed) and all(typed(b) for b in self.held)
        self.typed = False
        if not go and self.held_readings <= HOLD_BACK_READINGS:
            return []
        out, self.held, self.held_readings = self.held, [], 0
        return out

    def finish(self) -> None:
        """Links for what is still unresolved at the end of the document, by document order."""
        for res in self.orphans:
            parent_kind = PARENT[type(res)][0]
            parent = self._by_link(res, parent_kind) or self._following(res, parent_kind)
            if parent is not None:
                self.attach(res, parent)
                self.engine.quirk(
                    f"late-{type(res).__name__}",
                    f"{type(res).__name__} placed before its {parent_kind.__name__}; "
                    "attached by document order",
                )
        types = [r for r in self.order if isinstance(r, m.ReadingType)]
        for mr in self.untyped:
            rt = self._nearest_type(mr, types)
            if rt is not None:
                mr.reading_type = rt
                self.engine.quirk(
                    "unlinked-ReadingType",
                    "MeterReading links match no ReadingType; the nearest one in the document "
                    "was taken as its own",
                )
        ltps = [r for r in self.order if isinstance(r, m.LocalTimeParameters)]
        if len(ltps) == 1:  # a file's one LocalTimeParameters is its usage points' own
            for up in (r for r in self.order if isinstance(r, m.UsagePoint)):
                if up.local_time_parameters is None:
                    up.local_time_parameters = ltps[0]

    def _following(self, res: Any, kind: type[Any]) -> Any:
        after = False
        candidates = [r for r in self.order if isinstance(r, kind)]
        for r in self.order:
            if r is res:
                after = True
            elif after and isinstance(r, kind):
                return r
        return candidates[-1] if candidates else None

    def _nearest_type(self, mr: m.MeterReading, types: list[m.ReadingType]) -> m.ReadingType | None:
        if len(types) == 1:
            return types[0]
        pos = self.order.index(mr)
        after = [t for t in types if self.order.index(t) > pos and not self._claimed(t)]
        before = [t for t in types if self.order.index(t) < pos and not self._claimed(t)]
        return after[0] if after else (before[-1] if before else None)


def local_wall(epoch: int, zone: Any) -> datetime | None:
    """The wall-clock time (naive) at an instant in a zone."""
    return None if zone is None else datetime.fromtimestamp(epoch, zone).replace(tzinfo=None)


def one_slot_missing(block: m.IntervalBlock, distinct_starts: int, duration: int) -> bool:
    """Whether the block's distinct starts leave exactly one slot of ``duration`` empty."""
    period = block.interval
    if period is None or period.duration is None or duration <= 0:
        return True  # no interval to count against: the missing start itself was checked
    return distinct_starts == period.duration // duration - 1


def typed(block: m.IntervalBlock) -> bool:
    return block.meter_reading is not None and block.meter_reading.reading_type is not None


def names_type(mr: m.MeterReading) -> bool:
    """Whether a meter reading links to a ReadingType (seen yet or not)."""
    return any("ReadingType" in h for h in mr.related())


# --------------------------------------------------------------------------- the two doors

FEED_LISTS: dict[type[Any], str] = {
    m.UsagePoint: "usage_points",
    m.MeterReading: "meter_readings",
    m.ReadingType: "reading_types",
    m.IntervalBlock: "interval_blocks",
    m.UsageSummary: "usage_summaries",
    m.ElectricPowerQualitySummary: "power_quality_summaries",
    m.LocalTimeParameters: "local_time_parameters",
    m.ApplicationInformation: "application_information",
    m.Authorization: "authorizations",
    m.ProgramIdMappings: "program_id_mappings",
}
CUSTOMER_LISTS: dict[type[Any], str] = {
    m.Customer: "customers",
    m.CustomerAccount: "accounts",
    m.CustomerAgreement: "agreements",
    m.ServiceLocation: "service_locations",
    m.Meter: "meters",
    m.ServiceSupplier: "service_suppliers",
    m.Statement: "statements",
}


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a whole document is built, on again after
    (unless it was off before). Every object built lives on, and the collector walking them
    again and again as they pile up was most of what :func:`parse` cost beyond streaming;
    building makes no garbage cycles for it to find. (The switch is the process's: other
    threads go without the collector meanwhile, as they would during any long build.)"""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def parse(source: Source, options: ParseOptions | None = None) -> m.Feed:
    """Read a whole Green Button document: a path, bytes or a binary file.

    Raises :class:`ParseError` (a ``ValueError``) for input that is not well-formed, unsafe or
    not a Green Button document; tolerated deviations are in ``feed.quirks``.
    """
    engine = _Engine(source, options or ParseOptions())
    feed = m.Feed()
    with collector_paused():
        for res in engine.run():
            kind = type(res)
            if kind in FEED_LISTS:
                getattr(feed, FEED_LISTS[kind]).append(res)
            elif kind in CUSTOMER_LISTS:
                getattr(feed.retail_customer, CUSTOMER_LISTS[kind]).append(res)
            elif kind is m.ServiceStatus:
                feed.service_status = res
            elif kind is m.BatchList:
                feed.batch_list = res
            if isinstance(res, m.Resource):
                feed.entries.append(res)
    feed.id = engine.header.get("id")
    feed.title = engine.header.get("title")
    feed.updated = engine.header.get("updated")
    feed.links = engine.header["links"]
    feed.quirks = list(engine.quirks.values())
    return feed


class ReadingStream:
    """What :func:`iter_readings` returns: an iterator of readings with the quirks seen so far."""

    def __init__(self, source: Source, options: ParseOptions | None = None) -> None:
        self._engine = _Engine(source, options or ParseOptions(), keep_blocks=False)
        self._iter = self._run()

    @property
    def quirks(self) -> list[Quirk]:
        return list(self._engine.quirks.values())

    @property
    def file(self) -> str:
        """The document's name as messages give it (its path, ``<bytes>``, ...)."""
        return self._engine.file

    @property
    def resources(self) -> list[Any]:
        """The resources other than IntervalBlocks seen so far (usage points, reading types,
        summaries...), in document order; complete once the stream is exhausted."""
        return self._engine.linker.order

    def __iter__(self) -> ReadingStream:
        return self

    def __next__(self) -> m.IntervalReading:
        return next(self._iter)

    def _run(self) -> Iterator[m.IntervalReading]:
        linker = self._engine.linker
        for res in self._engine.run():
            if type(res) is m.IntervalBlock:
                for block in linker.ready(res):
                    yield from block.readings
                    block.readings = []
        for block in linker.held:  # what was held back to the end of the document
            yield from block.readings
            block.readings = []
        linker.held = []


def iter_readings(source: Source, options: ParseOptions | None = None) -> ReadingStream:
    """Stream every IntervalReading of a document in flat memory.

    Each reading carries its block, and through it its meter reading, reading type and usage
    point when the document says which they are.
    """
    return ReadingStream(source, options)
