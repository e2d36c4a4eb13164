"""Portfolio backtests: the taker hedge walks the replayed book, keeps the net inside its band, and
the book's attribution adds up; end to end through ``mm backtest --portfolio``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import shared_path
from quotewise.backtest.source import DataSource
from quotewise.book.orderbook import OrderBook
from quotewise.cli import app
from quotewise.model.events import ASK, BID, SET, empty_events
from quotewise.model.instrument import Instrument
from quotewise.portfolio.hedge import MakingLeg, run_hedge, walk_book
from quotewise.portfolio.runner import hedge_attribution

runner = CliRunner()
MS = 1_000_000
T0 = 1_700_000_000_000_000_000
HEDGE_INST = Instrument(symbol="H", tick_size=1.0, lot_size=1.0, taker_fee=0.001)


def book_events(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    """SET events from (ts, side, price, size) rows."""
    events = empty_events(len(rows))
    for i, (ts, side, price, size) in enumerate(rows):
        events[i]["exch_ts"] = events[i]["local_ts"] = ts
        events[i]["kind"], events[i]["side"], events[i]["price"], events[i]["size"] = SET, side, price, size
    return events


def hedge_source(events: np.ndarray, inst: Instrument = HEDGE_INST) -> DataSource:
    return DataSource(
        name="hand-made",
        instrument=inst,
        price_lo=int(events["price"].min()),
        price_hi=int(events["price"].max()),
        n_events=len(events),
        l3=False,
        chunks=lambda: iter([events[:2], events[2:]]),  # a chunk boundary inside the book
    )


BOOK = [(T0, ASK, 101, 2), (T0, ASK, 102, 3), (T0, ASK, 105, 10), (T0, BID, 99, 1), (T0, BID, 98, 4)]


def making_fills(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    """Fills of a making leg from (local ts, side, size), at price 100 with mid 100."""
    ts = [r[0] for r in rows]
    return pd.DataFrame(
        {
            "exch_ts": ts,
            "local_ts": ts,
            "side": [r[1] for r in rows],
            "size": [float(r[2]) for r in rows],
            "price": 100.0,
            "mid": 100.0,
            "fee": 0.0,
        }
    )


def test_walk_book_takes_levels_best_first_and_stops_where_the_book_ends():
    book = OrderBook(90, 110)
    book.apply(book_events(BOOK))
    assert walk_book(book, +1, 4) == [(101, 2), (102, 2)]
    assert walk_book(book, +1, 20) == [(101, 2), (102, 3), (105, 10)]
    assert walk_book(book, -1, 3) == [(99, 1), (98, 2)]
    assert walk_book(book, -1, 9) == [(99, 1), (98, 4)]


def test_hedge_fills_walk_the_book_seen_after_the_latency_with_the_taker_fee():
    # a long of 6 from the making leg at T0 + 10 ms; the hedge (sell 6) arrives 1 ms later, after
    # the bid at 99 grew to 2 lots (an update between decision and arrival)
    events = book_events([*BOOK, (T0 + 10 * MS + MS // 2, BID, 99, 2), (T0 + 20 * MS, BID, 99, 50)])
    leg = MakingLeg("m", Instrument(tick_size=1.0), making_fills([(T0 + 10 * MS, 1, 6)]))
    result = run_hedge([leg], hedge_source(events), band=0.5, latency_ns=MS, per_unit=False)
    fills = result.fills
    assert list(zip(fills["price"], fills["size"], strict=True)) == [(99.0, 2.0), (98.0, 4.0)]
    assert (fills["exch_ts"] == T0 + 11 * MS).all() and (fills["side"] == -1).all()
    assert fills["fee"].tolist() == pytest.approx([0.001 * 99 * 2, 0.001 * 98 * 4])
    assert result.position == -6.0 and result.final_mid == 100.0  # ask 101, bid 99 at the end
    assert result.exposure["net_after_hedge"].tolist() == [0.0]
    hedging, fees = hedge_attribution(fills, HEDGE_INST, result.final_mid)
    # the hedge's P&L is its cash plus its position marked at the final mid, fees included
    assert hedging + fees == pytest.approx(
        fills["cash"].iloc[-1] + result.position * result.final_mid, abs=1e-9
    )
    assert hedging == pytest.approx(2 * (99 - 100) + 4 * (98 - 100))


def test_an_unfilled_remainder_returns_to_the_net_and_is_hedged_again():
    events = book_events([(T0, ASK, 101, 1), (T0, BID, 99, 1), (T0 + 50 * MS, BID, 99, 100)])
    fills = making_fills([(T0 + 10 * MS, 1, 3), (T0 + 60 * MS, 1, 1)])
    result = run_hedge(
        [MakingLeg("m", Instrument(tick_size=1.0), fills)], hedge_source(events), 0.5, MS, False
    )
    assert result.orders["filled"].tolist() == [1.0, 3.0]  # 2 short of 3, then 2 + 1 more
    assert result.position == -4.0


def test_liquidity_a_hedge_took_is_not_taken_again_until_the_tape_shows_it_leaving():
    # two sells of 2 on the making leg, hedged by buys of 2: the second cannot retake the 2 lots at
    # 101 (fill rule 9); after the level drops from 2 to 1 (1 lot "left"), 1 lot of it is ours again
    events = book_events(
        [(T0, ASK, 101, 2), (T0, ASK, 102, 10), (T0, BID, 99, 5), (T0 + 20 * MS, ASK, 101, 1)]
    )
    fills = making_fills([(T0 + 10 * MS, -1, 2), (T0 + 15 * MS, -1, 2), (T0 + 30 * MS, -1, 1)])
    result = run_hedge(
        [MakingLeg("m", Instrument(tick_size=1.0), fills)], hedge_source(events), 0.5, MS, False
    )
    assert list(zip(result.fills["price"], result.fills["size"], strict=True)) == [
        (101.0, 2.0),
        (102.0, 2.0),
        (102.0, 1.0),  # 1 lot shown at 101, 1 of ours still used there: nothing left for us
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.sampled_from([-1, 1]), st.integers(1, 4)), min_size=1, max_size=40
    ),
    st.sampled_from([0.0, 1.0, 2.5]),
)
def test_after_every_hedge_the_net_is_inside_the_band(steps, band):
    deep = book_events([(T0, ASK, 101, 10_000), (T0, BID, 99, 10_000)])
    rows, t = [], T0
    for gap_ms, side, size in steps:
        t += gap_ms * MS
        rows.append((t, side, size))
    leg = MakingLeg("m", Instrument(tick_size=1.0), making_fills(rows))
    result = run_hedge([leg], hedge_source(deep), band, latency_ns=2 * MS, per_unit=False)
    exposure = result.exposure
    assert (exposure["net_after_hedge"].abs() <= band).all()
    # before a hedge the net is out by at most the fills of one decision (one hedge order's worth)
    previous = exposure["net_after_hedge"].shift(fill_value=0.0)
    assert ((exposure["net"] - previous).abs() <= 4 + 1e-12).all()
    position = sum(side * size for _, side, size in rows)
    assert abs(position + result.position) <= band


def _identity(parts: dict, keys: tuple[str, ...]) -> float:
    return math.fsum(parts[k] for k in keys)


def check_book(out: Path, band: float) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    for name, inst in summary["instruments"].items():
        a = inst["attribution"]
        parts = ("spread_capture", "inventory", "fees", "settlement")
        assert _identity(a, parts) == pytest.approx(inst["total_pnl"], abs=1e-9), name
    a = summary["attribution"]
    assert _identity(a, ("spread", "inventory", "fees", "hedging")) == pytest.approx(
        summary["total_pnl"], abs=1e-9
    )
    exposure = pd.read_parquet(out / "hedge" / "exposure.parquet")
    orders = pd.read_parquet(out / "hedge" / "orders.parquet")
    full = orders[orders["filled"] == orders["size"]]
    assert (full["net_after"].abs() <= band + 1e-9).all()
    assert summary["hedge"]["exposure"]["hedge_orders"] == len(orders)
    assert len(exposure) == summary["hedge"]["exposure"]["decisions"]
    assert (out / "report.html").stat().st_size > 10_000 and (out / "book.parquet").exists()
    return summary


def test_mm_backtest_portfolio_on_two_synthetic_markets(tmp_path):
    spec = tmp_path / "book.yaml"
    spec.write_text(
        "instruments:\n"
        "  a: {data: 'synthetic:40000', seed: 1, strategy: skew, params: {spread: 1}, maker_fee: -0.5bp}\n"
        "  b: {data: 'synthetic:40000', seed: 2, strategy: skew, params: {spread: 1}, taker_fee: 2bp}\n"
        "hedge: {instrument: b, band: 0.5, ratio: 1.0, latency: 1ms}\n"
        "limits: {max_net: 50, var_1m: 0.01}\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", "--portfolio", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for folder in ("a", "b"):
        assert (out / folder / "summary.json").exists() and (out / folder / "fills.parquet").exists()
    assert (out / "hedge" / "fills.parquet").exists()
    summary = check_book(out, 0.5)
    assert set(summary["attribution"]) >= {"spread", "inventory", "fees", "hedging"}
    assert summary["hedge"]["exposure"]["hedge_orders"] > 0 and summary["attribution"]["hedging"] != 0
    assert summary["attribution"]["fees"] < 0  # the hedge's taker fees outweigh the maker rebates
    assert {e["limit"] for e in summary["risk_events"]} == {"var_1m"}


def test_portfolio_refuses_single_run_options_and_names_a_bad_field(tmp_path):
    spec = tmp_path / "book.yaml"
    spec.write_text("instruments:\n  a: {data: 'synthetic:1000'}\nhedge: {instrument: zz, band: 1}\n")
    result = runner.invoke(app, ["backtest", "--portfolio", str(spec), "--data", "x.gz"])
    assert result.exit_code == 2 and "--data" in result.output
    result = runner.invoke(app, ["backtest", "--portfolio", str(spec)])
    assert result.exit_code == 2 and "hedge.instrument 'zz' is not one of the instruments" in result.output
    spec.write_text(
        "instruments:\n  a: {data: 'synthetic:1000', role: make}\nhedge: {instrument: a, band: -1}\n"
    )
    result = runner.invoke(app, ["backtest", "--portfolio", str(spec)])
    assert result.exit_code == 2 and "portfolio hedge.band" in result.output


def run_shared_pair(tmp_path: Path, perp_fees: str, hedge: str) -> Path:
    """``mm backtest --portfolio`` of the shared spot BTCUSDT (made) and USD-M perpetual (hedge) of
    2024-08-08; returns the output folder."""
    spot = shared_path("binance", "spot", "btcusdt_20240808.gz")
    perp = shared_path("binance", "usdm", "btcusdt_20240808.gz")
    spec = tmp_path / "book.yaml"
    spec.write_text(
        "instruments:\n"
        f"  spot: {{data: '{spot}', strategy: skew, params: {{size: 0.01, max_pos: 0.1}}}}\n"
        f"  perp: {{data: '{perp}', role: hedge, {perp_fees}}}\n"
        f"hedge: {hedge}\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["backtest", "--portfolio", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_real_spot_book_hedged_on_usdm_perpetual(tmp_path):
    out = run_shared_pair(
        tmp_path, "taker_fee: 4bp", "{instrument: perp, band: 0.02, ratio: beta, latency: 1ms}"
    )
    summary = check_book(out, 0.02)
    assert summary["instruments"]["spot"]["fills"] > 50 and summary["hedge"]["exposure"]["hedge_orders"] > 10
    assert summary["attribution"]["fees"] < 0 and summary["risk"]["var"]["samples"] > 300
