"""A review of the usage point and rate plan pages in a real browser (headless Chromium), on
SQLite and PostgreSQL: cost bars span their periods, a compared period is placed by date, and
the rate plan page keeps the ZIP code, fills in by itself while a plan is priced, reuses the
WattShift home it made and says "the same as" for equal costs. Each test failed before its fix."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import select

import espi
from espi import builder
from fakes import wattshift as fake_wattshift
from fakes.common import Fault, faults
from tests.thirdparty.browsing import Person
from tests.thirdparty.homes import FALL, LA, SPANS, STEP, ZONE, home, quarter_hours, used
from tests.thirdparty.test_browser import sign_in
from tests.thirdparty.test_dashboard import (  # noqa: F401
    AXE,
    CHROMIUM,
    DRIVER,
    TOU_C,
    TOU_D,
    add_plan,
    browser,
    change,
    clean,
    ready,
)
from tests.thirdparty.test_flow import wait, world  # noqa: F401 - the live custodian + third party

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver"
    ),
    pytest.mark.skipif(
        not AXE.exists(), reason="needs axe-core: run make (npm ci in thirdparty_app/frontend)"
    ),
]
DAY = 86400


def matched(title: str = "Matched home") -> bytes:
    """A home whose utility charged what TOU-C would (0.52 $/kWh from 4 to 9 pm, 0.38 else),
    but for one reading on Nov 3, 2026: 0.3 cent more. Its last two weeks of 2026."""
    up = builder.usage_point(espi.ServiceKind.ELECTRICITY, local_time=ZONE, title=title)
    rt = builder.reading_type(
        espi.UnitSymbolKind.WH, interval_length=STEP, currency=espi.Currency.USD
    )
    odd = int(datetime(2026, 11, 3, 12, tzinfo=LA).timestamp())

    def cost(t: int) -> int:  # 1/100000 $: Wh x $/kWh x 100
        price = 52 if 16 <= datetime.fromtimestamp(t, LA).hour < 21 else 38
        return used(t) * price + (300 if t == odd else 0)

    builder.meter_reading(up, rt, [(t, STEP, used(t), cost(t)) for t in quarter_hours(*SPANS[-1])])
    return espi.dumps(builder.feed(up))


def upload(world, name, doc):  # noqa: F811
    """Upload a document as the world's customer: its usage point's id."""
    page = world["customer"].upload(f"{name}.xml", doc).text
    return int(
        re.search(r'href="/usage-points/(\d+)"', page.split('id="upload-result"')[1]).group(1)
    )


@pytest.fixture(scope="module")
def pages(world, browser):  # noqa: F811
    """The world's customer with the Los Angeles home, a home that pays what TOU-C would and
    a copy of it; the browser signed in."""
    found = {name: upload(world, name, doc) for name, doc in
             (("home", home()), ("matched", matched()), ("small", matched("Small home")))}  # fmt: skip
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
    assert cost["data"][0] == [
        t + d / 2 for t, d in zip(cost["starts"], cost["durations"], strict=True)
    ]
    assert (cost["min"], cost["max"]) == (nov1, int(datetime(2026, 11, 8, tzinfo=LA).timestamp()))
    browser.find_element("css selector", "label[for=view-year]").click()  # monthly bars
    ready(browser, 3)
    months = chart(browser)
    change(browser, "measure", "value")
    ready(browser, 3)
    assert (
        months["durations"]
        == chart(browser)["durations"]
        == [14 * DAY - 3600, 7 * DAY, 7 * DAY + 3600]
    )  # the days read
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
    assert before[2] is None and compared(browser)[3] == pytest.approx(
        kwh(datetime(2026, 10, 31, 2, tzinfo=LA), 1)
    )
    browser.execute_script("document.getElementById('end').value = '2026-11-07'")
    browser.find_element("css selector", "label[for=view-month]").click()
    ready(browser, 7)  # November 1 to 7, beside October 1 to 7: no readings then
    assert compared(browser) == [None] * 7
    change(browser, "compare", "year")
    ready(browser, 7)  # November 1 to 7, 2025, day by day
    days = [kwh(datetime(2025, 11, d, tzinfo=LA), 25 if d == 2 else 24) for d in range(1, 8)]
    assert compared(browser) == pytest.approx(days)


def test_an_added_plan_keeps_the_zip_code_and_fills_in_by_itself(world, browser, pages):  # noqa: F811
    """The Why: after adding a plan the page came back without the ZIP code typed (to add
    another, type it again), and its comparison stayed "pricing…" until reloaded by hand."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    t = world["t_base"]
    browser.get(f"{t}/usage-points/{pages['home']}/compare?start=2026-10-01&end=2026-11-30")
    faults(world["wattshift"].app).add(*[Fault(status=0, delay=0.5)] * 10)  # WattShift is slow
    add_plan(browser, TOU_D)
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CLASS_NAME, "notice"))
    assert browser.find_element(By.ID, "zip").get_attribute("value") == "95313"
    assert browser.find_elements(
        By.CSS_SELECTOR, f"#plan option[value='{TOU_C}']"
    )  # the plans there, to add
    assert (browser.find_element(By.ID, "start").get_attribute("value"),
            browser.find_element(By.ID, "end").get_attribute("value")) == ("2026-10-01", "2026-11-30")  # fmt: skip
    assert "pricing…" in browser.find_element(By.ID, "plans").text
    browser.execute_script("window.notReloaded = true")
    plans = "return document.getElementById('plans').textContent"  # the list is put in place anew
    WebDriverWait(browser, 60).until(lambda b: "readings priced" in b.execute_script(plans))
    total = browser.find_element(By.CSS_SELECTOR, "#comparison tfoot td[data-column^='plan-']").text
    assert re.match(r"\$[\d,]+\.\d\d\n\$[\d,]+\.\d\d (more|less) than your utility", total), total
    assert browser.execute_script("return window.notReloaded === true")  # shown without a reload
    clean(browser)
    status = f"{t}/usage-points/{pages['home']}/pricing/status"
    assert [p["status"] for p in world["customer"].get(status, timeout=30).json()] == ["priced"]
    assert Person.sign_up(t).get(status, timeout=30).status_code == 404  # another's usage point


