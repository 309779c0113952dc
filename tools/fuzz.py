"""Fuzz the reader and what reads its output: mutated real samples must give a model or a
ParseError, never another exception.

    python tools/fuzz.py                 # 100,000 inputs (about 15 minutes on one core)
    python tools/fuzz.py -n 5000 --seed 3

Each input is a real sample from tests/data with one to three mutations: numbers and dates
swapped for hostile ones (1e400, NaN, 20- and 5,000-digit integers, year 0 and 10000, a power
of ten of 400), bytes flipped, inserted or deleted, the document truncated, slices repeated,
markup inserted (comments, PIs, CDATA, entity references, DTDs, stray tags), element names
swapped. Each goes through ``espi.parse``, ``espi.iter_readings``, the export rows, ``espi
lint``'s checks and the writer. Prints the count of each outcome; exits 1 when anything other
than a model or a ParseError came out, printing the first few inputs that did so.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import espi  # noqa: E402
from espi import export, lint  # noqa: E402

DATA = ROOT / "tests" / "data"
#: Samples small enough to be mutated thousands of times a minute.
MAX_SAMPLE_BYTES = 60_000

NUMBERS = [
    b"1e400",
    b"-1e400",
    b"inf",
    b"-Infinity",
    b"NaN",
    b"nan",
    b"1.5",
    b"-0",
    b"+7",
    b"",
    b"  ",
    b"abc",
    b"0x1F",
    b"1_000",
    b"12345678901234567890",
    b"-99999999999999999999",
    b"9" * 5000,
    b"1" + b"0" * 400,
    b"140737488355329",
    b"4294967296",
    b"-1",
    b"400",
    b"-400",
    b"32768",
    b"65536",
    b"253402300800",
    b"-62167219200",
    b"1e-400",
    b"\xff\xfe",
    b"&#0;",
    b"&amp;",
    b"1.7976931348623157e309",
    b"1E19",
]
DATES = [
    b"0000-01-01T00:00:00Z",
    b"10000-01-01T00:00:00Z",
    b"0001-01-01T00:00:00+14:00",
    b"9999-12-31T23:59:59-14:00",
    b"2024-13-45T99:99:99Z",
    b"2024-01-01",
    b"yesterday",
    b"",
    b"2024-01-01T00:00:00+25:00",
    b"1970-01-01T00:00:00.9999999999Z",
]
SNIPPETS = [
    b"<!-- c -->",
    b"<?pi x?>",
    b"<![CDATA[<x>]]>",
    b"&x;",
    b"&#x110000;",
    b"&#0;",
    b"<",
    b">",
    b"</entry>",
    b"<entry>",
    b"<!DOCTYPE x>",
    b'<!ENTITY a "b">',
    b"<x:y>",
    b"]]>",
    b'<link rel="self" href="../../"/>',
    b"<content>",
    b"\x00",
    b"\xc3\x28",
    b"\xef\xbb\xbf",
    b"<IntervalReading><value>1</value></IntervalReading>",
    b"<ReadingType/>",
    b"<timePeriod><duration>-5</duration><start>99999999999999999</start></timePeriod>",
]
NAMES = [
    b"UsagePoint",
    b"MeterReading",
    b"ReadingType",
    b"IntervalBlock",
    b"IntervalReading",
    b"UsageSummary",
    b"LocalTimeParameters",
    b"value",
    b"start",
    b"duration",
    b"cost",
    b"powerOfTenMultiplier",
    b"uom",
    b"kind",
    b"entry",
    b"content",
    b"feed",
    b"link",
]
NUMBER_TEXT = re.compile(rb">(-?\d+)<")
DATE_TEXT = re.compile(rb">(\d{4}-\d\d-\d\d[^<]*)<")
NAME = re.compile(rb"</?(?:[\w.-]+:)?([A-Za-z]\w*)")


def samples() -> list[bytes]:
    return [
        p.read_bytes()
        for p in sorted(DATA.iterdir())
        if p.suffix.lower() in (".xml", ".gbxml") and p.stat().st_size <= MAX_SAMPLE_BYTES
    ]


def swap_match(
    data: bytes, pattern: re.Pattern[bytes], pool: list[bytes], rng: random.Random
) -> bytes:
    found = list(pattern.finditer(data))
    if not found:
        return data
    m = rng.choice(found)
    return data[: m.start(1)] + rng.choice(pool) + data[m.end(1) :]


def rename(data: bytes, rng: random.Random) -> bytes:
    """Every tag of one element name renamed to another: still well-formed, meaning changed."""
    names = sorted({m.group(1) for m in NAME.finditer(data)})
    if not names:
        return data
    old = re.escape(rng.choice(names))
    return re.sub(rb"(</?(?:[\w.-]+:)?)" + old + rb"\b", rb"\1" + rng.choice(NAMES), data)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation of a document: most keep it well-formed, so the reader's deeper
    paths are reached; the rest break it."""
    n = len(data) or 1
    at = rng.randrange(n)
    kind = rng.randrange(10)
    if kind < 3:
        return swap_match(data, NUMBER_TEXT, NUMBERS, rng)
    if kind == 3:
        return swap_match(data, DATE_TEXT, DATES, rng)
    if kind == 4:
        return rename(data, rng)
    if kind == 5:
        return data[:at]  # truncated
    if kind == 6:
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    if kind == 7:
        return data[:at] + data[at + rng.randrange(1, 64) :]
    if kind == 8:
        end = min(n, at + rng.randrange(1, 400))
        return data[:end] + data[at:end] + data[end:]
    return data[:at] + rng.choice(SNIPPETS) + data[at:]


def exercise(data: bytes) -> None:
    """Everything a user does with a document; raises what any of it raises."""
    feed = espi.parse(data)
    for r in feed.readings():
        export.row(r)
    espi.dumps(feed)
    for r in espi.iter_readings(data):
        export.row(r)
    lint.lint(data)


def run(count: int, seed: int, report: Callable[[str], None] = print) -> Counter[str]:
    """Fuzz ``count`` inputs; the outcome counts ("ok", "ParseError", or the exception type)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible mutations, not secrets
    seeds = samples()
    outcomes: Counter[str] = Counter()
    shown = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(count):
            data = rng.choice(seeds)
            for _ in range(rng.randint(1, 3)):
                data = mutate(data, rng)
            try:
                exercise(data)
            except espi.ParseError:
                outcomes["ParseError"] += 1
            except Exception as err:  # the point is to catch anything
                outcomes[type(err).__name__] += 1
                if shown < 5:
                    shown += 1
                    report(f"input {i} (seed {seed}): {type(err).__name__}: {err}"[:500])
                    report("".join(traceback.format_exception(err)[-3:])[:1500])
            else:
                outcomes["ok"] += 1
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    began = time.monotonic()
    outcomes = run(args.count, args.seed)
    bad = sum(n for k, n in outcomes.items() if k not in ("ok", "ParseError"))
    print(
        f"{args.count:,} inputs in {time.monotonic() - began:,.0f} s: "
        + ", ".join(f"{k} {n:,}" for k, n in outcomes.most_common())
    )
    print(f"exceptions other than ParseError: {bad:,}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
