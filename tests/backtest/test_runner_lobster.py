"""Backtests on real LOBSTER data: outputs consistent, P&L recomputable from the fills."""

from __future__ import annotations

import pytest
from runcheck import check_run

from conftest import shared_path
from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import from_event_data
from quotewise.data.lobster import read_lobster
from quotewise.quoting.loader import make_strategy
from quotewise.sim.exchange import SimConfig


@pytest.fixture(scope="module")
def amzn():
    return from_event_data(
        read_lobster(shared_path("lobster", "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip")), "amzn"
    )


@pytest.mark.parametrize("queue", ["fifo", "risk-averse", "prob"])
@pytest.mark.parametrize("strategy", ["symmetric", "skew"])
def test_lobster_backtest_outputs_add_up(amzn, tmp_path, queue, strategy):
    amzn.instrument = amzn.instrument.model_copy(update={"maker_fee": -0.00002, "taker_fee": 0.0003})
    strat = make_strategy(strategy, {"spread": "1tick", "size": 100})
    result = run_backtest(amzn, strat, SimConfig(queue=queue, interval_ns=strat.interval_ns), tmp_path)
    summary = check_run(tmp_path)
    assert summary["events"] == 194_108
    assert summary["fills"] > 1000  # a market maker at the touch on a liquid stock trades all day
    assert summary["fees"] < 0  # all maker fills: a net rebate
    assert result.summary["book"] == {"cross_fixes": 0, "out_of_range": 0, "negative_clamps": 0}


def test_skew_keeps_inventory_near_its_limit(amzn, tmp_path):
    strat = make_strategy("skew", {"spread": "1tick", "size": 100, "max_inventory": 500})
    run_backtest(amzn, strat, SimConfig(queue="fifo", interval_ns=strat.interval_ns), tmp_path)
    summary = check_run(tmp_path)
    # latency lets a requote race its cancel: the old order can fill just before its cancel arrives
    # and its replacement fill too, so the strategy alone can overshoot by two orders (the risk
    # engine's worst-case check is what makes a limit hard)
    assert summary["max_abs_position"] <= 500 + 2 * 100
