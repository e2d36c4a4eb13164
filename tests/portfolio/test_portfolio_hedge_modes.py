"""The passive hedge: a limit order at our side's best price, filled only from the hedge data's own
trades behind the queue that was there when it joined, or when the other side reaches our price; its
remainder is taken after the timeout. Maker fee for passive fills, taker fee for the rest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_portfolio_backtest import run_shared_pair
from typer.testing import CliRunner

from quotewise.backtest.source import DataSource
from quotewise.cli import app
from quotewise.errors import ConfigError
from quotewise.model.events import ASK, BID, SET, TRADE, empty_events
from quotewise.model.instrument import Instrument
from quotewise.portfolio.config import parse_portfolio
from quotewise.portfolio.hedge import MakingLeg, run_hedge
from quotewise.portfolio.runner import hedge_attribution

runner = CliRunner()
MS = 1_000_000
T0 = 1_700_000_000_000_000_000
HEDGE = Instrument(symbol="H", tick_size=1.0, lot_size=1.0, maker_fee=0.0002, taker_fee=0.001)
# bid 99 x 3, ask 101 x 5 (deep behind: 102 x 50, 98 x 50)
BOOK = [(T0, BID, 99, 3), (T0, BID, 98, 50), (T0, ASK, 101, 5), (T0, ASK, 102, 50)]


def events_of(rows: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """Events from (ts, kind, side, price, size) rows."""
    events = empty_events(len(rows))
    for i, (ts, kind, side, price, size) in enumerate(rows):
        events[i]["exch_ts"] = events[i]["local_ts"] = ts
        events[i]["kind"], events[i]["side"], events[i]["price"], events[i]["size"] = kind, side, price, size
    return events


def source_of(rows: list[tuple[int, int, int, int, int]]) -> DataSource:
    events = events_of([(ts, SET, side, price, size) for ts, side, price, size in BOOK] + rows)
    return DataSource(
        name="hand-made",
        instrument=HEDGE,
        price_lo=90,
        price_hi=110,
        n_events=len(events),
        l3=False,
        chunks=lambda: iter([events[:3], events[3:]]),
    )


def short_of(size: int, at: int = T0 + 10 * MS) -> MakingLeg:
    """A making leg that sold ``size`` at ``at``: the hedge buys ``size``, resting at the bid (99)."""
    fills = pd.DataFrame(
        {"local_ts": [at], "side": [-1], "size": [float(size)], "price": [100.0], "mid": [100.0]}
    )
    return MakingLeg("m", Instrument(tick_size=1.0), fills)


def passive(rows: list[tuple[int, int, int, int, int]], size: int = 2, timeout_ms: int = 100):
    return run_hedge(
        [short_of(size)], source_of(rows), 0.5, MS, False, mode="passive", timeout_ns=timeout_ms * MS
    )


def fills_of(result) -> list[tuple[int, float, float, str]]:
    f = result.fills
    return list(zip((f["exch_ts"] - T0) // MS, f["price"], f["size"], f["liquidity"], strict=True))


def test_a_trade_at_our_price_fills_us_only_after_the_queue_ahead_has_traded():
    # we join the bid at 99 behind 3 lots (at 11 ms); 2 trade at 99: still 1 ahead, nothing for us;
    # then 2 more: 1 for the queue, 1 for us; then 5 more: our last lot
    result = passive([(T0 + 20 * MS, TRADE, BID, 99, 2), (T0 + 30 * MS, TRADE, BID, 99, 2)])
    assert fills_of(result)[0] == (30, 99.0, 1.0, "maker")
    result = passive(
        [
            (T0 + 20 * MS, TRADE, BID, 99, 2),
            (T0 + 30 * MS, TRADE, BID, 99, 2),
            (T0 + 40 * MS, TRADE, BID, 99, 5),
        ]
    )
    assert fills_of(result) == [(30, 99.0, 1.0, "maker"), (40, 99.0, 1.0, "maker")]
    assert result.fills["fee"].tolist() == pytest.approx([0.0002 * 99, 0.0002 * 99])
    assert result.position == 2.0 and result.orders["filled"].tolist() == [2.0]


def test_a_trade_through_our_price_fills_us_at_our_price_up_to_its_size():
    result = passive([(T0 + 20 * MS, TRADE, BID, 98, 1), (T0 + 25 * MS, TRADE, BID, 97, 4)])
    assert fills_of(result) == [(20, 99.0, 1.0, "maker"), (25, 99.0, 1.0, "maker")]


def test_trades_before_we_join_or_on_the_far_side_do_not_fill_us():
    # 10 ms decision + 1 ms latency: a trade at 10.5 ms is before we rest; a trade at 100 (above our
    # bid) is not through it; so the order times out and its 2 lots take the ask (taker fee)
    result = passive([(T0 + 10 * MS + MS // 2, TRADE, BID, 98, 5), (T0 + 20 * MS, TRADE, ASK, 101, 3)])
    assert fills_of(result) == [(111, 101.0, 2.0, "taker")]
    assert result.fills["fee"].tolist() == pytest.approx([0.001 * 101 * 2])


def test_the_other_side_reaching_our_price_fills_the_remainder_at_our_price():
    result = passive([(T0 + 20 * MS, TRADE, BID, 98, 1), (T0 + 30 * MS, SET, ASK, 99, 7)], size=3)
    assert fills_of(result) == [(20, 99.0, 1.0, "maker"), (30, 99.0, 2.0, "maker")]


def test_the_remainder_after_the_timeout_walks_the_book_and_the_attribution_adds_up():
    result = passive([(T0 + 20 * MS, TRADE, BID, 98, 1)], size=8, timeout_ms=50)
    assert fills_of(result) == [
        (20, 99.0, 1.0, "maker"),
        (61, 101.0, 5.0, "taker"),
        (61, 102.0, 2.0, "taker"),
    ]
    assert result.position == 8.0 and result.orders["filled"].tolist() == [8.0]
    hedging, fees = hedge_attribution(result.fills, HEDGE, result.final_mid)
    cash = result.fills["cash"].iloc[-1]
    assert hedging + fees == pytest.approx(cash + result.position * result.final_mid, abs=1e-9)


def test_taker_mode_is_unchanged_by_the_new_options():
    rows = [(T0 + 20 * MS, TRADE, BID, 98, 1)]
    taker = run_hedge([short_of(2)], source_of(rows), 0.5, MS, False)
    assert fills_of(taker) == [(11, 101.0, 2.0, "taker")]


def test_timeout_is_read_as_a_duration_and_refused_when_unreadable():
    raw = {"instruments": {"a": {"data": "synthetic:1000"}}, "hedge": {"instrument": "a", "band": 1}}
    assert parse_portfolio(raw).hedge.timeout_ns == 2_000_000_000
    raw["hedge"] |= {"mode": "passive", "timeout": "250ms"}
    assert parse_portfolio(raw).hedge.timeout_ns == 250 * MS
    for bad in ("-1s", "soon"):
        raw["hedge"]["timeout"] = bad
        with pytest.raises(ConfigError, match=r"hedge\.timeout"):
            parse_portfolio(raw)
    raw["hedge"] |= {"timeout": "1s", "mode": "maker"}
    with pytest.raises(ConfigError, match=r"hedge\.mode"):
        parse_portfolio(raw)


def check_passive_book(out: Path, timeout_ns: int, latency_ns: int) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    a = summary["attribution"]
    parts = math.fsum(a[k] for k in ("spread", "inventory", "fees", "hedging"))
    assert parts == pytest.approx(summary["total_pnl"], abs=1e-9)
    for name, inst in summary["instruments"].items():
        own = math.fsum(inst["attribution"][k] for k in ("spread_capture", "inventory", "fees", "settlement"))
        assert own == pytest.approx(inst["total_pnl"], abs=1e-9), name
    fills = pd.read_parquet(out / "hedge" / "fills.parquet")
    orders = pd.read_parquet(out / "hedge" / "orders.parquet")
    exposure = summary["hedge"]["exposure"]
    assert exposure["passive_fills"] == (fills["liquidity"] == "maker").sum() > 0
    assert exposure["taker_fills"] == (fills["liquidity"] == "taker").sum()
    # every order is done (filled, or its remainder taken) within latency + timeout of its decision
    assert (fills["exch_ts"] - fills["decision_ts"] <= latency_ns + timeout_ns).all()
    full = orders[orders["filled"] == orders["size"]]
    assert len(full) and (full["net_after"].abs() <= exposure["band"] + 1e-9).all()
    return summary


def test_mm_backtest_portfolio_with_a_passive_hedge_on_synthetic_markets(tmp_path):
    spec = tmp_path / "book.yaml"
    spec.write_text(
        "instruments:\n"
        "  a: {data: 'synthetic:40000', seed: 1, strategy: skew, params: {spread: 1}, maker_fee: -0.5bp}\n"
        "  b: {data: 'synthetic:40000', seed: 2, strategy: skew, params: {spread: 1}, taker_fee: 2bp,"
        " maker_fee: 0.5bp}\n"
        "hedge: {instrument: b, band: 0.5, ratio: 1.0, latency: 1ms, mode: passive, timeout: 2s}\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", "--portfolio", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = check_passive_book(out, 2_000_000_000, MS)
    assert summary["hedge"]["mode"] == "passive" and summary["hedge"]["exposure"]["taker_fills"] > 0


def test_real_spot_book_with_a_passive_hedge_on_the_usdm_perpetual(tmp_path):
    hedge = "{instrument: perp, band: 0.02, ratio: 1.0, latency: 1ms, mode: passive, timeout: 2s}"
    out = run_shared_pair(tmp_path, "taker_fee: 4bp, maker_fee: 2bp", hedge)
    check_passive_book(out, 2_000_000_000, MS)
