"""XSD validation against the ESPI schemas shipped in ``xsd/``, offline.

Three schema sets: ``"4.0"`` (NAESB REQ.21 ESPI 4.0, the default), ``"3.3"`` and ``"legacy"``
(the 2015 OpenESPI ``espiDerived`` set behind the older files). Each is one schema that imports
the Atom, ESPI and customer namespaces, so ESPI content inside ``atom:content`` is validated too.
"""

from __future__ import annotations

import os
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


def validate(source: Source, schema: str = "4.0") -> list[SchemaProblem]:
    """Every XSD violation of a document, in document order (empty when it is valid).

    Raises :class:`~espi.ParseError` when the document is not well-formed or declares a DTD.
    """
    compiled = load_schema(schema)
    tree, name = read_tree(source)
    return [
        SchemaProblem(
            name, err.sourceline, short(err.path or "/"), short(err.reason or err.message)
        )
        for err in compiled.iter_errors(tree)
    ]
