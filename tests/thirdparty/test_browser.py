"""The pages in a real browser: headless Chromium (Debian's chromium + chromium-driver)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.thirdparty.test_flow import connect, world  # noqa: F401 - the live custodian + third party

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

#: elements that stick out of the window sideways (the page would scroll horizontally)
WIDER = """return document.documentElement.scrollWidth <= window.innerWidth ? [] :
  [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.scroll')))
  .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className).slice(0, 5)
  .concat(['page width ' + document.documentElement.scrollWidth])"""

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def loaded_after(browser, click, url: str = "") -> None:
    """Click, then wait for the page the click loads (not the one it was on: a form sent to
    the same address, a redirect back to it), at ``url`` when given."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("document.documentElement.dataset.left = 'yes'")
    click()
    WebDriverWait(browser, 60).until(
        lambda b: (
            b.execute_script(
                "return document.readyState === 'complete' && !document.documentElement.dataset.left"
            )
            and (not url or b.current_url == url)
        )
    )


def sign_in(browser, world, email: str = "first@example.com") -> None:  # noqa: F811
    """Sign the browser in to the third party as the world's customer (its own account)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.thirdparty.browsing import PASSWORD

    browser.get(world["t_base"] + "/login")
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    WebDriverWait(browser, 20).until(ec.url_to_be(world["t_base"] + "/"))


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,1000"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_usage_point_page_draws_the_chart(world, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    connect(world)
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(browser, world)
    link = WebDriverWait(browser, 20).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "a[href^='/usage-points/']"))
    )
    link.click()
    chart = WebDriverWait(browser, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#usage-chart .u-over"))
    )
    assert chart is not None
    freshness = browser.find_element(By.ID, "freshness").text
    assert freshness.startswith("Data up to ") and "gaps: none" in freshness
    points = int(browser.find_element(By.ID, "usage-chart").get_attribute("data-points"))
    assert points == 7  # the last week, a bar a day
    Select(browser.find_element(By.ID, "aggregate")).select_by_value("hour")  # redraws at once
    WebDriverWait(browser, 20).until(
        lambda b: int(b.find_element(By.ID, "usage-chart").get_attribute("data-points")) > 8
    )
    points = int(browser.find_element(By.ID, "usage-chart").get_attribute("data-points"))
    assert 6 * 24 <= points <= 8 * 24  # about a week of hourly totals
    assert (
        browser.execute_script("return window.usageChart.data[1].filter(v => v > 0).length") > 100
    )
    browser.save_screenshot(
        str(ARTIFACTS / f"usage-point-hourly-{world['t_base'].rsplit(':', 1)[1]}.png")
    )
    Select(browser.find_element(By.ID, "measure")).select_by_value("cost")
    WebDriverWait(browser, 20).until(
        lambda b: (
            b.execute_script("return window.usageChart.series[1].label") == "Your utility's cost"
        )
    )
    assert (
        browser.execute_script("return window.usageChart.data[1].filter(v => v > 0).length") > 100
    )
    Select(browser.find_element(By.ID, "measure")).select_by_value("value")
    Select(browser.find_element(By.ID, "aggregate")).select_by_value("day")
    WebDriverWait(browser, 20).until(
        lambda b: int(b.find_element(By.ID, "usage-chart").get_attribute("data-points")) <= 8
    )
    assert int(browser.find_element(By.ID, "usage-chart").get_attribute("data-points")) >= 6
    links = {a.get_attribute("data-format"): a.get_attribute("href")
             for a in browser.find_elements(By.CSS_SELECTOR, ".downloads a")}  # fmt: skip
    assert set(links) == {"csv", "json", "xml"} and all("start=" in href for href in links.values())
    browser.save_screenshot(
        str(ARTIFACTS / f"usage-point-daily-{world['t_base'].rsplit(':', 1)[1]}.png")
    )


def test_connect_login_approve_chart_export_disconnect(world, browser):  # noqa: F811
    """The whole click-through a newcomer makes, through the custodian's real login pages."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    sign_in(browser, world)
    browser.find_element(By.CSS_SELECTOR, "form[action='/connect/login'] button").click()
    wait.until(ec.presence_of_element_located((By.ID, "username"))).send_keys("carol")
    browser.find_element(By.ID, "password").send_keys("sandbox-carol")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    approve = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[value=approve]")))
    browser.save_screenshot(str(ARTIFACTS / "consent.png"))
    approve.click()
    wait.until(ec.url_to_be(world["t_base"] + "/"))

    def carol_is_in(b):
        b.refresh()
        return any(
            "Active" in row.text and "login" in row.text
            for row in b.find_elements(By.CSS_SELECTOR, "tbody tr")
        )

    wait.until(carol_is_in)
    links = browser.find_elements(By.CSS_SELECTOR, "a[href^='/usage-points/']")
    links[-1].click()  # carol's solar usage point, the newest
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#usage-chart .u-over")))
    series = browser.execute_script("return window.usageChart.series.slice(1).map(s => s.label)")
    assert series == ["Imported", "Exported", "Net", "Previous period"]
    browser.save_screenshot(str(ARTIFACTS / "solar.png"))
    csv_link = browser.find_element(By.CSS_SELECTOR, ".downloads a[data-format=csv]").get_attribute(
        "href"
    )
    exported = world["customer"].get(csv_link, timeout=30)  # the same account, by requests
    assert exported.status_code == 200 and exported.text.startswith(
        "usage_point,reading_type,start"
    )
    browser.get(world["t_base"] + "/")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if "login" in r.text)
    loaded_after(browser, lambda: row.find_element(By.LINK_TEXT, "Disconnect").click())
    wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "main form button[type=submit]"))
    ).click()
    assert (
        "disconnected" in wait.until(ec.presence_of_element_located((By.CLASS_NAME, "notice"))).text
    )
    reloaded = WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException])
    reloaded.until(
        lambda b: any(
            "login" in r.text and "Revoked" in r.text
            for r in b.find_elements(By.CSS_SELECTOR, "tbody tr")
        )
    )


