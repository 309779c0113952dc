"""Benchmark: espi.iter_readings against plain lxml loops reading the same fields.

    python bench/bench_reader.py [--meters 1,20] [--repeat 3]

For each generated feed (a year of 15-minute readings per meter, with cost and quality), every
method runs in a fresh process, `--repeat` times; the table shows the best CPU time, its ratio
to the baseline measured in the same run, and how far resident memory grew while reading.

The baseline is the fastest plain lxml loop we know: iterparse on IntervalReading, the fields
read by walking children, each reading cleared and its earlier siblings deleted. The `findtext`
loop is the form most code uses, shown for reference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

E = "{http://naesb.org/espi}"


def status_mib(key: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MiB. VmHWM rather than ru_maxrss:
    ru_maxrss carries the parent's peak over exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


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


METHODS = {
    "lxml children (baseline)": lxml_children,
    "lxml findtext": lxml_findtext,
    "espi.iter_readings": espi_iter_readings,
    "espi.parse": espi_parse,
}


def measure_here(method: str, path: str) -> None:
    """Run one method in this process; print its figures as JSON."""
    from lxml import etree  # noqa: F401

    import espi  # noqa: F401 - imported before the first RSS reading, like lxml

    before = status_mib("VmRSS")
    t0 = time.process_time()
    n = METHODS[method](path)
    cpu = time.process_time() - t0
    peak = status_mib("VmHWM")
    print(json.dumps({"readings": n, "cpu": cpu, "growth": max(0.0, peak - before)}))


def measure(method: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", method, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", default="1,20", help="feeds to generate, by meter count")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--skip-parse-over",
        type=int,
        default=5,
        help="skip espi.parse (whole document in memory) above this many meters",
    )
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure_here(*args.one)
        return

    from feeds import write_feed

    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    for meters in (int(x) for x in args.meters.split(",")):
        path = out_dir / f"feed_{meters}m_1y_15min.xml"
        if not path.exists():
            print(f"generating {path.name} ...", file=sys.stderr)
            write_feed(path, meters=meters, days=365)
        size = path.stat().st_size / 2**20
        print(f"\n{path.name}: {size:.0f} MiB, {meters} meter(s), a year of 15-minute readings")
        print(f"{'method':<26}{'readings':>10}{'CPU s':>9}{'ratio':>8}{'RSS growth MiB':>16}")
        base_cpu = None
        for method in METHODS:
            if method == "espi.parse" and meters > args.skip_parse_over:
                continue
            runs = [measure(method, path) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["cpu"])
            growth = max(r["growth"] for r in runs)
            base_cpu = base_cpu or best["cpu"]
            print(
                f"{method:<26}{best['readings']:>10,}{best['cpu']:>9.2f}"
                f"{best['cpu'] / base_cpu:>8.2f}{growth:>16.1f}"
            )


if __name__ == "__main__":
    main()
