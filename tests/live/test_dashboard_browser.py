"""The dashboard as a person uses it: headless Chromium, driven by selenium, against a real engine (in
process, uvicorn on a free port). A viewer's key sees the makers table and no controls at all; a
trader's key starts a paper maker from the page, watches its fills rise and stops it from the page.
The screenshot of a running maker selected goes to test-artifacts/dashboard.png (docs/img/dashboard.png is
a copy of one, committed; a test run never changes the tree)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit import served

from quotewise.live.server import create_app
from quotewise.live.store import Store, db_url

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')"
)
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard.png"
TOKEN = "dashboard-test-token"
WAIT_S = 20.0
CONTROLS = ("start-form", "maker-controls", "start", "stop", "halt", "flatten", "resume", "configure")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver; "
    ".ci/run does it in CI)",
)


class Engine:
    def __init__(self, url: str, app, keys: dict[str, str]) -> None:
        self.url, self.app, self.keys = url, app, keys


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[Engine]:
    """A real engine with /stream and the dashboard, and a paper maker already running (the admin's)."""
    from quotewise.live.dashboard import add_dashboard_routes
    from quotewise.live.stream import add_stream_route

    home = tmp_path_factory.mktemp("dashboard")
    store = Store(db_url(str(home / "state.db")))
    keys = {"ann": store.add_api_key("ann", "viewer"), "bob": store.add_api_key("bob", "trader")}
    app = create_app(store, TOKEN)
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/stream" not in paths:  # until server.py registers them itself
        add_stream_route(app, app.state.engine)
    if "/" not in paths:
        add_dashboard_routes(app)
    import httpx

    try:
        with served(app, wait_s=WAIT_S) as url:
            started = httpx.post(
                f"{url}/maker/start",
                json={"data": "synthetic:3000000", "speed": 20, "spread": "2ticks", "name": "admin-mm"},
                headers={"Authorization": f"Bearer {TOKEN}", "X-Actor": "ops"},
                timeout=WAIT_S,
            )
            assert started.status_code == 200, started.text
            yield Engine(url, app, keys)
    finally:
        store.close()


@pytest.fixture
def browser(tmp_path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1150",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(
            service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options
        )
    except WebDriverException as exc:  # a chromedriver that does not match the browser, say
        pytest.skip(f"chromium could not be started by chromedriver: {exc.msg}")
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, check, what: str, timeout: float = WAIT_S):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: check(d))
    except Exception as exc:
        logs = "\n".join(str(e) for e in driver.get_log("browser")) if hasattr(driver, "get_log") else ""
        raise AssertionError(f"timed out waiting for {what}; browser log:\n{logs}") from exc


def sign_in(driver, engine: Engine, name: str) -> None:
    driver.get(engine.url)
    driver.find_element(By.ID, "key").send_keys(engine.keys[name])
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait(driver, lambda d: d.find_element(By.ID, "main").is_displayed(), "the dashboard after signing in")
    wait(driver, lambda d: d.find_element(By.ID, "link").text == "live", "the /stream link")


def row(driver, maker_id: str):
    found = driver.find_elements(By.CSS_SELECTOR, f'#makers tbody tr[data-id="{maker_id}"]')
    return found[0] if found else None


def cell(driver, maker_id: str, name: str) -> str:
    tr = row(driver, maker_id)
    return "" if tr is None else tr.find_element(By.CSS_SELECTOR, f"td.{name}").text


def test_a_viewer_sees_the_makers_and_no_controls(engine, browser):
    sign_in(browser, engine, "ann")
    assert browser.find_element(By.ID, "who").text == "ann (viewer)"
    wait(browser, lambda d: row(d, "admin-mm") is not None, "the running maker's row")
    wait(browser, lambda d: cell(d, "admin-mm", "status") == "running", "its status")
    assert cell(browser, "admin-mm", "market") == "SYNTH"
    # the engine's loop load, read with the table (every 5 s) once a maker has run a second
    load = wait(browser, lambda d: d.find_element(By.ID, "load").is_displayed(), "the loop's load")
    assert load and re.fullmatch(r"loop \d+% busy", browser.find_element(By.ID, "load").text)
    assert "ms late (last 10 s)" in browser.find_element(By.ID, "load").get_attribute("title")
    light = row(browser, "admin-mm").find_element(By.CSS_SELECTOR, "td.risk span")
    assert light.get_attribute("class") == "light green" and light.get_attribute("title") == "ok"
    row(browser, "admin-mm").click()
    wait(browser, lambda d: d.find_element(By.ID, "detail").is_displayed(), "the maker's detail")
    for control in CONTROLS:
        assert browser.find_elements(By.ID, control) == [], f"a viewer is shown #{control}"
    shown = [b.get_attribute("id") for b in browser.find_elements(By.TAG_NAME, "button") if b.is_displayed()]
    assert shown == ["logout"]
    # the key stays in this tab only, never in a cookie or localStorage
    assert browser.execute_script("return sessionStorage.getItem('quotewise.key')") == engine.keys["ann"]
    assert browser.execute_script("return localStorage.length") == 0 and browser.get_cookies() == []


