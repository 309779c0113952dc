"""The dashboard in a real browser (issue 16), on SQLite and PostgreSQL: local time on DST days,
bills' charges as text, downloads bounded by local days, energy views that navigate, compare
and redraw at once, a legend that follows the pointer, solar imports/exports/net, two rate
plans beside the utility's cost, names people recognise, "Waiting for data" that follows the
data, uploads that explain; every page visited is checked at 390 px (no sideways scroll) and
with axe-core (no serious or critical violation), and screenshots of the main pages at both
widths go to ``test-artifacts/``."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.thirdparty.homes import FALL, LA, SPRING, home
from tests.thirdparty.test_browser import ARTIFACTS, CHROMIUM, DRIVER, WIDER, loaded_after, sign_in
from tests.thirdparty.test_flow import connect, wait, world  # noqa: F401 - the live custodian + third party

AXE = (
    Path(__file__).resolve().parents[2]
    / "thirdparty_app"
    / "frontend"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
TOU_C, TOU_D = (
    "66d811ce52c6fe40859130e8",
    "662955dff338bcedec0dbfe7",
)  # the WattShift stand-in's plans
pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver"
    ),
    pytest.mark.skipif(
        not AXE.exists(), reason="needs axe-core: run make (npm ci in thirdparty_app/frontend)"
    ),
]


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def homes(world, browser):  # noqa: F811
    """The world's customer with the Los Angeles home (two Marches and Novembers, the utility's
    costs, a bill), the solar home and the sandbox's first customer; the browser signed in."""
    customer = world["customer"]
    found = {}
    for key, doc in (
        ("home", home()),
        ("solar", home("Solar home", solar=True, year_before=False)),
    ):
        page = customer.upload(f"{key}.xml", doc).text
        found[key] = int(
            re.search(r'href="/usage-points/(\d+)"', page.split('id="upload-result"')[1]).group(1)
        )
        found[f"{key}-upload"] = page
    connect(world)
    sign_in(browser, world)
    return found


def ready(browser, points=None):
    """Wait for the usage point page's chart (with ``points`` bars, when given)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def drawn(b):
        n = b.execute_script(
            "return window.usageChart && document.getElementById('usage-chart').dataset.points"
        )
        return (
            n is not None
            and (points is None or int(n) == points)
            and not b.execute_script(
                "return document.getElementById('usage-chart').hasAttribute('aria-busy')"
            )
        )

    WebDriverWait(browser, 30).until(drawn)


def series(browser):
    return browser.execute_script("return window.usageChart.series.slice(1).map(s => s.label)")


def change(browser, element_id, value):
    """Set a control's value as a person would, and let the page hear it."""
    browser.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        " e.dispatchEvent(new Event('change', {bubbles: true}))",
        element_id,
        value,
    )


def clean(browser, name=None):
    """The page as it is, at 1280 and at 390 px: no sideways scroll at 390, no serious or critical
    axe-core violation, nothing failed to load (the favicon included); screenshots kept."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(exist_ok=True)
    try:
        for width, height in ((1280, 900), (390, 844)):
            browser.set_window_size(width, height)
            browser.execute_script("window.dispatchEvent(new Event('resize'))")
            if width == 390:  # charts follow the window's width (a resize redraws them)
                with contextlib.suppress(TimeoutException):
                    WebDriverWait(browser, 5).until(lambda b: not b.execute_script(WIDER))
                assert not browser.execute_script(WIDER), (
                    browser.current_url,
                    browser.execute_script(WIDER),
                )
            browser.execute_script(AXE.read_text() + "\n;window.axe = axe;")
            found = browser.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {resultTypes: ['violations']}).then("
                "  r => done(r.violations.filter(v => ['serious', 'critical'].includes(v.impact))"
                "    .map(v => [v.id, v.help, v.nodes.slice(0, 3).map(n => n.target.join(' '))])),"
                "  e => done([['axe failed', String(e), []]]))"
            )
            assert found == [], (browser.current_url, width, found)
            if name:
                full = browser.execute_script("return document.documentElement.scrollHeight")
                browser.set_window_size(width, min(max(height, full + 140), 6000))
                browser.save_screenshot(str(ARTIFACTS / f"{name}-{width}.png"))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        browser.set_window_size(1280, 900)


def test_bills_show_their_charges_as_text(world, browser, homes):  # noqa: F811
    """The Why: every bill's Charges cell showed <built-in method items of dict object>."""
    from selenium.webdriver.common.by import By

    browser.get(f"{world['t_base']}/usage-points/{homes['home']}")
    ready(browser)
    bills = browser.find_element(By.ID, "bills").text
    assert "Oct 1, 2026 – Oct 31, 2026" in bills and "$1,234.56" in bills
    for charge in (
        "Generation charges\n$800.12",
        "Delivery charges\n$400.00",
        "Taxes and fees\n$34.44",
    ):
        assert charge in bills or charge.replace("\n", " ") in bills, bills
    assert "built-in method" not in browser.page_source
    clean(browser, "usage-point")


