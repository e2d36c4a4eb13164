"""A binary-outcome market settled at 1 or 0: orders stay inside [tick, 1 - tick], the position pays
its outcome, and spread + inventory + fees + settlement = total, exactly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import quotewise as qw
from quotewise.backtest.source import from_event_data
from quotewise.data.store import EventData
from quotewise.errors import ConfigError
from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE, SET, TRADE
from quotewise.model.instrument import Instrument

BINARY = Instrument(
    symbol="WILL-IT-RAIN", venue="polymarket", tick_size=0.01, lot_size=1.0, min_price=0.01, max_price=0.99
)
MS = 1_000_000


def binary_market(steps: int = 3000, seed: int = 1, settlement_price: float | None = None):
    """A mid that wanders from 50 cents to the edges: a thin book (5 shares a level) and trades of 8
    shares at the touch, alternating sides, so a quote at the touch fills; the last 30 trades all
    hit the bid, so the run ends holding shares."""
    rng = np.random.default_rng(seed)
    rows, mid = [], 50
    for i in range(steps):
        mid = int(np.clip(mid + rng.integers(-1, 2), 3, 97))
        t = (i + 1) * 100 * MS
        rows += [(t, t, 0, 0, 0, CLEAR, 0)]
        rows += [(t, t, mid - k, 5, 0, SET, BID) for k in range(1, 3)]
        rows += [(t, t, mid + k, 5, 0, SET, ASK) for k in range(1, 3)]
        side = BID if i % 2 or i >= steps - 30 else ASK
        rows += [(t + MS, t + MS, mid - 1 if side == BID else mid + 1, 8, 0, TRADE, side)]
    events = np.array(rows, dtype=[(n, EVENT_DTYPE[n]) for n in EVENT_DTYPE.names])
    report = {} if settlement_price is None else {"settlement_price": settlement_price}
    return from_event_data(EventData(events.astype(EVENT_DTYPE), BINARY, "test", report), "binary-test")


def run(tmp_path: Path, name: str, resolve: str | None = None, source=None) -> dict:
    """summary.json of a symmetric maker quoting at the touch (as written: attribution included)."""
    out = tmp_path / name
    qw.backtest(source or binary_market(), "symmetric", spread=1, size=3, out=out, resolve=resolve)
    return json.loads((out / "summary.json").read_text())


def identity_holds(summary: dict) -> None:
    a = summary["attribution"]
    parts = a["spread_capture"] + a["inventory"] + a["fees"] + a["settlement"]
    assert math.isclose(parts, summary["total_pnl"], abs_tol=1e-9)
    assert math.isclose(a["total"], summary["total_pnl"], abs_tol=1e-9)


@pytest.mark.parametrize("outcome, price", [("yes", 1.0), ("no", 0.0)])
def test_the_position_is_settled_at_its_outcome_and_the_parts_add_up(tmp_path, outcome, price):
    summary = run(tmp_path, outcome, resolve=outcome)
    position, mid = summary["final_position"], summary["final_mid"]
    assert summary["fills"] > 10 and position != 0  # the market did trade with us
    settled = summary["settlement"]
    assert settled["price"] == price and settled["source"] == f"--resolve {outcome}"
    assert math.isclose(settled["pnl"], position * (price - mid), abs_tol=1e-9)
    assert math.isclose(summary["total_pnl"], summary["cash"] + position * price, abs_tol=1e-9)
    assert math.isclose(summary["attribution"]["settlement"], settled["pnl"], abs_tol=1e-9)
    identity_holds(summary)


def test_yes_and_no_differ_by_exactly_the_final_position(tmp_path):
    yes = run(tmp_path, "yes", resolve="yes")
    no = run(tmp_path, "no", resolve="no")
    assert math.isclose(yes["total_pnl"] - no["total_pnl"], yes["final_position"], abs_tol=1e-9)


def test_every_order_price_stays_inside_tick_and_one_minus_tick(tmp_path):
    out = tmp_path / "bounds"
    result = qw.backtest(binary_market(), "symmetric", spread=3, size=3, out=out, resolve="yes")
    prices = result.orders["price"].to_numpy()
    assert len(prices) and prices.min() >= 0.01 - 1e-12 and prices.max() <= 0.99 + 1e-12


def test_the_datas_own_resolution_settles_and_resolve_overrides_it(tmp_path):
    from_data = run(tmp_path, "data", source=binary_market(settlement_price=0.0))
    assert from_data["settlement"]["price"] == 0.0
    assert from_data["settlement"]["source"] == "the data (market_resolved)"
    identity_holds(from_data)
    overridden = run(tmp_path, "override", resolve="yes", source=binary_market(settlement_price=0.0))
    assert overridden["settlement"]["price"] == 1.0


def test_a_market_that_did_not_resolve_stays_marked_at_the_last_mid(tmp_path):
    summary = run(tmp_path, "open")
    assert summary["settlement"] is None and summary["attribution"]["settlement"] == 0.0
    identity_holds(summary)


def test_a_resolution_file_says_the_outcome(tmp_path):
    (tmp_path / "outcome.json").write_text(json.dumps({"outcome": "No"}))
    (tmp_path / "outcome.txt").write_text("yes\n")
    by_json = run(tmp_path, "json", resolve=str(tmp_path / "outcome.json"))
    by_text = run(tmp_path, "text", resolve=str(tmp_path / "outcome.txt"))
    assert by_json["settlement"]["price"] == 0.0 and by_text["settlement"]["price"] == 1.0


@pytest.mark.parametrize(
    "resolve, message",
    [("maybe", "--resolve takes yes, no or a file"), ("{tmp}/bad.json", "not an outcome")],
)
def test_a_bad_resolution_is_refused_by_name_before_the_run(tmp_path, resolve, message):
    (tmp_path / "bad.json").write_text(json.dumps({"outcome": "perhaps"}))
    with pytest.raises(ConfigError, match=message):
        qw.backtest(binary_market(), "symmetric", resolve=resolve.format(tmp=tmp_path))


def test_settling_a_market_that_is_not_binary_is_refused():
    with pytest.raises(ConfigError, match="binary-outcome market"):
        qw.backtest("synthetic:20000", "symmetric", resolve="yes")


def test_the_report_shows_the_settlement_line(tmp_path):
    out = tmp_path / "report"
    qw.backtest(binary_market(), "symmetric", spread=1, size=3, out=out, resolve="no", report=True)
    html = (out / "report.html").read_text()
    assert "Settlement" in html and "settlement price 0.0" in html
    assert "spread capture + inventory + fees + settlement" in html