def test_upload_a_green_button_file(world, browser, sample):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in(browser, world)
    browser.get(world["t_base"] + "/upload")
    browser.find_element(By.ID, "file").send_keys(str(sample("BulkSCEIntervalBlock.xml")))
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    result = WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.ID, "upload-result"))
    )
    assert result.text.startswith("97 readings in 1 usage point(s).")
    findings = browser.find_element(By.TAG_NAME, "main").text
    assert "ServiceDeliveryPoint" in findings  # the schema problem of this SCE file
    assert "legacy element name" in findings  # and what the reader tolerated
    browser.save_screenshot(str(ARTIFACTS / "upload.png"))
    result.find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#usage-chart .u-over"))
    )


def test_pelm_connect_to_a_chart_on_a_phone_sized_window(world, browser):  # noqa: F811
    """Connect via Pelm in the browser (the fake's Connect page stands in for the widget), then
    the account's chart, at a phone's width: the page must not scroll sideways."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(browser, world)
    browser.find_element(By.XPATH, "//button[text()='Connect via Pelm']").click()
    wait.until(ec.presence_of_element_located((By.ID, "username"))).send_keys("customer")
    browser.find_element(By.ID, "password").send_keys("sandbox")
    browser.find_element(By.CSS_SELECTOR, "input[name=terms]").click()
    browser.save_screenshot(str(ARTIFACTS / "pelm-connect.png"))
    browser.find_element(By.CSS_SELECTOR, "button[value=connect]").click()
    wait.until(ec.url_to_be(world["t_base"] + "/"))

    def pelm_is_active(b):
        b.refresh()
        return any(
            "Pelm" in r.text and "Active" in r.text
            for r in b.find_elements(By.CSS_SELECTOR, "tbody tr")
        )

    wait.until(pelm_is_active)
    browser.set_window_size(390, 844)
    try:
        browser.save_screenshot(str(ARTIFACTS / "home-phone.png"))
        assert not browser.execute_script(WIDER), browser.execute_script(WIDER)
        link = next(
            a
            for a in browser.find_elements(By.CSS_SELECTOR, "a[href^='/usage-points/']")
            if "(electric)" in a.text
        )
        link.click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#usage-chart .u-over")))
        from selenium.webdriver.support.ui import Select

        Select(browser.find_element(By.ID, "aggregate")).select_by_value("hour")
        wait.until(
            lambda b: int(b.find_element(By.ID, "usage-chart").get_attribute("data-points")) > 24
        )
        assert (
            browser.execute_script("return window.usageChart.data[1].filter(v => v > 0).length")
            > 24
        )
        browser.save_screenshot(str(ARTIFACTS / "pelm-phone.png"))
        labels = browser.execute_script(
            "return window.usageChart.series.slice(1).map(s => s.label)"
        )
        assert labels == ["Used from the grid", "Previous period"]
        # a second unit never hides the first: it has a chart of its own
        assert (
            browser.find_element(By.CSS_SELECTOR, "#unit-charts h3").text == "Emissions (kg CO₂e)"
        )
        # keyboard zoom and pan
        from selenium.webdriver.common.keys import Keys

        span = "return [window.usageChart.scales.x.min, window.usageChart.scales.x.max]"
        chart = browser.find_element(By.ID, "usage-chart")
        before = browser.execute_script(span)
        chart.send_keys("+")
        zoomed = browser.execute_script(span)
        assert zoomed[1] - zoomed[0] < before[1] - before[0]
        chart.send_keys(Keys.ARROW_LEFT)
        panned = browser.execute_script(span)
        assert panned[0] < zoomed[0] and panned[1] - panned[0] == pytest.approx(
            zoomed[1] - zoomed[0]
        )
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"
        )
    finally:
        browser.set_window_size(1200, 1000)


def test_wattzon_and_griddy_connect_pages_in_a_phone_sized_window(world, browser):  # noqa: F811
    """WattzOn's two steps (ZIP, then utility and credentials) and Griddy's sign-in, filled in
    at a phone's width: usable, labelled, no sideways scrolling; both connections turn active."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 60)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.set_window_size(390, 844)
    try:
        sign_in(browser, world)
        loaded_after(browser, lambda: browser.find_element(
            By.PARTIAL_LINK_TEXT, "Connect via WattzOn").click())  # fmt: skip
        browser.find_element(By.ID, "zip").send_keys("00007")
        browser.find_element(By.CSS_SELECTOR, "main form button").click()
        Select(wait.until(ec.presence_of_element_located((By.ID, "utility")))).select_by_value(
            "3150"
        )
        browser.find_element(By.ID, "username").send_keys("customer")
        browser.find_element(By.ID, "password").send_keys("utility-password")
        assert not browser.execute_script(WIDER), browser.execute_script(WIDER)
        browser.save_screenshot(str(ARTIFACTS / "wattzon-connect-phone.png"))
        browser.find_element(By.CSS_SELECTOR, "main form button").click()
        wait.until(ec.url_to_be(world["t_base"] + "/"))
        loaded_after(
            browser, lambda: browser.find_element(By.LINK_TEXT, "Connect via Griddy").click()
        )
        browser.find_element(By.ID, "email").send_keys("jane.doe@example.com")
        browser.find_element(By.ID, "password").send_keys("Password123")
        assert not browser.execute_script(WIDER), browser.execute_script(WIDER)
        browser.save_screenshot(str(ARTIFACTS / "griddy-connect-phone.png"))
        browser.find_element(By.CSS_SELECTOR, "main form button").click()
        wait.until(ec.url_to_be(world["t_base"] + "/"))

        def both_active(b):
            b.get(world["t_base"] + "/connections")
            rows = [r.text for r in b.find_elements(By.CSS_SELECTOR, "tbody tr")]
            return all(
                any(name in r and "Active" in r for r in rows) for name in ("WattzOn", "Griddy")
            )

        wait.until(both_active)
        browser.save_screenshot(str(ARTIFACTS / "connections-phone.png"))
        # Griddy's prices are a price, on a chart of their own (they were "used from the grid
        # (money)", drawn on the energy's axis)
        browser.get(world["t_base"] + "/")
        next(
            a
            for a in browser.find_elements(By.CSS_SELECTOR, "#usage-points a")
            if a.text.startswith("Griddy")
        ).click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#unit-charts h3")))
        assert browser.find_element(By.CSS_SELECTOR, "#unit-charts h3").text == "Price ($/kWh)"
        assert (
            browser.execute_script("return window.usageChart.series[1].label")
            == "Used from the grid"
        )
    finally:
        browser.set_window_size(1200, 1000)