@pytest.mark.parametrize(("day", "hours"), [(SPRING, 23), (FALL, 25)])
def test_a_dst_day_has_its_local_hours_and_downloads_are_bounded_by_local_days(
    world,  # noqa: F811
    browser,
    homes,
    day,
    hours,
):
    """The Why: the date picker was UTC (06/15-06/16 drew 6/14 6 pm to 6/16 5 pm), so were the
    downloads. A day is the usage point's local day, and its hours are the clock's."""
    import requests

    browser.get(f"{world['t_base']}/usage-points/{homes['home']}")
    ready(browser)
    on = f"{day:%Y-%m-%d}"
    browser.execute_script("document.getElementById('end').value = arguments[0]", on)
    browser.find_element("css selector", "label[for=view-day]").click()
    ready(browser, hours)
    starts = browser.execute_script("return window.usageData.starts")
    first, after = (
        int(day.timestamp()),
        int((day + timedelta(days=1)).replace(tzinfo=LA).timestamp()),
    )
    assert starts == list(range(first, after, 3600))  # zoneinfo's edges of the local hours
    assert browser.find_element("id", "period-label").text == f"{day:%b} {day.day}, {day:%Y}"
    legend = browser.find_element("css selector", ".u-legend").text
    assert "11:00 PM" in legend  # the last hour of the local day, named in local time
    link = browser.find_element("css selector", ".downloads a[data-format=csv]").get_attribute(
        "href"
    )
    assert f"start={on}" in link and f"end={on}" in link
    rows = world["customer"].get(link, timeout=30).text.splitlines()
    header, first_row, last_row = rows[0].split(","), rows[1].split(","), rows[-1].split(",")
    start = header.index("start")
    assert first_row[start] == f"{datetime.fromtimestamp(first, UTC):%Y-%m-%dT%H:%M:%SZ}"
    assert last_row[start] == f"{datetime.fromtimestamp(after - 900, UTC):%Y-%m-%dT%H:%M:%SZ}"
    assert len(rows) - 1 == hours * 4
    assert requests.get(link, timeout=30).status_code in (401, 302)  # and it is still the account's


def test_views_navigate_compare_and_redraw_at_once(world, browser, homes):  # noqa: F811
    """Daily, weekly, monthly bars with previous/next; compared with the previous period or the
    same dates last year; every control redraws at once (no Show button); kWh and dollars."""
    from selenium.webdriver.common.by import By

    browser.get(f"{world['t_base']}/usage-points/{homes['home']}")
    ready(browser, 7)  # the last week of data, a bar a day
    assert browser.find_element(By.ID, "start").get_attribute("value") == "2026-11-01"
    assert series(browser) == ["Used from the grid", "Previous period"]
    summary = browser.find_element(By.ID, "summary").text
    said = r"Used from the grid\n[\d,.]+ kWh\n(\d+% (more|less) than|the same as) the previous period \([\d,.]+ kWh\)"
    assert re.search(said, summary), summary
    browser.find_element(By.ID, "previous").click()
    ready(browser, 7)
    assert browser.find_element(By.ID, "start").get_attribute("value") == "2026-10-25"
    browser.find_element(By.ID, "next").click()
    ready(browser)
    assert browser.find_element(By.ID, "end").get_attribute("value") == "2026-11-07"
    change(browser, "compare", "year")  # no button: it redraws
    ready(browser)
    assert series(browser) == ["Used from the grid", "Same period last year"]
    assert "the same period last year" in browser.find_element(By.ID, "summary").text
    change(browser, "measure", "cost")
    ready(browser)
    assert series(browser)[0] == "Your utility's cost"
    assert re.search(
        r"Your utility's cost\n\$[\d,]+\.\d\d", browser.find_element(By.ID, "summary").text
    )
    browser.find_element(By.CSS_SELECTOR, "label[for=view-month]").click()
    ready(browser, 7)  # November 2026: the first week has readings
    assert (browser.find_element(By.ID, "start").get_attribute("value"),
            browser.find_element(By.ID, "end").get_attribute("value")) == ("2026-11-01", "2026-11-30")  # fmt: skip
    browser.find_element(By.CSS_SELECTOR, "label[for=view-year]").click()
    ready(browser)
    assert browser.find_element(By.ID, "aggregate").get_attribute("value") == "month"
    assert browser.execute_script(
        "return window.usageChart.series[1].paths != null"
    )  # bars, not a line
    assert (
        browser.execute_script("return window.usageData.starts.length") == 3
    )  # March, October, November
    change(browser, "measure", "value")
    ready(browser)
    assert "kWh" in browser.find_element(By.ID, "summary").text


