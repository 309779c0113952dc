"""A review of the usage point and rate plan pages in a real browser (headless Chromium), on
SQLite and PostgreSQL: cost bars span their periods, a compared period is placed by date, and
the rate plan page keeps the ZIP code, fills in by itself while a plan is priced, reuses the
WattShift home it made and says "the same as" for equal costs. Each test failed before its fix."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.thirdparty.homes import FALL, LA, home, used
from tests.thirdparty.test_browser import sign_in
from tests.thirdparty.test_dashboard import AXE, CHROMIUM, DRIVER, browser, change, ready  # noqa: F401
from tests.thirdparty.test_flow import world  # noqa: F401 - the live custodian + third party

pytestmark = [
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver"),
    pytest.mark.skipif(not AXE.exists(), reason="needs axe-core: run make (npm ci in thirdparty_app/frontend)"),
]
DAY = 86400


def upload(world, name, doc):  # noqa: F811
    """Upload a document as the world's customer: its usage point's id."""
    page = world["customer"].upload(f"{name}.xml", doc).text
    return int(re.search(r'href="/usage-points/(\d+)"', page.split('id="upload-result"')[1]).group(1))


@pytest.fixture(scope="module")
def pages(world, browser):  # noqa: F811
    """The world's customer with the Los Angeles home; the browser signed in."""
    found = {"home": upload(world, "home", home())}
    sign_in(browser, world)
    return found


def chart(browser):  # noqa: F811
    """The main chart as drawn: its series' labels, x values, x scale and the bars' periods."""
    return browser.execute_script(
        "const u = window.usageChart;"
        "return {labels: u.series.map(s => s.label), data: u.data, min: u.scales.x.min, max: u.scales.x.max,"
        " starts: window.usageData.starts, durations: window.usageData.durations}"
    )


def test_cost_bars_span_their_periods(world, browser, pages):  # noqa: F811
    """The Why: the cost series carried no period length, so each cost bar stood on its start
    with no width: the first and last half cut off, a lone bar none at all."""
    browser.get(f"{world['t_base']}/usage-points/{pages['home']}")
    ready(browser, 7)  # Nov 1 to 7, 2026: Nov 1 has 25 hours
    energy = chart(browser)
    nov1 = int(FALL.timestamp())
    assert energy["starts"][0] == nov1 and energy["durations"] == [25 * 3600] + [DAY] * 6
    change(browser, "measure", "cost")
    ready(browser, 7)
    cost = chart(browser)
    assert cost["labels"][1] == "Your utility's cost"
    assert cost["durations"] == energy["durations"]
    assert cost["data"][0] == [t + d / 2 for t, d in zip(cost["starts"], cost["durations"], strict=True)]
    assert (cost["min"], cost["max"]) == (nov1, int(datetime(2026, 11, 8, tzinfo=LA).timestamp()))
    browser.find_element("css selector", "label[for=view-year]").click()  # monthly bars
    ready(browser, 3)
    months = chart(browser)
    change(browser, "measure", "value")
    ready(browser, 3)
    assert months["durations"] == chart(browser)["durations"] == [14 * DAY - 3600, 7 * DAY, 7 * DAY + 3600]  # the days read
    assert months["max"] == months["starts"][-1] + months["durations"][-1]


def kwh(start: datetime, hours: int) -> float:
    """The Los Angeles home's energy in the ``hours`` from ``start``."""
    first = int(start.timestamp())
    return sum(used(t) for t in range(first, first + hours * 3600, 900)) / 1000


def compared(browser):  # noqa: F811
    """The compared period's values, as drawn beside the bars."""
    drawn = chart(browser)
    return next(values for label, values in zip(drawn["labels"], drawn["data"], strict=True)
                if label in ("Previous period", "Same period last year"))  # fmt: skip


def test_a_compared_period_is_placed_by_date(world, browser, pages):  # noqa: F811
    """The Why: the compared period's values were placed by their index, so on a 25-hour day
    every hour after 1 am showed the hour before's value a day earlier, and November's first
    week showed the last week of October (the first days of October have no readings)."""
    browser.get(f"{world['t_base']}/usage-points/{pages['home']}")
    ready(browser, 7)
    browser.execute_script("document.getElementById('end').value = '2026-11-01'")
    browser.find_element("css selector", "label[for=view-day]").click()
    ready(browser, 25)  # Nov 1, 2026 by the hour, beside Oct 31 (24 hours)
    hours = [datetime.fromtimestamp(t, LA) for t in chart(browser)["starts"]]
    before = [None if t.fold else kwh(datetime(2026, 10, 31, t.hour, tzinfo=LA), 1) for t in hours]
    assert compared(browser) == pytest.approx(before)  # 1 am given twice: the second has no match
    assert before[2] is None and compared(browser)[3] == pytest.approx(kwh(datetime(2026, 10, 31, 2, tzinfo=LA), 1))
    browser.execute_script("document.getElementById('end').value = '2026-11-07'")
    browser.find_element("css selector", "label[for=view-month]").click()
    ready(browser, 7)  # November 1 to 7, beside October 1 to 7: no readings then
    assert compared(browser) == [None] * 7
    change(browser, "compare", "year")
    ready(browser, 7)  # November 1 to 7, 2025, day by day
    days = [kwh(datetime(2025, 11, d, tzinfo=LA), 25 if d == 2 else 24) for d in range(1, 8)]
    assert compared(browser) == pytest.approx(days)