def test_a_plan_removed_and_added_again_keeps_its_wattshift_home(world, pages):  # noqa: F811
    """The Why: each time a plan was added again after its removal, a new home was made at
    WattShift (homes cannot be deleted there: they piled up)."""
    t, customer, up = world["t_base"], world["customer"], pages["small"]
    homes = fake_wattshift.state(world["wattshift"].app).homes
    made = len(homes)

    def plan_id():
        page = customer.get(f"{t}/usage-points/{up}/compare", timeout=30).text
        found = re.search(
            r'name="plan" value="(\d+)">(?:<input [^>]*>)*<button[^>]*aria-label="Remove [^"]*TOU-C"',
            page,
        )
        return found and found.group(1)

    customer.post(
        f"{t}/usage-points/{up}/pricing", data={"zip": "95313", "plan": TOU_C}, timeout=60
    )
    assert len(homes) == made + 1 and plan_id()
    home_id = next(h["id"] for h in list(homes.values())[made:])
    removed = customer.post(
        f"{t}/usage-points/{up}/pricing/remove", data={"plan": plan_id()}, timeout=60
    )
    assert "was removed from the comparison" in removed.text and plan_id() is None
    again = customer.post(
        f"{t}/usage-points/{up}/pricing", data={"zip": "95313", "plan": TOU_C}, timeout=60
    )
    assert "pricing your readings" in again.text and plan_id()
    assert len(homes) == made + 1  # the same home, priced again
    with world["third"].app_context():
        from appkit import database
        from thirdparty_app import db as tp

        plans = (
            database.session()
            .scalars(select(tp.RatePlan).where(tp.RatePlan.usage_point_id == up))
            .all()
        )
        assert home_id in {p.home_id for p in plans}
        database.close_session(None)


def test_equal_costs_read_the_same_as_the_utilitys(world, browser, pages):  # noqa: F811
    """The Why: a plan costing what the utility charged (to the cent) read "$0.00 less than
    your utility" on both pages."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    t, up = world["t_base"], pages["matched"]
    world["customer"].post(
        f"{t}/usage-points/{up}/pricing", data={"zip": "95313", "plan": TOU_C}, timeout=60
    )
    wait(
        lambda: (
            "readings priced"
            in world["customer"].get(f"{t}/usage-points/{up}/compare", timeout=30).text
        ),
        90,
    )
    browser.get(f"{t}/usage-points/{up}/compare")
    total = browser.find_element(By.CSS_SELECTOR, "#comparison tfoot td[data-column^='plan-']").text
    utility = browser.find_element(
        By.CSS_SELECTOR, "#comparison tfoot td[data-column=utility]"
    ).text
    assert total == f"{utility}\nthe same as your utility", (total, utility)
    browser.get(f"{t}/usage-points/{up}")
    ready(browser, 7)
    change(browser, "measure", "cost")
    ready(browser, 7)
    plan = (
        WebDriverWait(browser, 10)
        .until(
            lambda b: b.find_elements(
                By.CSS_SELECTOR, "#summary .stat[data-total^='money/plan-'] dd"
            )
        )[0]
        .text
    )
    assert "the same as your utility's cost" in plan.split("\n") and "$0.00" not in plan, plan