def test_the_legend_shows_the_hovered_value_and_time(world, browser, homes):  # noqa: F811
    """The Why: the legend read "Time: --"."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(f"{world['t_base']}/usage-points/{homes['home']}")
    ready(browser, 7)
    legend = browser.find_element(By.CSS_SELECTOR, "#usage-chart .u-legend")
    assert (
        "Saturday, Nov 7, 2026" in legend.text and "--" not in legend.text
    )  # the last bar, unhovered
    over = browser.find_element(By.CSS_SELECTOR, "#usage-chart .u-over")
    width = over.size["width"]
    ActionChains(browser).move_to_element_with_offset(over, -width // 2 + width // 14, 0).perform()
    idx = browser.execute_script("return window.usageChart.cursor.idx")
    assert idx == 0
    value = browser.execute_script("return window.usageChart.data[1][0]")
    text = browser.find_element(By.CSS_SELECTOR, "#usage-chart .u-legend").text
    assert "Sunday, Nov 1, 2026" in text and f"{value:.1f} kWh" in text, text


def test_a_solar_home_shows_imports_exports_and_net(world, browser, homes):  # noqa: F811
    """The Why: the solar total ignored the energy sent to the grid."""
    from selenium.webdriver.common.by import By

    browser.get(f"{world['t_base']}/usage-points/{homes['solar']}")
    ready(browser, 7)
    assert series(browser) == ["Imported", "Exported", "Net", "Previous period"]
    totals = {e.get_attribute("data-total"): e.find_element(By.TAG_NAME, "dd").text.split("\n")[0]
              for e in browser.find_elements(By.CSS_SELECTOR, "#summary .stat")}  # fmt: skip

    def kwh(key):
        return float(totals[key].removesuffix(" kWh").replace(",", ""))

    assert kwh("kWh/forward") - kwh("kWh/reverse") == pytest.approx(kwh("kWh/net"), abs=1)
    assert kwh("kWh/reverse") == pytest.approx(
        7 * 5 * 4 * 0.3, abs=0.1
    )  # 300 Wh a quarter hour, 10 to 3


def add_plan(browser, plan):
    """On the rate plan page: the plans at ZIP 95313, ``plan`` chosen and added (each click
    waits for the page it loads)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    zipcode = browser.find_element(By.ID, "zip")
    zipcode.clear()
    zipcode.send_keys("95313")
    find = "form[aria-label='Find rate plans'] button"
    loaded_after(browser, lambda: browser.find_element(By.CSS_SELECTOR, find).click())
    Select(browser.find_element(By.ID, "plan")).select_by_value(plan)
    add = "form[aria-label='Add a rate plan'] button"
    loaded_after(browser, lambda: browser.find_element(By.CSS_SELECTOR, add).click())


def test_two_rate_plans_beside_the_utilitys_cost(world, browser, homes):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    t = world["t_base"]
    browser.get(f"{t}/usage-points/{homes['home']}")
    loaded_after(browser, lambda: browser.find_element(By.LINK_TEXT, "Compare rate plans").click())
    for plan in (TOU_C, TOU_D):
        add_plan(browser, plan)
        notice = text_of(browser, ".notice")
        assert "pricing your readings" in notice, text_of(browser, "main")

    def priced(b):  # the page fills in by itself (static/plans.js puts the plans in place anew)
        return (
            b.execute_script("return document.getElementById('plans').textContent").count(
                "readings priced"
            )
            == 2
        )

    WebDriverWait(browser, 90).until(priced)

    def comparison():  # read in one go: the page's poller may put the plans in place again
        return browser.execute_script(
            "const t = document.getElementById('comparison'), all = s => "
            "[...t.querySelectorAll(s)].map(e => e.innerText);"
            "return [all('thead th'), [...t.querySelectorAll('tbody tr')].map("
            "r => r.querySelector('td').innerText), all('tfoot td'), "
            "t.innerText, document.querySelector('.tou').innerText];"
        )

    heads, months, total, table, tou = comparison()
    assert heads[2:] == ["Your utility's cost", "Pacific Gas & Electric TOU-C\nestimate",
                         "Pacific Gas & Electric TOU-D\nestimate"]  # fmt: skip
    assert months == ["March 2026", "October 2026", "November 2026"]  # the last twelve months
    total = [text.split("\n")[0] for text in total]
    assert all(re.fullmatch(r"\$[\d,]+\.\d\d", m) for m in total[1:]), total
    assert "lowest of the plans" in table and "than your utility" in table
    assert "off-peak" in tou and "peak" in tou
    clean(browser, "comparison")


