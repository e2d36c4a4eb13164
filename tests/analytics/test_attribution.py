"""P&L attribution: hand-worked on the tiny run, and exact against the engine's P&L on real data."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from backtest_runs import synthetic_run
from sample_runs import SECOND, T0, equity, fills, summary

from conftest import shared_path
from quotewise.analytics.analyze import summarize_run
from quotewise.analytics.attribution import attribute, final_mark, mid_as_of
from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import DataSource, from_event_data, from_path
from quotewise.data.lobster import read_lobster
from quotewise.model.instrument import Instrument
from quotewise.quoting.loader import make_strategy
from quotewise.sim.exchange import SimConfig


def test_tiny_run_by_hand() -> None:
    result = attribute(fills(), 100.3, equity())

    # spread: buy 2 @ 99.9 with mid 100.0 -> 2*0.1 = 0.2; sell 1 @ 100.2 with mid 100.1 -> -1*(100.1-100.2)
    # = 0.1; the third fill has no mid, so its own price: edge 0. Total 0.3.
    assert result.spread_capture == pytest.approx(0.3, abs=1e-12)
    # inventory: P*M - sum s*q*m = 2*100.3 - (2*100.0 - 1*100.1 + 1*100.0) = 200.6 - 199.9 = 0.7
    assert result.inventory == pytest.approx(0.7, abs=1e-12)
    # fees: -(0.02 - 0.01 + 0) = -0.01
    assert result.fees == pytest.approx(-0.01, abs=1e-12)
    # total = 0.3 + 0.7 - 0.01 = 0.99 = cash + P*M = -199.61 + 200.6
    assert result.total == pytest.approx(0.99, abs=1e-12)
    # 5 s later: fill 1 -> mid(15 s) 99.8: 2*(99.8-100.0) = -0.4; fill 2 -> mid(25 s) 100.2:
    # -1*(100.2-100.1) = -0.1; fill 3 -> mid(35 s) 100.3 vs its price 100.0: +0.3. Sum -0.2.
    assert result.adverse_selection == pytest.approx(-0.2, abs=1e-12)
    assert (result.fills, result.fills_without_mid, result.adverse_horizon_s) == (3, 1, 5)


def test_inverse_contract_parts_are_in_coins_and_add_up() -> None:
    """The tiny run's fills as inverse contracts of 10 USD: each part is the linear formula with
    v(x) = -10 / x in place of the price, and the parts add up to cash + P v(M) in coins."""
    inst = Instrument(tick_size=0.1, contract="inverse", contract_size=10.0)
    result = attribute(fills(), 100.3, equity(), inst)
    f = fills()
    v = inst.unit_value
    mid = f["mid"].fillna(f["price"]).to_numpy()
    signed = (f["side"] * f["size"]).to_numpy()
    price = f["price"].to_numpy()
    assert result.spread_capture == pytest.approx(float(np.sum(signed * (v(mid) - v(price)))), rel=1e-12)
    cash = float(np.sum(-signed * v(price)) - f["fee"].sum())
    assert result.total == pytest.approx(cash + signed.sum() * v(100.3), rel=1e-12)
    # buying 2 at 99.9 below the mid 100.0 earns 2 x 10 x (1/99.9 - 1/100.0) coins of edge
    assert result.spread_capture > 0


def test_adverse_selection_leaves_out_fills_whose_horizon_is_past_the_data() -> None:
    late = fills()
    late.loc[2, "exch_ts"] = T0 + 38 * SECOND  # 38 s + 5 s is past the last sample at 40 s

    # only fills 1 and 2 count: -0.4 - 0.1
    assert attribute(late, 100.3, equity()).adverse_selection == pytest.approx(-0.5, abs=1e-12)


def test_mid_as_of_skips_missing_mids_and_stops_at_the_data() -> None:
    times = T0 + np.array([-1, 0, 12, 30, 31, 40, 41], dtype=np.int64) * SECOND

    got = mid_as_of(equity(), times)

    # before the first sample: NaN; 30 s has no mid so the 25 s one holds; past the last sample: NaN
    expected = [math.nan, 100.0, 100.0, 100.2, 100.2, 100.3, math.nan]
    np.testing.assert_array_equal(got, expected)


def test_fills_without_a_mid_column_count_as_zero_edge() -> None:
    result = attribute(fills().drop(columns="mid"), 100.3, equity())

    assert result.spread_capture == 0.0
    assert result.total == pytest.approx(0.99, abs=1e-12)
    assert result.fills_without_mid == 3


def test_no_mid_ever_marks_the_position_at_zero_like_the_engine() -> None:
    no_mid = fills().assign(mid=math.nan)

    result = attribute(no_mid, None, equity().assign(mid=math.nan))

    # the engine reports cash alone when it never saw a mid: -199.61
    assert result.total == pytest.approx(-199.61, abs=1e-9)
    assert result.spread_capture == 0.0
    assert result.adverse_selection == 0.0


def test_no_fills() -> None:
    result = attribute(fills().iloc[:0], 100.3, equity())

    assert (result.spread_capture, result.inventory, result.fees, result.total) == (0.0, 0.0, 0.0, 0.0)


def test_final_mark_prefers_the_summary_then_the_last_equity_mid() -> None:
    assert final_mark(summary(), equity()) == 100.3
    assert final_mark({"final_mid": None}, equity().assign(mid=[*[100.0] * 8, math.nan])) == 100.0
    assert math.isnan(final_mark({}, equity().iloc[:0]))


def _amzn() -> DataSource:
    source = from_event_data(
        read_lobster(shared_path("lobster", "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip")), "amzn"
    )
    source.instrument = source.instrument.model_copy(update={"maker_fee": -0.00002, "taker_fee": 0.0003})
    return source


def _goog() -> DataSource:
    source = from_event_data(
        read_lobster(shared_path("lobster", "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip")), "goog"
    )
    source.instrument = source.instrument.model_copy(update={"maker_fee": -0.00002, "taker_fee": 0.0003})
    return source


def _binance(*files: str) -> Callable[[], DataSource]:
    def load() -> DataSource:
        source = from_path([shared_path("binance", *f.split("/")) for f in files], "binance")
        source.instrument = source.instrument.model_copy(update={"maker_fee": 0.0002, "taker_fee": 0.0005})
        return source

    return load


# every shared data set a reader exists for (the tardis fixtures are too short to trade in)
@pytest.mark.parametrize(
    ("load", "size"),
    [
        pytest.param(_amzn, 100, id="lobster-amzn-l5"),
        pytest.param(_goog, 100, id="lobster-goog-l10"),
        pytest.param(_binance("usdm/btcusdt_20240808.gz"), 0.01, id="binance-usdm"),
        pytest.param(
            _binance("spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"), 0.001, id="binance-spot"
        ),
        pytest.param(
            _binance("cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz"), 1, id="binance-coinm"
        ),
    ],
)
def test_attribution_adds_up_to_the_engine_pnl_on_real_data(
    tmp_path: Path, load: Callable[[], DataSource], size: float
) -> None:
    strategy = make_strategy("skew", {"size": size})
    source = load()
    queue = "fifo" if source.l3 else "risk-averse"
    run_backtest(source, strategy, SimConfig(queue=queue, interval_ns=strategy.interval_ns), tmp_path)

    summary = summarize_run(tmp_path)

    parts = summary["attribution"]
    assert summary["fills"] > 20
    assert parts["fees"] == pytest.approx(-summary["fees"], rel=1e-12, abs=1e-12)
    assert parts["fees"] != 0
    total = parts["spread_capture"] + parts["inventory"] + parts["fees"]
    assert total == pytest.approx(summary["total_pnl"], rel=1e-9)
    assert parts["total"] == pytest.approx(summary["total_pnl"], rel=1e-9)
    assert parts["fills_without_mid"] < summary["fills"]


def test_attribution_adds_up_to_the_engine_pnl_on_the_synthetic_market(tmp_path: Path) -> None:
    summary = summarize_run(synthetic_run(tmp_path))

    parts = summary["attribution"]
    total = parts["spread_capture"] + parts["inventory"] + parts["fees"]
    assert total == pytest.approx(summary["total_pnl"], rel=1e-9)
    assert parts["spread_capture"] > 0  # a passive maker on the synthetic market earns its spread
