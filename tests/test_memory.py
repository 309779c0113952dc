"""Streaming stays flat: resident memory does not grow with the size of the document."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_iter_readings_streams_a_large_feed_in_flat_memory(tmp_path):
    path = tmp_path / "big.xml"
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from feeds import write_feed
    finally:
        sys.path.pop(0)
    count = write_feed(path, meters=4, days=365)  # about 32 MB, 140,160 readings
    script = textwrap.dedent(
        f"""
        import espi
        def mib(key):  # VmHWM, unlike ru_maxrss, does not carry the parent's peak over exec
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        before = mib("VmRSS:")
        n = sum(1 for r in espi.iter_readings({str(path)!r}) if r.reading_type is not None)
        print(n, mib("VmHWM:") - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    n, growth = out.stdout.split()
    assert int(n) == count
    assert float(growth) < 24, f"resident memory grew {growth} MiB for a 32 MB feed"


def test_the_element_limit_counts_one_entry_not_the_document(tmp_path):
    """Entries of ~770 elements each, 40 of them: the limit applies to each entry (the count
    once went on across entries, read a chunk at a time, and refused a 155 MB feed)."""
    import espi

    path = tmp_path / "days.xml"
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from feeds import write_feed
    finally:
        sys.path.pop(0)
    count = write_feed(path, meters=1, days=40)
    options = espi.ParseOptions(max_elements=2000)
    assert sum(1 for _ in espi.iter_readings(path, options)) == count


ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
FEED = f'<feed xmlns="{ATOM}">'
#: Hostile streams: an opening, then one piece repeated for 128 MiB (never closed).
HOSTILE = {
    "comment": (FEED + "<!--", "a", "a comment of more than 1,048,576 bytes"),
    "comment full of markup": (FEED + "<!--", "<a>", "a comment of more than"),
    "processing instruction": (FEED + "<?pi ", "a", "a processing instruction of more than"),
    "CDATA": (FEED + "<entry><title><![CDATA[", "<a>", "a CDATA section of more than"),
    "attribute value": (f'<feed xmlns="{ATOM}" a="', "a", "a tag or text of more than"),
    "attributes": (f'<feed xmlns="{ATOM}"', ' a="x"', "a tag or text of more than"),
    "tag name": ("<", "a", "a tag or text of more than"),
    "whitespace": (FEED, " \n", "a tag or text of more than"),
    "text": (
        FEED + f'<entry><content><UsagePoint xmlns="{ESPI}"><readCycle>',
        "a",
        "a tag or text of more than",
    ),
    "DTD": ("<!DOCTYPE feed [", '<!ENTITY a "b">', "document type declarations"),
    "elements": (
        FEED + f'<entry><content><UsagePoint xmlns="{ESPI}">',
        "<x/>",
        "more than 2,000,000 elements in one entry",
    ),
}
STREAM = """
import io, sys, espi
head, piece, total = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3])
class Stream(io.RawIOBase):  # generated as it is read: the test itself holds nothing
    left = total
    def readable(self):
        return True
    def readinto(self, buf):
        global head
        if head:
            n = len(head); buf[:n] = head; head = b""
            return n
        n = min(len(buf), self.left)
        buf[:n] = (piece * (n // len(piece) + 1))[:n]
        self.left -= n
        return n
def mib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
before = mib("VmRSS:")
try:
    for _ in espi.iter_readings(io.BufferedReader(Stream(), 1 << 16)):
        pass
    print("read without error")
except espi.ParseError as err:
    print(err)
print(mib("VmHWM:") - before)
"""


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_markup_is_refused_while_it_streams_in_bounded_memory(kind):
    head, piece, message = HOSTILE[kind]
    size = 128 << 20
    out = subprocess.run(
        [sys.executable, "-c", STREAM, head, piece, str(size)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    error, growth = out.stdout.strip().rsplit("\n", 1)
    assert message in error, error
    assert "limit: ParseOptions" in error or "DTD" in error, error
    # a tag, a comment...: within max_markup; elements: two million empty ones, refused
    bound = 300 if kind == "elements" else 24
    assert float(growth) < bound, f"{kind}: resident memory grew {growth} MiB"