def test_a_trader_starts_watches_and_stops_a_maker_from_the_page(engine, browser):
    sign_in(browser, engine, "bob")
    assert browser.find_element(By.ID, "who").text == "bob (trader)"
    form = browser.find_element(By.ID, "start-form")
    for name, value in (("data", "synthetic:3000000"), ("speed", "20"), ("spread", "1tick")):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    browser.find_element(By.ID, "start").click()
    said = wait(browser, lambda d: d.find_element(By.ID, "message").text.startswith("started "), "the start")
    assert said
    maker_id = browser.find_element(By.ID, "message").text.removeprefix("started ")
    wait(browser, lambda d: row(d, maker_id) is not None, "the new maker's row")
    wait(browser, lambda d: d.find_element(By.ID, "d-id").text == maker_id, "the new maker selected")

    def fills() -> int:
        text = cell(browser, maker_id, "fills")
        return int(text) if text.isdigit() else 0

    wait(browser, lambda d: fills() > 0, "its first fills")
    first = fills()
    wait(browser, lambda d: fills() > first, "its fills to rise")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#quotes tbody tr")) > 0, "our quotes")
    wait(
        browser,
        lambda d: any("start" in li.text for li in d.find_elements(By.CSS_SELECTOR, "#events li")),
        "the audit of its start",
    )
    assert browser.find_element(By.ID, "stop").is_displayed()
    time.sleep(4)  # a few seconds of inventory and P&L on the curves for the screenshot
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))

    def light() -> str:
        tr = row(browser, maker_id)
        return "" if tr is None else tr.find_element(By.CSS_SELECTOR, "td.risk span").get_attribute("title")

    browser.find_element(By.ID, "halt").click()
    wait(browser, lambda d: light() == "halted", "the red light of a halted maker")
    assert "red" in browser.find_element(By.ID, "d-light").get_attribute("class")
    wait(browser, lambda d: d.find_element(By.ID, "resume").is_enabled(), "resume offered")
    browser.find_element(By.ID, "resume").click()
    wait(browser, lambda d: light() == "ok", "the green light again")
    spread = browser.find_element(By.CSS_SELECTOR, "#config-form input[name=spread]")
    spread.send_keys("3ticks")
    browser.find_element(By.ID, "configure").click()
    wait(
        browser,
        lambda d: d.find_element(By.ID, "message").text == f"spread of {maker_id}: done",
        "the config",
    )
    assert engine.app.state.engine.status(maker_id)["config"]["params"]["spread"] == "3ticks"
    actions = [r["action"] for r in engine.app.state.engine.store.audit_rows(maker_id)]
    assert actions[-3:] == ["halt", "resume_quoting", "config"]

    browser.find_element(By.ID, "stop").click()
    wait(browser, lambda d: cell(d, maker_id, "status") == "stopped", "the maker stopped")
    assert browser.find_element(By.ID, "message").text == f"stop {maker_id}: done"
    stored = engine.app.state.engine.store.maker(maker_id)
    assert stored.status == "stopped" and engine.app.state.engine.store.maker_owner(maker_id) == "bob"


def test_with_engine_workers_the_load_is_the_busiest_loops_and_each_one_shows_on_hover(tmp_path, browser):
    import httpx

    store = Store(db_url(str(tmp_path / "workers.db")))
    keys = {"ann": store.add_api_key("ann", "viewer")}
    app = create_app(store, TOKEN, workers=2)
    try:
        with served(app, wait_s=WAIT_S) as url:
            started = httpx.post(
                f"{url}/maker/start",
                json={"data": "synthetic:3000000", "speed": 20, "spread": "2ticks", "name": "w-mm"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=WAIT_S,
            )
            assert started.status_code == 200, started.text
            sign_in(browser, Engine(url, app, keys), "ann")
            wait(browser, lambda d: d.find_element(By.ID, "load").is_displayed(), "the loops' load")
            load = browser.find_element(By.ID, "load")
            assert re.fullmatch(r"loop \d+% busy \(busiest of 2\)", load.text)
            lines = load.get_attribute("title").splitlines()
            assert lines[0].startswith("event loop: ") and lines[0].endswith("ms late (last 10 s)")
            assert sorted(line.split(":")[0] for line in lines[1:]) == ["worker 0", "worker 1"]
            # the worker running the maker has its loop's figures; the other runs none, so it has none
            running = r"worker \d: 1 makers, \d+% busy, timers up to [\d.]+ ms late"
            assert sorted(bool(re.fullmatch(running, line)) for line in lines[1:]) == [False, True]
            assert [line for line in lines[1:] if line.endswith(": 0 makers")] != []
    finally:
        store.close()
