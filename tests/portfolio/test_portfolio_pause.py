"""``limits.action: pause | reduce``: from each breach of a book limit every making leg stops quoting
(or quotes only the side that reduces its position) for ``pause_for``, and the legs run again with
those windows; before the first window the book is the report-only book, and the attribution holds."""

from __future__ import annotations

from itertools import pairwise

import pandas as pd
import pytest
from test_portfolio_halt import VAR_LIMIT, assert_identity, run_book

from quotewise.errors import ConfigError
from quotewise.portfolio.config import parse_portfolio

LATENCY_NS = 10_000_000  # orders and fills already on their way when a window starts


@pytest.mark.parametrize("action", ["pause", "reduce"])
def test_each_breach_pauses_or_reduces_the_book_for_pause_for(tmp_path, action):
    reported, full_book, _ = run_book(tmp_path, "report", "taker", f"{{var_1m: {VAR_LIMIT}}}")
    first = reported["risk_events"][0]
    limits = f"{{var_1m: {VAR_LIMIT}, action: {action}, pause_for: 5s}}"
    summary, book, output = run_book(tmp_path, action, "taker", limits)
    windows = summary["limit_windows"]
    assert windows and windows[0]["start"] == first["ts"] and windows[0]["rule"] == "var_1m"
    assert all(w["end"] - w["start"] == 5_000_000_000 and w["action"] == action for w in windows)
    assert all(later["start"] >= earlier["end"] for earlier, later in pairwise(windows))
    assert (
        action.capitalize() in output
        and f"<b>{action.capitalize()}</b> from" in (tmp_path / action / "report.html").read_text()
    )
    for leg in ("a", "b"):
        folder = tmp_path / action / leg
        events = pd.read_parquet(folder / "risk_events.parquet")
        assert (events["rule"] == f"{action}_windows").any()
        orders = pd.read_parquet(folder / "orders.parquet")
        sent = orders[orders["status"] == "submitted"]
        fills = pd.read_parquet(folder / "fills.parquet")
        before = fills["position"].shift(fill_value=0.0).abs()
        for w in windows:
            inside = (sent["ts"] >= w["start"]) & (sent["ts"] < w["end"])
            if action == "pause":
                assert not inside.any()  # no order sent while paused
            late = (fills["exch_ts"] >= w["start"] + LATENCY_NS) & (fills["exch_ts"] < w["end"])
            if action == "reduce":  # every fill inside makes the position smaller
                assert (fills["position"].abs()[late] < before[late] + 1e-12).all()
            else:
                assert not late.any()
    start = book["ts"] < windows[0]["start"]
    pd.testing.assert_frame_equal(book[start], full_book[start])
    assert_identity(summary)


def test_pause_for_must_be_a_positive_duration():
    raw = {
        "instruments": {"a": {"data": "synthetic"}},
        "limits": {"var_1m": 1, "action": "pause", "pause_for": "0s"},
    }
    with pytest.raises(ConfigError, match=r"limits\.pause_for"):
        parse_portfolio(raw)
