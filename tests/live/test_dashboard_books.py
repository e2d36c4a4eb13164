"""The dashboard's Books panel, against a real engine (in process, uvicorn on a free port) with two
paper makers in book ``desk`` whose limit (max_gross 1) the engine has halted them for: the page and
its script serve the panel and a viewer's key reads every figure it shows (HTTP); in headless Chromium
a viewer sees the book's row: its makers, P&L, exposures, limits and halted state (skipped without
chromium, as test_dashboard_browser.py is)."""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from livekit import served

from quotewise.live.server import create_app
from quotewise.live.store import Store, db_url

TOKEN = "books-dashboard-token"
BOOK = "desk"
MAKERS = ("desk-a", "desk-b")
WAIT_S = 30.0
ROW_SCRIPT = """
const tr = document.querySelector(`#books tbody tr[data-book="${arguments[0]}"]`);
if (!tr) return null;
const out = {light: tr.querySelector("td.risk span").className};
for (const td of tr.cells) out[td.className.split(" ")[0]] = td.textContent;
return out;
"""
HAS_SELENIUM = importlib.util.find_spec("selenium") is not None
if HAS_SELENIUM:  # the browser, its waits and signing in: those of the dashboard's own browser test
    from selenium.webdriver.common.by import By
    from test_dashboard_browser import CHROMEDRIVER, CHROMIUM, Engine, browser, sign_in, wait  # noqa: F401


class Running:
    def __init__(self, url: str, keys: dict[str, str]) -> None:
        self.url, self.keys = url, keys

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        return httpx.get(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {key or TOKEN}"}, timeout=WAIT_S
        )


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[Running]:
    """The engine with /stream and the dashboard; book ``desk`` of two paper makers, halted by its
    max_gross limit of 1 once both hold a position."""
    from quotewise.live.dashboard import add_dashboard_routes
    from quotewise.live.stream import add_stream_route

    store = Store(db_url(str(tmp_path_factory.mktemp("books-dashboard") / "state.db")))
    keys = {"ann": store.add_api_key("ann", "viewer")}
    app = create_app(store, TOKEN)
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/stream" not in paths:
        add_stream_route(app, app.state.engine)
    if "/" not in paths:
        add_dashboard_routes(app)
    admin = {"Authorization": f"Bearer {TOKEN}"}
    spec = {
        "data": "synthetic:3000000",
        "speed": 20,
        "strategy": "symmetric",
        "spread": "1tick",
        "book": BOOK,
    }
    try:
        with served(app, wait_s=WAIT_S) as url:
            running = Running(url, keys)
            for name in MAKERS:
                r = httpx.post(
                    f"{url}/maker/start", json={**spec, "name": name}, headers=admin, timeout=WAIT_S
                )
                assert r.status_code == 200, r.text
            r = httpx.put(f"{url}/books/{BOOK}/limits", json={"max_gross": 1}, headers=admin, timeout=WAIT_S)
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + WAIT_S
            while not all(m["halted"] == "halted" for m in running.get(f"/books/{BOOK}").json()["makers"]):
                assert time.monotonic() < deadline, "the book limit did not halt desk's makers"
                time.sleep(0.1)
            yield running
    finally:
        store.close()


def test_the_page_serves_the_books_panel_and_a_viewer_reads_its_figures(engine):
    page = engine.get("/").text
    panel = re.search(r'<section id="books-card".*?</section>', page, re.S)
    assert panel, "no Books panel on the page"
    headers = re.findall(r"<th[^>]*>(.*?)</th>", panel.group(0))
    assert headers == [
        "Risk",
        "Book",
        "Makers",
        "P&amp;L",
        "Net exposure",
        "Gross exposure",
        "Limits",
        "State",
    ]
    script = engine.get("/dashboard/app.js").text
    assert '"/books"' in script and "`/books/${encodeURIComponent(b.book)}`" in script
    assert "drawBooks();" in script  # drawn with the other panels
    # what the panel reads, with the key of whoever signed in: a viewer's suffices
    viewer = engine.keys["ann"]
    assert engine.get("/books", viewer).json() == [{"book": BOOK, "makers": list(MAKERS), "limits": {
        "flatten": False, "action": "halt", "pause_for": None, "max_loss": None, "max_gross": 1.0,
        "max_net": None, "var_1m": None}}]  # fmt: skip
    book = engine.get(f"/books/{BOOK}", viewer).json()
    assert [(m["id"], m["halted"]) for m in book["makers"]] == [(m, "halted") for m in MAKERS]
    assert {"pnl", "net_exposure", "gross_exposure"} <= set(book["totals"])
    assert book["limits"]["max_gross"] == 1.0


@pytest.mark.skipif(not HAS_SELENIUM, reason="selenium is not installed (pip install -e '.[dev]')")
def test_a_viewer_sees_each_book_with_its_makers_totals_limits_and_halted_state(engine, request):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    driver = request.getfixturevalue("browser")
    sign_in(driver, Engine(engine.url, None, engine.keys), "ann")

    def cells() -> dict | None:
        """The book's row, each cell's text by class (and its light's), read in one go: the panel
        redraws its rows whenever the figures change."""
        return driver.execute_script(ROW_SCRIPT, BOOK)

    text = wait(driver, lambda d: cells(), "the book's row")
    assert not driver.find_element(By.ID, "no-books").is_displayed()
    assert text["book"] == BOOK
    assert text["makers"] == "desk-a (halted), desk-b (halted)"
    assert text["limits"] == "max_gross 1"
    assert text["state"].startswith("halted")  # both makers halted (and, while beyond, the breach)
    assert text["light"] == "light red"
    figures = engine.get(f"/books/{BOOK}").json()  # halted: positions hold; the mids move a little
    assert float(text["gross"]) == pytest.approx(figures["totals"]["gross_exposure"], rel=0.05)
    assert float(text["gross"]) > 1
    assert text["pnl"].endswith(figures["currency"]) and text["net"]