def newest_row(browser) -> tuple[str | None, str]:
    """The first row of the authorizations (the newest): its connection and text, in one go."""
    found = browser.execute_script(
        "const r = document.querySelector('#connections tbody tr');"
        "return r ? [r.dataset.connection, r.innerText] : [null, ''];"
    )
    return found[0], found[1]


def text_of(browser, css: str) -> str:
    """An element's text read in one go ("" while it is not there): a page's poller may draw
    it again between finding it and reading it."""
    found = browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
    )
    return str(found)


def test_names_and_waiting_for_data_that_follows_the_data(world, browser, homes):  # noqa: F811
    """The Why: four authorizations all read "Local sandbox (datacustodian)", three cards "Home
    electric"; "Waiting for data" never changed without a reload. The custodian is busy for a
    while (503 three times): the page shows each attempt and turns Active on its own."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    t = world["t_base"]
    # the custodian's next authorization is this connection's subscription: only its own
    # downloads fail (other connections' syncs and notifications may be under way)
    with world["custodian"].app_context():
        from sqlalchemy import func, select

        from appkit import database
        from datacustodian import db as dc

        subscription = (database.session().scalar(select(func.max(dc.Authorization.id))) or 0) + 1
    world["flaky"].fail(f"/Batch/Subscription/{subscription}?", 3)
    browser.get(t + "/")
    before = newest_row(browser)
    browser.find_element(By.CSS_SELECTOR, "form[action='/connect/local'] button").click()
    # back on the home page (the browser was there before the click: wait for the new row)
    WebDriverWait(browser, 30).until(lambda b: newest_row(b)[0] not in (None, before[0]))
    conn, newest = newest_row(browser)
    assert "Waiting for data" in newest
    row = f"#connections tr[data-connection='{conn}']"
    WebDriverWait(browser, 60).until(lambda b: "attempt" in text_of(b, row))
    WebDriverWait(browser, 90).until(lambda b: "Active" in text_of(b, row))
    text = text_of(browser, row)
    assert "Alice Sandbox · account ACCT-1000" in text and "electricity" in text
    cards = browser.find_element(By.ID, "usage-points").text
    assert "Alice Sandbox · account ACCT-1000" in cards
    status = world["customer"].get(f"{t}/connections/status", timeout=30).json()
    assert {c["id"]: c["status"] for c in status}[int(conn)] == "active"
    clean(browser, "home")
    browser.get(t + "/connections")
    clean(browser, "authorizations")
    browser.get(t + "/account")
    clean(browser)


def test_an_upload_explains_what_it_found(world, browser, homes):  # noqa: F811
    """The Why: library class names in the schema messages, SCE's '????????' title used as the
    usage point's name, no thousands separators."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    assert "5,376 readings in 1 usage point(s)" in homes["solar-upload"]  # thousands separated
    sce = (
        (DATA / "BulkSCEIntervalBlock.xml")
        .read_text()
        .replace("<title>Green Button Subscription Feed</title>", "<title>????????</title>")
    )
    source = ARTIFACTS / "sce-placeholder.xml"
    ARTIFACTS.mkdir(exist_ok=True)
    source.write_text(sce)
    browser.get(world["t_base"] + "/upload")
    clean(browser, "upload-form")
    # while the file is sent, the form says so (a large file took 10 s with no sign of life)
    browser.execute_script(
        "document.getElementById('upload-form').addEventListener('submit', e => e.preventDefault())"
    )
    browser.find_element(By.ID, "file").send_keys(str(source))
    button = browser.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]")
    button.click()
    assert button.text == "Uploading…" and not button.is_enabled()
    assert browser.find_element(By.ID, "sending").text.startswith("Sending the file (25 KB)")
    browser.get(world["t_base"] + "/upload")
    browser.find_element(By.ID, "file").send_keys(str(source))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]").click()
    result = WebDriverWait(browser, 60).until(
        ec.presence_of_element_located((By.ID, "upload-result"))
    )
    assert result.find_element(By.TAG_NAME, "a").text == "Electricity, usage point NB6WRU"
    problems = browser.find_element(By.ID, "schema-problems").text
    assert (
        "<espi:ServiceDeliveryPoint> is not allowed here as child 2 of <espi:UsagePoint>"
        in problems
    )
    assert "line 27 · /feed/entry[2]/content/espi:UsagePoint" in problems
    assert "ServiceCategory, status" in problems  # what was expected
    assert not re.search(
        r"<class|Xsd\w+\(|elementpath", browser.find_element(By.TAG_NAME, "main").text
    )
    clean(browser, "upload")
