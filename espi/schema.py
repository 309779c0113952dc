"""XSD validation against the ESPI schemas shipped in ``xsd/``, offline.

Three schema sets: ``"4.0"`` (NAESB REQ.21 ESPI 4.0, the default), ``"3.3"`` and ``"legacy"``
(the 2015 OpenESPI ``espiDerived`` set behind the older files). Each is one schema that imports
the Atom, ESPI and customer namespaces, so ESPI content inside ``atom:content`` is validated too.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree

from .errors import SchemaProblem
from .reader import SAFE, GuardedInput, ParseOptions, Source, open_source, refuse_dtd, syntax_error

SCHEMA_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "4.0": ("espi-4.0", ("atom.xsd", "espi.xsd", "customer.xsd")),
    "3.3": ("espi-3.3", ("atom.xsd", "usage.xsd", "retailcustomer.xsd")),
    "legacy": ("legacy-2015-espiDerived", ("atom.xsd", "espiDerived.xsd", "retailcustomer.xsd")),
}


def xsd_dir() -> Path:
    """Where the schemas are: ``$ESPI_XSD_DIR``, inside the installed package, or the repo."""
    here = Path(__file__).resolve().parent
    for candidate in (os.environ.get("ESPI_XSD_DIR"), here / "xsd", here.parent / "xsd"):
        if candidate and (Path(candidate) / "espi-4.0" / "espi.xsd").is_file():
            return Path(candidate)
    raise FileNotFoundError("ESPI schemas not found; set ESPI_XSD_DIR to the xsd/ folder")


@cache
def load_schema(version: str = "4.0") -> xmlschema.XMLSchema:
    """The compiled schema set (cached; about half a second the first time)."""
    if version not in SCHEMA_SETS:
        raise ValueError(f"unknown schema {version!r}; choose one of {', '.join(SCHEMA_SETS)}")
    folder, files = SCHEMA_SETS[version]
    base = xsd_dir() / folder
    # xmlschema resolves the xml.xsd import (a w3.org URL) to its built-in copy: no network.
    return xmlschema.XMLSchema([str(base / f) for f in files])


def read_tree(
    source: Source, options: ParseOptions | None = None
) -> tuple[etree._ElementTree, str]:
    """Parse a whole document with the package's safe settings and the reader's limits."""
    raw, name, close = open_source(source)
    try:
        guarded: Any = GuardedInput(raw, name, options or ParseOptions())
        tree = etree.parse(guarded, etree.XMLParser(**SAFE))
    except etree.XMLSyntaxError as err:
        raise syntax_error(err, name) from err
    finally:
        if close:
            raw.close()
    refuse_dtd(tree.getroot(), name)
    return tree, name


PREFIXES = {
    "{http://www.w3.org/2005/Atom}": "atom:",
    "{http://naesb.org/espi}": "espi:",
    "{http://naesb.org/espi/customer}": "cust:",
}


def short(path: str) -> str:
    """An element path with namespace URIs written as the usual prefixes."""
    for uri, prefix in PREFIXES.items():
        path = path.replace(uri, prefix)
    return path


#: XSD built-in types in words (what a value should look like)
TYPE_WORDS = {
    "dateTime": "a date and time, like 2024-01-31T00:00:00Z",
    "date": "a date, like 2024-01-31",
    "boolean": "true or false",
    "anyURI": "a URI",
    "hexBinary": "hexadecimal digits (0-9, a-f), two per byte",
    "decimal": "a number",
    "float": "a number",
    "double": "a number",
    "duration": "a duration, like P1D",
}
WHOLE = {"long", "int", "short", "byte", "integer"}
UNSIGNED = {"unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte", "nonNegativeInteger"}
#: what xmlschema's messages name that a reader should not have to decode
LIBRARY = (
    (re.compile(r"XsdElement\(name='([^']+)', occurs=\[(\d+), (\w+)\]\)"), r"<\1>"),
    (re.compile(r"<class '[\w.]*?(\w+)'>"), r"\1"),
    (re.compile(r"\bXsd\w+\((?:name=)?'?([^')]*)'?[^)]*\)"), r"\1"),
    (re.compile(r"value must be (-?\d+) <= x < 2\^(\d+)"), lambda m: (
        f"must be a whole number from {int(m[1]):,} to {2 ** int(m[2]) - 1:,}")),
)  # fmt: skip


def expects(xsd_type: Any) -> str:
    """What a simple type's values look like, in words ("" when it cannot be said)."""
    name = (getattr(xsd_type, "local_name", None) or "").strip()
    builtin = getattr(xsd_type, "primitive_type", None) if name not in TYPE_WORDS else None
    if name in WHOLE:
        return "a whole number"
    if name in UNSIGNED or name == "positiveInteger":
        return (
            "a whole number of 0 or more" if name != "positiveInteger" else "a whole number above 0"
        )
    if name in TYPE_WORDS:
        return TYPE_WORDS[name]
    codes = [c for m in getattr(xsd_type, "member_types", None) or [xsd_type]
             for c in getattr(m, "enumeration", None) or ()]  # fmt: skip
    if codes:
        listed = ", ".join(str(c) for c in codes[:12]) + (", …" if len(codes) > 12 else "")
        return (
            f"{'an' if name[:1] in 'AEIOU' else 'a'} {name} code ({listed})"
            if name
            else f"one of {listed}"
        )
    if builtin is not None and builtin is not xsd_type:
        return expects(builtin)
    return ""


