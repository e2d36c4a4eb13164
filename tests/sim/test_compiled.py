"""The compiled decision path gives exactly what the Python path gives: same fills, orders, equity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_path
from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import from_event_data, from_path, synthetic
from quotewise.data.lobster import read_lobster
from quotewise.errors import ConfigError
from quotewise.quoting.kernel import QUOTE_PARAMS, compiled_quoting, quote_prices
from quotewise.quoting.loader import make_strategy
from quotewise.risk import RiskConfig
from quotewise.sim.exchange import SimConfig


def both_paths(source, name, params, queue):
    out = {}
    for compiled in (False, True):
        strat = make_strategy(name, params)
        config = SimConfig(queue=queue, interval_ns=strat.interval_ns)
        out[compiled] = run_backtest(source, strat, config, compiled=compiled)
    return out[False], out[True]


def assert_same(py, comp):
    assert comp.summary["compiled"] and not py.summary["compiled"]
    assert py.fills.num_rows > 0
    for table in ("fills", "orders", "equity"):  # exact, NaN-aware
        pd.testing.assert_frame_equal(
            getattr(py, table).to_pandas(), getattr(comp, table).to_pandas(), check_exact=True
        )
    for key in ("total_pnl", "fees", "final_position", "orders_placed", "cancels", "rejects", "events"):
        assert py.summary[key] == comp.summary[key], key


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("skew", {"spread": "1tick", "size": 2}),
        ("skew", {"spread": "2bp", "skew": 2.0, "max_inventory": 6, "size": 2, "improve": False}),
        ("symmetric", {"spread": "1.5ticks", "size": 3, "interval": "50ms"}),
        # parameters the kernel leaves to others (quoting.kernel.INERT): the Python path, which uses
        # them, must quote the same
        (
            "skew",
            {
                "spread": "1tick",
                "size": 2,
                "vol_window": "60s",
                "alpha": 0.5,
                "level_decay": 0.5,
                "level_spacing": "3ticks",
                "flow_window": "10s",
                "markout_horizon": "2s",
            },
        ),
    ],
)
def test_synthetic_fifo(name, params):
    assert_same(*both_paths(synthetic(300_000, seed=5), name, params, "fifo"))


@pytest.fixture(scope="module")
def amzn():
    data = read_lobster(shared_path("lobster", "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"))
    data.instrument = data.instrument.model_copy(update={"maker_fee": 0.0002})  # the fee floor acts
    return from_event_data(data, "amzn")


@pytest.mark.parametrize("queue", ["fifo", "risk-averse", "prob"])
def test_lobster(amzn, queue):
    assert_same(*both_paths(amzn, "skew", {"spread": "1tick", "size": 100, "max_inventory": 500}, queue))


def test_binance_with_rebate_and_latency():
    src = from_path(shared_path("binance", "usdm", "btcusdt_20240808.gz"))
    src.instrument = src.instrument.model_copy(update={"maker_fee": -0.00005, "taker_fee": 0.0007})
    params = {"spread": "1tick", "size": 0.01, "max_inventory": 0.5, "skew": 25, "improve": False}
    assert_same(*both_paths(src, "skew", params, "risk-averse"))


def test_what_cannot_run_compiled_stays_in_python():
    src = synthetic(50_000, seed=1)
    for name, params in [
        ("skew", {"fv_method": "weighted_mid"}),
        ("ladder", {}),
        ("skew", {"threshold": "2ticks"}),
    ]:
        strat = make_strategy(name, params)
        strat.on_start(src.instrument)
        assert compiled_quoting(strat) is None
        assert not run_backtest(src, strat, SimConfig(interval_ns=strat.interval_ns)).summary["compiled"]
    strat = make_strategy("skew", {})
    with pytest.raises(ConfigError, match="risk limits run in Python"):
        run_backtest(src, strat, SimConfig(), risk=RiskConfig(max_pos=3), compiled=True)


@given(
    bid=st.integers(1, 20_000),
    gap=st.integers(1, 50),
    half_spread=st.floats(0, 20),
    frac=st.floats(0, 1e-3),
    skew=st.floats(-3, 3),
    position=st.integers(-10, 10),
    improve=st.booleans(),
    fee=st.floats(-1e-3, 1e-2),
)
@settings(deadline=None)  # the first example may compile the rule
def test_compiled_quotes_never_cross(bid, gap, half_spread, frac, skew, position, improve, fee):
    """The live maker sends the compiled rule's quotes without a QuoteSet's check: with both sides
    quoted, the ask is always above the bid (the fee floor's doing)."""
    params = np.zeros(1, QUOTE_PARAMS)
    sp = params[0]
    sp["hs_ticks"], sp["hs_frac"], sp["skew"] = half_spread, frac, skew
    sp["max_lots"], sp["size"], sp["improve"], sp["fee"] = 10.0, 1.0, float(improve), fee
    want_bid, want_ask, bid_p, ask_p = quote_prices(params, bid, bid + gap, float(position))
    assert not (want_bid and want_ask) or bid_p < ask_p
