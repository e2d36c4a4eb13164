"""The report as a reader sees it: opened in headless Chromium, after its scripts ran.

String checks on the HTML cannot tell whether plotly actually drew anything (a broken bundle or a bad
figure still leaves the JSON in the page), so this renders the page, inspects the resulting DOM and keeps
a screenshot under test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from backtest_runs import synthetic_run

from quotewise.analytics.report import CHART_TITLES, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1400,3000",
    "--virtual-time-budget=10000",
)
CHART_IDS = (
    "quotewise-charts",
    "quotewise-markouts",
    "quotewise-attribution",
    "quotewise-fill-sizes",
    "quotewise-fill-times",
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install chromium chromium-driver; .ci/run does it in CI)",
)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a fresh profile, so no state leaks between runs."""
    assert CHROMIUM is not None
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = synthetic_run(tmp_path_factory.mktemp("synthetic"))
    return write_report(run_dir)


@pytest.fixture(scope="module")
def dom(report: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    profile = tmp_path_factory.mktemp("chromium-dom")
    return _chromium(profile, "--dump-dom", report.as_uri()).stdout


def _chart(dom: str, div_id: str) -> str:
    """The rendered markup of one chart container: from its div to the next chart's (or the page end)."""
    start = dom.index(f'id="{div_id}"')
    later = [dom.find(f'id="{other}"', start + 1) for other in CHART_IDS if other != div_id]
    ends = [i for i in later if i > start]
    return dom[start : min(ends) if ends else len(dom)]


def _visible_text(markup: str) -> str:
    """What the browser drew: scripts (they hold the figure JSON) removed, tags stripped, entities decoded."""
    markup = re.sub(r"<script\b.*?</script>", " ", markup, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def test_every_chart_rendered(dom: str) -> None:
    for div_id in CHART_IDS:
        chart = _chart(dom, div_id)
        # plotly replaces an empty div with its SVG layers and marks the container as drawn
        assert 'class="main-svg"' in chart, f"{div_id}: plotly drew nothing"
        assert "js-plotly-plot" in chart, f"{div_id}: not initialised by plotly"
    assert dom.count('class="plotly-graph-div') == len(CHART_IDS)


def test_chart_titles_are_drawn(dom: str) -> None:
    drawn = _visible_text(dom)

    for title in CHART_TITLES:
        assert title in drawn, f"chart title {title!r} not rendered"
    assert "no risk events" in drawn
    assert "max drawdown" in drawn


def test_traces_were_drawn(dom: str) -> None:
    timeline = _chart(dom, "quotewise-charts")
    # lines (P&L, inventory, quotes) and fill markers are SVG paths inside plotly's trace groups
    assert timeline.count('class="trace scatter') >= 9
    assert 'class="point"' in timeline
    assert _chart(dom, "quotewise-attribution").count('class="point"') == 5  # the five bars
    for div_id in ("quotewise-fill-sizes", "quotewise-fill-times"):
        assert 'class="point"' in _chart(dom, div_id), f"{div_id}: no bars drawn"


def test_numbers_and_tables_are_on_the_rendered_page(dom: str) -> None:
    drawn = _visible_text(dom)

    for label in ("P&L attribution", "Metrics", "Markouts (bps)", "Fill rate", "VaR 95 % (1 min)"):
        assert label in drawn


def test_screenshot_is_kept(report: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)

    _chromium(tmp_path / "profile", f"--screenshot={shot}", report.as_uri())

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a blank 1400x3000 page compresses to a few KB; charts do not
