"""Generate Green Button feeds of a chosen size for benchmarks and large-file tests.

A feed in the shape PG&E's Batch/Bulk answers have: per meter a UsagePoint, a ReadingType, a
MeterReading, then one IntervalBlock a day of 15-minute readings, each with cost and quality.
Indented as utilities' files usually are. Written as text, a day at a time, so generating the
170 MB twenty-meter year takes little memory.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

BASE = "https://api.example-utility.test/GreenButtonConnect/espi/1_1/resource"
START = 1_672_560_000  # 2023-01-01T08:00:00Z, local midnight in California


def entry(self_href: str, up_href: str, related: list[str], title: str, content: str) -> str:
    links = "".join(f'<link rel="related" href="{h}"/>' for h in related)
    return (
        f"<entry><id>urn:uuid:{abs(hash(self_href)):032x}</id>"
        f'<link rel="self" href="{self_href}"/><link rel="up" href="{up_href}"/>{links}'
        f"<title>{title}</title><published>2024-01-01T00:00:00Z</published>"
        f"<updated>2024-01-01T00:00:00Z</updated>"
        f'<content><{content.split(">", 1)[0][1:]} xmlns="http://naesb.org/espi"'
        f">{content.split('>', 1)[1]}</content></entry>\n"
    )


def write_feed(
    path: Path,
    meters: int = 1,
    days: int = 365,
    seed: int = 7,
    subscriptions: Sequence[int] = (1,),
    base: str = BASE,
) -> int:
    """Write the feed: ``meters`` meters of each subscription (customer), in the given order;
    return the number of IntervalReadings in it. A subscription's readings are the same in
    every feed written with the same seed, meters and days."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            "<id>urn:uuid:00000000-0000-0000-0000-000000000001</id>"
            f"<title>Bench feed</title><updated>2024-01-01T00:00:00Z</updated>"
            f'<link rel="self" href="{base}/Batch/Bulk/1"/>\n'
        )
        for sub in subscriptions:
            count += write_subscription(
                out, sub, meters, days, random.Random(seed + 1000 * (sub - 1)), base
            )
        out.write("</feed>\n")
    return count


def year_feed(meters: int) -> Path:
    """``bench/out/feed_{meters}m_1y_15min.xml``: ``meters`` meters, a year of 15-minute
    readings (generated the first time it is asked for)."""
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    path = out / f"feed_{meters}m_1y_15min.xml"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        write_feed(path, meters=meters, days=365)
    return path


def write_subscription(
    out: TextIO, sub: int, meters: int, days: int, rng: random.Random, base: str
) -> int:
    count = 0
    for meter in range(1, meters + 1):
        up = f"{base}/Subscription/{sub}/UsagePoint/{meter}"
        rt = f"{base}/ReadingType/{meter}"
        mr = f"{up}/MeterReading/1"
        out.write(
            entry(
                up,
                f"{base}/Subscription/{sub}/UsagePoint",
                [f"{up}/MeterReading", f"{up}/UsageSummary"],
                "Usage point",
                "<UsagePoint><ServiceCategory><kind>0</kind></ServiceCategory></UsagePoint>",
            )
        )
        out.write(
            entry(
                rt,
                f"{base}/ReadingType",
                [],
                "Reading type",
                "<ReadingType><accumulationBehaviour>4</accumulationBehaviour>"
                "<commodity>1</commodity><currency>840</currency>"
                "<dataQualifier>12</dataQualifier><flowDirection>1</flowDirection>"
                "<intervalLength>900</intervalLength><kind>12</kind>"
                "<powerOfTenMultiplier>0</powerOfTenMultiplier><uom>72</uom></ReadingType>",
            )
        )
        out.write(
            entry(
                mr,
                f"{up}/MeterReading",
                [f"{mr}/IntervalBlock", rt],
                "Meter reading",
                "<MeterReading></MeterReading>",
            )
        )
        for day in range(days):
            day_start = START + day * 86400
            rows = []
            for q in range(96):
                value = rng.randint(50, 900)
                rows.append(
                    f"  <IntervalReading>\n    <cost>{value * 31}</cost>\n"
                    f"    <ReadingQuality><quality>17</quality></ReadingQuality>\n"
                    f"    <timePeriod><duration>900</duration>"
                    f"<start>{day_start + q * 900}</start></timePeriod>\n"
                    f"    <value>{value}</value>\n  </IntervalReading>\n"
                )
            count += 96
            out.write(
                entry(
                    f"{mr}/IntervalBlock/{day + 1}",
                    f"{mr}/IntervalBlock",
                    [],
                    "",
                    f"<IntervalBlock><interval><duration>86400</duration>"
                    f"<start>{day_start}</start></interval>\n{''.join(rows)}</IntervalBlock>",
                )
            )
    return count
