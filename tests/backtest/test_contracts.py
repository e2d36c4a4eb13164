"""Every number right on every market: inverse COIN-M P&L in coins, USD-M and spot exchange minimums,
on the real Binance captures, through ``mm backtest`` as a user runs it."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from runcheck import check_run
from typer.testing import CliRunner

from conftest import shared_path
from quotewise.backtest.source import from_parquet
from quotewise.cli import app
from quotewise.data.convert import load_source
from quotewise.data.store import META_KEY, write_events

runner = CliRunner()


def backtest(tmp_path, data: str, *args: str) -> dict:
    out = tmp_path / "run"
    result = runner.invoke(app, ["backtest", "--data", data, "--quiet", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return check_run(out)


def test_coin_m_pnl_is_in_coins_from_the_contract_size(tmp_path):
    """BTCUSD_PERP contracts are 100 USD settled in BTC: the P&L in BTC is
    sum(side x qty x 100 / price) - position x 100 / final mid - fees, to 1e-12 of the traded value,
    and the USD figures count 100 USD a contract. Priced as linear (the old bug) the same fills gave
    a P&L thousands of times larger, in "USD"."""
    data = str(shared_path("binance", "cm", "btcusd_perp_20240808.gz"))
    summary = backtest(tmp_path, data, "--strategy", "skew", "--maker-fee", "-0.5bp", "--taker-fee", "5bp")
    fills = pq.read_table(tmp_path / "run" / "fills.parquet").to_pandas()
    assert len(fills) > 100
    assert summary["instrument"]["contract"] == "inverse" and summary["instrument"]["contract_size"] == 100
    side, qty, price = fills["side"].to_numpy(float), fills["size"].to_numpy(), fills["price"].to_numpy()
    position = float(np.sum(side * qty))
    coins = side * qty * 100 / price
    expected = coins.sum() - position * 100 / summary["final_mid"] - fills["fee"].sum()
    traded = float(np.abs(coins).sum())
    assert summary["total_pnl"] == pytest.approx(expected, rel=0, abs=1e-12 * traded)
    assert summary["traded_notional"] == pytest.approx(traded, rel=1e-12)
    assert summary["traded_notional_quote"] == pytest.approx(100 * qty.sum())  # USD: 100 a contract
    assert summary["total_pnl_quote"] == pytest.approx(summary["total_pnl"] * summary["final_mid"])
    assert abs(summary["total_pnl"]) < 0.01 * traded  # coins: a fraction of what was traded
    units = summary["units"]
    assert (units["total_pnl"], units["total_pnl_quote"]) == ("BTC", "USD")
    assert units["traded_volume"] == "contracts"
    parts = summary["attribution"]
    total = parts["spread_capture"] + parts["inventory"] + parts["fees"]
    assert total == pytest.approx(summary["total_pnl"], rel=0, abs=1e-12 * traded)


def test_usd_m_default_size_clears_the_minimum_order_value(tmp_path):
    """USD-M BTCUSDT refuses orders under 100 USDT: the default size is the smallest that clears
    110 USDT at the data's price (0.002 BTC at ~61,800), and every order the strategy sent passed."""
    data = str(shared_path("binance", "usdm", "btcusdt_20240808.gz"))
    summary = backtest(tmp_path, data, "--strategy", "skew")
    assert summary["params"]["size"] == pytest.approx(0.002)
    assert summary["instrument"]["min_notional"] == 100.0
    orders = pq.read_table(tmp_path / "run" / "orders.parquet").to_pandas()
    sent = orders[orders["status"] == "submitted"]
    assert (sent["price"] * sent["size"] >= 100).all()


def test_orders_under_the_minimum_value_are_rejected_with_the_reason(tmp_path):
    """A ladder whose outer levels shrink under 100 USDT: the exchange rejects those, and orders.parquet
    says why; the inner level (0.002 BTC) trades."""
    data = str(shared_path("binance", "usdm", "btcusdt_20240808.gz"))
    ladder = ("--set", "size=0.002", "--set", "level_decay=0.5", "--set", "max_orders=2")
    summary = backtest(tmp_path, data, "--strategy", "ladder", *ladder)
    orders = pq.read_table(tmp_path / "run" / "orders.parquet").to_pandas()
    reasons = set(orders.loc[orders["status"] == "rejected", "reason"])
    assert "order value is below the venue's minimum (min notional)" in reasons
    assert summary["fills"] > 0


def test_a_size_under_the_minimum_value_is_refused_before_running(tmp_path):
    data = str(shared_path("binance", "usdm", "btcusdt_20240808.gz"))
    out = tmp_path / "run"
    result = runner.invoke(app, ["backtest", "--data", data, "--set", "size=0.001", "--out", str(out)])
    assert result.exit_code == 2
    assert "below the venue's minimum order value of 100 USDT; use a size of at least 0.002" in result.output
    assert not out.exists()


def test_spot_orders_step_by_the_venues_lot_though_the_book_is_finer(tmp_path):
    """Spot BTCUSDT books show sizes to 1e-6 BTC, orders step by 1e-5 and must be worth 5 USDT: the
    default size is 0.00009 BTC (5.6 USDT) and every order sent is on the 1e-5 step."""
    files = [shared_path("binance", "spot", f"btcusdt_2024080{d}.gz") for d in (8, 9)]
    summary = backtest(tmp_path, ",".join(map(str, files)), "--strategy", "symmetric")
    inst = summary["instrument"]
    assert (inst["lot_size"], inst["order_lots"], inst["min_notional"]) == (1e-6, 10, 5.0)
    assert summary["params"]["size"] == pytest.approx(0.00009)
    orders = pq.read_table(tmp_path / "run" / "orders.parquet").to_pandas()
    sizes = orders.loc[orders["status"] == "submitted", "size"].to_numpy()
    assert len(sizes) and np.allclose(np.round(sizes / 1e-5), sizes / 1e-5)


def test_summary_says_which_currency_each_figure_is_in(tmp_path):
    data = str(shared_path("binance", "usdm", "btcusdt_20240808.gz"))
    summary = backtest(tmp_path, data, "--strategy", "symmetric")
    assert summary["units"]["total_pnl"] == "USDT" and summary["units"]["final_position"] == "BTC"
    assert summary["total_pnl_quote"] == summary["total_pnl"]
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["units"] == summary["units"] and not math.isnan(saved["traded_notional"])


def test_a_file_converted_before_contracts_were_known_is_priced_from_the_listing(tmp_path):
    """A COIN-M Parquet file written by an older Quotewise has no contract in its metadata: it is not
    read as linear, the venue's listing supplies the contract."""
    data = load_source(shared_path("binance", "cm", "btcusd_perp_20240808.gz"))
    path = write_events(tmp_path / "cm.parquet", data)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[META_KEY])
    old = {k: v for k, v in meta["instrument"].items() if k in ("symbol", "venue", "tick_size", "lot_size")}
    meta["instrument"] = old
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), path)
    inst = from_parquet(path).instrument
    assert (inst.contract, inst.contract_size, inst.settle_currency) == ("inverse", 100.0, "BTC")