def test_a_new_customer_signs_up_connects_uses_a_key_and_deletes_the_data(world, browser):  # noqa: F811
    """Sign up, connect, see only one's own data, make an API key and use it with requests,
    delete the source's data; a second customer in the same run sees none of the first's."""
    import re

    import requests
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.thirdparty.browsing import PASSWORD

    t = world["t_base"]
    wait = WebDriverWait(browser, 60)
    ARTIFACTS.mkdir(exist_ok=True)

    def sign_up(email, name):
        browser.delete_all_cookies()
        browser.get(t + "/")
        assert browser.current_url.startswith(t + "/login")  # nothing to see without an account
        loaded_after(
            browser, lambda: browser.find_element(By.LINK_TEXT, "Create an account").click()
        )
        browser.find_element(By.ID, "name").send_keys(name)
        browser.find_element(By.ID, "email").send_keys(email)
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.save_screenshot(str(ARTIFACTS / "signup.png"))
        browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        wait.until(ec.url_to_be(t + "/"))

    def own_usage_points():
        browser.get(t + "/")
        return {a.get_attribute("href").rsplit("/", 1)[1]
                for a in browser.find_elements(By.CSS_SELECTOR, "a[href^='/usage-points/']")}  # fmt: skip

    sign_up("dana@example.com", "Dana")
    connect = "//button[starts-with(text(), 'Connect Local sandbox')]"  # on the home page
    loaded_after(browser, lambda: browser.find_element(By.XPATH, connect).click(), t + "/")
    wait.until(lambda b: own_usage_points())
    mine = own_usage_points()
    loaded_after(browser, lambda: browser.find_element(By.LINK_TEXT, "Account").click())
    browser.find_element(By.ID, "key-name").send_keys("Dana's spreadsheet")
    browser.find_element(By.CSS_SELECTOR, "form[aria-label='Make an API key'] button").click()
    key = wait.until(ec.presence_of_element_located((By.ID, "new-key"))).text
    browser.save_screenshot(str(ARTIFACTS / "account-key.png"))
    api = requests.get(
        f"{t}/api/usage-points", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert {str(u["id"]) for u in api.json()} == mine

    sign_up("eli@example.com", "Eli")  # a second customer: none of Dana's data
    assert own_usage_points() == set()
    assert "No authorization yet" in browser.find_element(By.TAG_NAME, "main").text
    browser.get(f"{t}/usage-points/{next(iter(mine))}")
    assert "Page not found" in browser.find_element(By.TAG_NAME, "h1").text

    browser.delete_all_cookies()
    sign_in(browser, world, "dana@example.com")
    browser.get(t + "/connections")
    loaded_after(browser, lambda: browser.find_element(By.LINK_TEXT, "Disconnect").click())
    browser.find_element(By.NAME, "delete_data").click()
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    notice = wait.until(ec.presence_of_element_located((By.CLASS_NAME, "notice"))).text
    assert re.search(r"its data was deleted", notice), notice
    browser.save_screenshot(str(ARTIFACTS / "deleted.png"))
    assert own_usage_points() == set()
    assert requests.get(f"{t}/api/usage-points", headers={"Authorization": f"Bearer {key}"},
                        timeout=30).json() == []  # fmt: skip