def children(group: Any) -> list[str]:
    """The child elements a content model allows, in its order."""
    try:
        return [short(e.prefixed_name or e.name) for e in group.iter_elements()]
    except AttributeError:
        return []


def plain(err: Any) -> str:
    """An xmlschema error in words: what is wrong where, and what the schema expects there,
    without the library's class names."""
    reason = str(err.reason or err.message or "")
    tag = getattr(err, "invalid_tag", None)
    parent = short(err.elem.tag) if getattr(err, "elem", None) is not None else ""
    if tag is not None:
        allowed = children(err.validator)
        where = f" as child {(err.index or 0) + 1} of <{parent}>" if parent else ""
        text = f"<{short(tag)}> is not allowed here{where}"
        if allowed:
            text += "; the schema expects its children in this order: " + ", ".join(allowed)
        return text
    if "is not complete" in reason and parent:
        allowed = children(err.validator)
        text = f"<{parent}> is incomplete: a required child is missing"
        return text + (" (its children, in order: " + ", ".join(allowed) + ")" if allowed else "")
    value = err.obj if isinstance(err.obj, (str, int)) and not hasattr(err.obj, "tag") else None
    wanted = expects(err.validator) if not callable(err.validator) else ""
    for pattern, words in LIBRARY:
        reason = pattern.sub(words, reason)
    if value is not None and wanted:
        return f"{str(value)[:80]!r} is not {wanted}"
    if value is not None and reason.startswith("must be"):
        return f"{str(value)[:80]!r} {reason}"
    return short(reason)


def validate(
    source: Source, schema: str = "4.0", options: ParseOptions | None = None
) -> list[SchemaProblem]:
    """Every XSD violation of a document, in document order (empty when it is valid).

    A feed is validated entry by entry, so ``options.progress`` hears how far validation
    (the slow part) has come, in bytes of the document. Raises :class:`~espi.ParseError`
    when the document is not well-formed or declares a DTD.
    """
    compiled = load_schema(schema)
    progress = options.progress if options is not None else None
    size = [0]  # bytes read: the scale validation's progress is given in

    def count(n: int) -> None:
        size[0] = n

    tree, name = read_tree(source, dataclasses.replace(options or ParseOptions(), progress=count))
    root: Any = tree.getroot()
    entries: list[Any] = (
        [el for el in root if el.tag == ATOM_ENTRY] if root.tag == ATOM_FEED else []
    )
    if not entries:
        return [problem(name, err, "") for err in compiled.iter_errors(tree)]
    entry = compiled.maps.elements[ATOM_ENTRY]
    lines = max([1, *(e.sourceline or 0 for e in entries)])
    for el in entries:
        root.remove(el)  # the feed's own elements first, then each entry on its own
    found = [problem(name, err, "") for err in compiled.iter_errors(tree)]
    for n, el in enumerate(entries, start=1):
        where = f"/feed/entry[{n}]" if len(entries) > 1 else "/feed/entry"
        atom = [f"{p}:" for p, uri in el.nsmap.items() if p and uri == ATOM_FEED[1:-5]]
        found += [problem(name, err, where, atom) for err in entry.iter_errors(el)]
        if progress is not None:
            progress(size[0] * (el.sourceline or 0) // lines)
    return sorted(found, key=lambda p: p.line or 0)


ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
ATOM_ENTRY = "{http://www.w3.org/2005/Atom}entry"


def problem(name: str, err: Any, entry: str, atom: Sequence[str] = ()) -> SchemaProblem:
    """One violation; inside an entry validated on its own, its path is the entry's in the
    feed, Atom elements without their prefix (``atom``), as a whole document gives them."""
    path = short(err.path or "/")
    if entry:
        path = entry + path[path.find("/", 1) :] if path.count("/") > 1 else entry
        for prefix in atom:
            path = path.replace("/" + prefix, "/")
    return SchemaProblem(name, err.sourceline, path, plain(err))
