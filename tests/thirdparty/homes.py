"""Green Button documents of made-up homes for the dashboard's tests: a home in Los Angeles
read every 15 minutes across both 2026 DST changes (and a year before, for comparisons), with
the utility's cost on each reading and a bill with its charges; a solar home that sends energy
to the grid."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import espi
from espi import builder

ZONE = "America/Los_Angeles"
LA = ZoneInfo(ZONE)
SPRING = datetime(2026, 3, 8, tzinfo=LA)  # 23 hours
FALL = datetime(2026, 11, 1, tzinfo=LA)  # 25 hours
#: the spans read: around both changes, and the same weeks a year before
SPANS = [
    (datetime(2025, 3, 1, tzinfo=LA), datetime(2025, 3, 15, tzinfo=LA)),
    (datetime(2025, 10, 25, tzinfo=LA), datetime(2025, 11, 8, tzinfo=LA)),
    (datetime(2026, 3, 1, tzinfo=LA), datetime(2026, 3, 15, tzinfo=LA)),
    (datetime(2026, 10, 25, tzinfo=LA), datetime(2026, 11, 8, tzinfo=LA)),
]
STEP = 900


def quarter_hours(start: datetime, end: datetime) -> list[int]:
    first, last = int(start.timestamp()), int(end.timestamp())
    return list(range(first, last, STEP))


def used(t: int) -> int:
    """Wh in the quarter hour starting at ``t``: more in the local evening."""
    hour = datetime.fromtimestamp(t, LA).hour
    return 150 + (450 if 17 <= hour < 21 else 0) + (t // STEP) % 7


def home(title: str = "Home electric", solar: bool = False, year_before: bool = True) -> bytes:
    """The Los Angeles home's document (``solar``: a second, reverse-flow meter reading)."""
    up = builder.usage_point(espi.ServiceKind.ELECTRICITY, local_time=ZONE, title=title)
    spans = SPANS if year_before else SPANS[2:]
    times = [t for a, b in spans for t in quarter_hours(a, b)]
    rt = builder.reading_type(
        espi.UnitSymbolKind.WH, interval_length=STEP, currency=espi.Currency.USD
    )
    # the utility's cost: 0.31 $/kWh (1/100000 $: Wh x 31)
    builder.meter_reading(up, rt, [(t, STEP, used(t), used(t) * 31) for t in times])
    if solar:
        sent = builder.reading_type(
            espi.UnitSymbolKind.WH, interval_length=STEP, flow=espi.FlowDirectionKind.REVERSE
        )
        noon = [
            (t, STEP, 300 if 10 <= datetime.fromtimestamp(t, LA).hour < 15 else 0) for t in times
        ]
        builder.meter_reading(up, sent, noon)
    start = datetime(2026, 10, 1, tzinfo=LA)
    builder.usage_summary(
        up, start=start, end=start + timedelta(days=31), bill=Decimal("1234.56"),
        consumption=3_980_000,
        line_items=[builder.line_item("Generation charges", "800.12"),
                    builder.line_item("Delivery charges", "400.00"),
                    builder.line_item("Taxes and fees", "34.44")],
    )  # fmt: skip
    return espi.dumps(builder.feed(up))
