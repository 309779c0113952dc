"""Hostile and broken input: refused with a precise message, never expanded or fetched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import espi
from espi import ParseOptions

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">'
    + "".join(
        f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + f']><feed xmlns="{ATOM}"><entry><content><UsagePoint xmlns="{ESPI}"><readCycle>&i;'
    "</readCycle></UsagePoint></content></entry></feed>"
).encode()


def xxe(target: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x SYSTEM "{target}">]>'
        f'<feed xmlns="{ATOM}"><entry><content><UsagePoint xmlns="{ESPI}"><readCycle>&x;'
        "</readCycle></UsagePoint></content></entry></feed>"
    ).encode()


HOSTILE = {
    "billion-laughs": BILLION_LAUGHS,
    "xxe-file": xxe("file:///etc/passwd"),
    "xxe-network": xxe("http://127.0.0.1:9/x"),
    "external-dtd": (
        f'<!DOCTYPE feed SYSTEM "http://127.0.0.1:9/feed.dtd"><feed xmlns="{ATOM}"/>'
    ).encode(),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_dtds_and_entities_are_refused_by_every_door(name):
    data = HOSTILE[name]
    for read in (espi.parse, lambda d: list(espi.iter_readings(d)), espi.validate):
        with pytest.raises(espi.ParseError, match=r"DTD|entity amplification") as info:
            read(data)
        assert "root:" not in str(info.value)  # nothing of /etc/passwd leaks into a message


def test_size_limit_is_enforced_while_streaming():
    data = f'<feed xmlns="{ATOM}">'.encode() + b"<entry/>" * 10_000 + b"</feed>"
    with pytest.raises(espi.ParseError, match="larger than the limit of 1000 bytes"):
        list(espi.iter_readings(data, ParseOptions(max_bytes=1000)))


@pytest.mark.parametrize(
    "data, message, line",
    [
        (b"", "empty document", None),
        (b"not xml at all", "not well-formed XML", 1),
        (f'<feed xmlns="{ATOM}">\n<entry>\n<content>\n'.encode(), "not well-formed XML", 4),
        (b"<html><body>login</body></html>", "not a Green Button document: root element <html>", 1),
        (f'<feed xmlns="{ATOM}"><entry></feed>'.encode(), "not well-formed XML", 1),
    ],
)
def test_broken_input_gets_a_precise_error(data, message, line):
    with pytest.raises(espi.ParseError, match=message) as info:
        espi.parse(data)
    if line is not None:
        assert info.value.line == line
    assert isinstance(info.value, ValueError)


def test_deep_nesting_is_refused_not_recursed():
    depth = 5000
    data = (
        f'<feed xmlns="{ATOM}"><entry><content><UsagePoint xmlns="{ESPI}">'
        + "<x>" * depth
        + "</x>" * depth
        + "</UsagePoint></content></entry></feed>"
    ).encode()
    with pytest.raises(espi.ParseError, match="not well-formed XML"):
        espi.parse(data)


def test_missing_file_is_a_parse_error_naming_it(tmp_path):
    missing = tmp_path / "nope.xml"
    with pytest.raises(espi.ParseError, match=f"{missing}: cannot open"):
        espi.parse(missing)


#: Pieces the guard's searches look for, and near misses, to build windows from.
PIECES = [b"</entry>", b"</atom:entry >", b"</a b:entry>", b"entry", b"<entry>", b"</", b"<",
          b">", b":", b" ", b"!", b"?", b"<!", b"<?", b"<!--", b"x", b"\n"]  # fmt: skip


@given(st.lists(st.sampled_from(PIECES), max_size=30), st.integers(0, 40))
def test_the_guards_byte_searches_find_what_its_patterns_match(pieces, start):
    """The guard looks for entry ends and for comments, PIs and declarations with plain byte
    searches (the regexes over every byte cost a sixth of reading): they find the same."""
    from espi.reader import ENTRY_END, SPECIAL_START, last_entry_end, next_special

    window = b"".join(pieces)
    ends = list(ENTRY_END.finditer(window, start))
    assert last_entry_end(window, start) == (ends[-1].end() if ends else -1)
    special = SPECIAL_START.search(window, start)
    assert next_special(window, start) == (special.start() if special else -1)
