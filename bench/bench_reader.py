"""Benchmark: reading and writing Green Button files, against plain lxml loops doing the same.

    python bench/bench_reader.py [--meters 1,20] [--scales 1,2,4] [--repeat 3]

For each generated feed (a year of 15-minute readings per meter, with cost and quality, one
IntervalBlock a day), every method runs in a fresh process, ``--repeat`` times; the tables show
the best CPU time, its ratio to the baseline measured in the same run, and how far resident
memory grew while the method ran (its peak over where it started).

Reading: the baseline is the fastest plain lxml loop we know: iterparse on IntervalReading,
the fields read by walking children, each reading cleared and its earlier siblings deleted.
The ``findtext`` loop is the form most code uses, shown for reference.

Writing: the document is parsed first and the writer's schema types loaded (once a process,
about half a second; neither timed); the baseline is a plain
``lxml.etree.xmlfile`` loop writing every IntervalBlock as an Atom entry (id, links, title,
times, the block and its readings) with ``SubElement``, one entry at a time, to ``/dev/null``.
``espi.write`` streams the whole feed the same way (through :class:`espi.FeedWriter`) with its
links, ids and range checks, the readings written as text; ``espi.dumps`` builds the document
in memory. For reference, a loop writing the same entries as f-strings (no element built, no
check, one line each).

Flat memory: ``espi.iter_readings`` over the first feed and feeds ``--scales`` times its size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_ingest import header  # noqa: E402
from feeds import year_feed  # noqa: E402

E = "{http://naesb.org/espi}"
A = "{http://www.w3.org/2005/Atom}"


def status_mib(key: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MiB. VmHWM rather than ru_maxrss:
    ru_maxrss carries the parent's peak over exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    """Start VmHWM again from the present RSS (Linux: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


# --------------------------------------------------------------------------- reading


def lxml_children(path: str) -> int:
    from lxml import etree

    value, period, start_tag, duration_tag = (
        E + "value",
        E + "timePeriod",
        E + "start",
        E + "duration",
    )
    cost_tag, quality_tag = E + "cost", E + "ReadingQuality"
    n = 0
    for _, el in etree.iterparse(
        path, events=("end",), tag=E + "IntervalReading", resolve_entities=False, no_network=True
    ):
        start = duration = val = cost = None
        qualities: tuple[int, ...] = ()
        for c in el:
            t = c.tag
            if t == value:
                val = int(c.text)
            elif t == period:
                for g in c:
                    if g.tag == start_tag:
                        start = int(g.text)
                    elif g.tag == duration_tag:
                        duration = int(g.text)
            elif t == cost_tag:
                cost = int(c.text)
            elif t == quality_tag:
                qualities += (int(c[0].text),)
        row = (start, duration, val, cost, qualities)
        n += row is not None
        el.clear(keep_tail=True)
        while el.getprevious() is not None:
            del el.getparent()[0]
    return n


def lxml_findtext(path: str) -> int:
    from lxml import etree

    n = 0
    for _, el in etree.iterparse(
        path, events=("end",), tag=E + "IntervalReading", resolve_entities=False, no_network=True
    ):
        tp = el.find(E + "timePeriod")
        cost = el.findtext(E + "cost")
        row = (
            int(tp.findtext(E + "start")),
            int(tp.findtext(E + "duration")),
            int(el.findtext(E + "value")),
            int(cost) if cost is not None else None,
            tuple(int(q.text) for q in el.iterfind(f"{E}ReadingQuality/{E}quality")),
        )
        n += row is not None
        el.clear(keep_tail=True)
        while el.getprevious() is not None:
            del el.getparent()[0]
    return n


def espi_iter_readings(path: str) -> int:
    import espi

    n = 0
    for r in espi.iter_readings(path):
        row = (r.start, r.duration, r.value, r.cost, r.qualities, r.reading_type)
        n += row is not None
    return n


def espi_parse(path: str) -> int:
    import espi

    return sum(1 for _ in espi.parse(path).readings())


# --------------------------------------------------------------------------- writing


def atom_time(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else "2024-01-01T00:00:00Z"


def xmlfile_baseline(feed: Any, out: Any) -> int:
    """Every IntervalBlock as an Atom entry, built with SubElement and written with
    ``xmlfile`` one entry at a time: what any streaming lxml writer of these readings does."""
    from lxml import etree

    sub = etree.SubElement
    nsmap: Any = {None: A[1:-1], "espi": E[1:-1]}
    n = 0
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(A + "feed", nsmap=nsmap):
            for block in feed.interval_blocks:
                entry = etree.Element(A + "entry", nsmap=nsmap)
                sub(entry, A + "id").text = block.id
                for link in block.links:
                    sub(entry, A + "link", rel=link.rel, href=link.href)
                sub(entry, A + "title").text = block.title or "Interval Block"
                sub(entry, A + "published").text = atom_time(block.published)
                sub(entry, A + "updated").text = atom_time(block.updated)
                content = sub(sub(entry, A + "content"), E + "IntervalBlock")
                interval = sub(content, E + "interval")
                sub(interval, E + "duration").text = str(block.interval.duration)
                sub(interval, E + "start").text = str(block.interval.start)
                for r in block.readings:
                    el = sub(content, E + "IntervalReading")
                    if r.cost is not None:
                        sub(el, E + "cost").text = str(r.cost)
                    for q in r.qualities:
                        sub(sub(el, E + "ReadingQuality"), E + "quality").text = str(int(q))
                    if r.start is not None and r.duration is not None:
                        period = sub(el, E + "timePeriod")
                        sub(period, E + "duration").text = str(r.duration)
                        sub(period, E + "start").text = str(r.start)
                    for name, v in (("value", r.value), ("consumptionTier", r.consumption_tier),
                                    ("tou", r.tou), ("cpp", r.cpp)):  # fmt: skip
                        if v is not None:
                            sub(el, E + name).text = str(v)
                    n += 1
                xf.write(entry, pretty_print=True)
    return n


def text_loop(feed: Any, out: Any) -> int:
    """The same entries as text (f-strings, one line each): what writing costs without
    building anything, for reference."""
    n = 0
    out.write(f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="{A[1:-1]}" '
              f'xmlns:espi="{E[1:-1]}">\n'.encode())  # fmt: skip
    for block in feed.interval_blocks:
        links = "".join(f'<link rel="{lk.rel}" href="{lk.href}"/>' for lk in block.links)
        head = (f"<entry><id>{block.id}</id>{links}<title>{block.title or 'Interval Block'}"
                f"</title><published>{atom_time(block.published)}</published><updated>"
                f"{atom_time(block.updated)}</updated><content><espi:IntervalBlock><espi:interval>"
                f"<espi:duration>{block.interval.duration}</espi:duration><espi:start>"
                f"{block.interval.start}</espi:start></espi:interval>")  # fmt: skip
        rows = []
        for r in block.readings:
            qualities = "".join(f"<espi:ReadingQuality><espi:quality>{int(q)}</espi:quality>"
                                "</espi:ReadingQuality>" for q in r.qualities)  # fmt: skip
            rows.append(f"<espi:IntervalReading><espi:cost>{r.cost}</espi:cost>{qualities}"
                        f"<espi:timePeriod><espi:duration>{r.duration}</espi:duration><espi:start>"
                        f"{r.start}</espi:start></espi:timePeriod><espi:value>{r.value}"
                        "</espi:value></espi:IntervalReading>")  # fmt: skip
            n += 1
        out.write(f"{head}{''.join(rows)}</espi:IntervalBlock></content></entry>\n".encode())
    out.write(b"</feed>\n")
    return n


def espi_write(feed: Any, out: Any) -> int:
    import espi

    espi.write(feed, out)
    return sum(len(b.readings) for b in feed.interval_blocks)


def espi_dumps(feed: Any, out: Any) -> int:
    import espi

    out.write(espi.dumps(feed))
    return sum(len(b.readings) for b in feed.interval_blocks)


READERS = {
    "lxml children (baseline)": lxml_children,
    "lxml findtext": lxml_findtext,
    "espi.iter_readings": espi_iter_readings,
    "espi.parse": espi_parse,
}
WRITERS = {
    "lxml xmlfile (baseline)": xmlfile_baseline,
    "text loop (reference)": text_loop,
    "espi.write (streaming)": espi_write,
    "espi.dumps (in memory)": espi_dumps,
}


class Counting:
    """A binary sink that counts what it is given (written to nowhere)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def measure_here(method: str, path: str) -> None:
    """Run one method in this process; print its figures as JSON."""
    import warnings

    from lxml import etree  # noqa: F401

    import espi

    written = None
    if method in WRITERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", espi.EspiWarning)
            feed = espi.parse(path)
            espi.dumps(feed.interval_blocks[0])  # the schema's types: loaded once a process
        sink = Counting()
        before = status_mib("VmRSS")
        reset_peak()
        t0 = time.process_time()
        n = WRITERS[method](feed, sink)
        written = sink.size
    else:
        before = status_mib("VmRSS")
        reset_peak()
        t0 = time.process_time()
        n = READERS[method](path)
    cpu = time.process_time() - t0
    peak = status_mib("VmHWM")
    print(json.dumps({"readings": n, "cpu": cpu, "growth": max(0.0, peak - before),
                      "written": written}))  # fmt: skip


def measure(method: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", method, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def best_of(method: str, path: Path, repeat: int) -> dict[str, Any]:
    runs = [measure(method, path) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["cpu"])
    return {**best, "growth": max(r["growth"] for r in runs)}


def table(title: str, methods: list[str], path: Path, repeat: int) -> None:
    print(f"{title:<26}{'readings':>11}{'CPU s':>9}{'ratio':>8}{'RSS growth MiB':>16}"
          f"{'written MiB':>13}")  # fmt: skip
    base_cpu = None
    for method in methods:
        got = best_of(method, path, repeat)
        base_cpu = base_cpu or got["cpu"]
        written = f"{got['written'] / 2**20:>13.0f}" if got["written"] is not None else ""
        print(f"{method:<26}{got['readings']:>11,}{got['cpu']:>9.2f}"
              f"{got['cpu'] / base_cpu:>8.2f}{got['growth']:>16.1f}{written}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", default="1,20", help="feeds to generate, by meter count")
    parser.add_argument("--scales", default="1,2,4",
                        help="flat memory: the first feed's size times these")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("read", "write", "flat"), action="append",
                        help="run only these tables (default: all)")  # fmt: skip
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure_here(*args.one)
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(header())
    only = set(args.only or ("read", "write", "flat"))
    meters = [int(x) for x in args.meters.split(",")]
    for n in meters:
        path = year_feed(n)
        size = path.stat().st_size / 2**20
        print(f"\n{path.name}: {size:.0f} MiB, {n} meter(s), a year of 15-minute readings")
        if "read" in only:
            table("reading", list(READERS), path, args.repeat)
        if "write" in only:
            table("writing", list(WRITERS), path, args.repeat)
    if "flat" in only:
        scales = [int(x) for x in args.scales.split(",")]
        print(f"\nflat memory: espi.iter_readings at {', '.join(f'{s}x' for s in scales)} "
              f"the {meters[0]}-meter feed (best of {args.repeat})")  # fmt: skip
        print(f"{'feed':<26}{'readings':>11}{'CPU s':>9}{'us/reading':>12}{'RSS growth MiB':>16}")
        for scale in scales:
            path = year_feed(meters[0] * scale)
            got = best_of("espi.iter_readings", path, args.repeat)
            print(f"{f'{scale}x ({path.stat().st_size / 2**20:.0f} MiB)':<26}"
                  f"{got['readings']:>11,}{got['cpu']:>9.2f}"
                  f"{got['cpu'] / got['readings'] * 1e6:>12.2f}{got['growth']:>16.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
