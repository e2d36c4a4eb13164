"""Named models: quotes worked out by hand, online estimation on a market, every model from the CLI."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from quotewise.backtest import source
from quotewise.backtest.runner import run_backtest
from quotewise.book.view import MarketView
from quotewise.cli import app
from quotewise.model.instrument import Instrument
from quotewise.quoting.base import Quote
from quotewise.quoting.builtin import BUILTIN
from quotewise.quoting.loader import make_strategy
from quotewise.quoting.params import BUILTIN_PARAMS
from quotewise.sim.exchange import SimConfig

INST = Instrument(symbol="T", tick_size=0.01, lot_size=1.0)


def view(position=0, bb=9_999, ba=10_001) -> MarketView:
    return MarketView(0, INST, bb, ba, 5, 5, position)


def quotes(name: str, params: dict, position: int = 0) -> tuple[list[Quote], list[Quote]]:
    s = make_strategy(name, params)
    s.on_start(INST)
    q = s.quotes(view(position))
    return q.bids, q.asks


def test_registry_holds_every_named_model():
    assert set(BUILTIN) == {"symmetric", "skew", "ladder", "avellaneda-stoikov", "glft", "adaptive"}
    # the parameter models the command line reads without loading the strategies are theirs
    assert {name: cls.Params for name, cls in BUILTIN.items()} == BUILTIN_PARAMS


@pytest.mark.parametrize("position", [-12, -5, -1, 0, 2, 7, 10, 15])
def test_symmetric_with_a_skew_is_the_skew_strategy(position):
    settings = {"spread": 3, "skew": 0.5, "max_inventory": 10}
    assert quotes("symmetric", settings, position) == quotes("skew", settings, position)


def test_symmetric_skews_against_a_limit_of_ten_orders_by_default():
    assert quotes("symmetric", {"spread": 3}, 10)[0] == [Quote(9_997, 1)]  # no skew: no limit
    assert quotes("symmetric", {"spread": 3, "skew": 1}, 10) == quotes("skew", {"spread": 3}, 10)
    assert quotes("symmetric", {"spread": 3, "skew": 1}, 10)[0] == []  # at 10 orders the bid stops


def test_glft_strategy_by_hand():
    # mid 100, q = 3 orders, gamma 0.1, sigma 0.5, A 140, k 1.5 (see test_models: delta_b 0.690637,
    # delta_a 0.613062): bid 99.309363 rounds down to 99.30, ask 100.613062 up to 100.62
    bids, asks = quotes("glft", {"gamma": 0.1, "sigma": 0.5, "A": 140, "k": 1.5}, position=3)
    assert bids == [Quote(9_930, 1)] and asks == [Quote(10_062, 1)]
    # a 0.10 cap on the half-spread keeps the centre 100 - 3 c2 = 99.961212: 99.861212 -> 99.86,
    # 100.061212 -> 100.07
    capped = {"gamma": 0.1, "sigma": 0.5, "A": 140, "k": 1.5, "max_spread": "0.1px"}
    bids, asks = quotes("glft", capped, position=3)
    assert bids == [Quote(9_986, 1)] and asks == [Quote(10_007, 1)]


def test_avellaneda_stoikov_strategy_by_hand():
    # finite horizon 10 s, s = 100, q = 2, gamma 0.1, sigma 0.2, k 1.5:
    # r = 100 - 2 * 0.1 * 0.04 * 10 = 99.92; spread = 0.04 + 20 ln(1 + 0.1/1.5) = 1.330770422
    # bid 99.92 - 0.665385 = 99.254615 -> 99.25; ask 99.92 + 0.665385 = 100.585385 -> 100.59
    params = {"gamma": 0.1, "sigma": 0.2, "k": 1.5, "horizon": "10s"}
    assert quotes("avellaneda-stoikov", params, position=2) == ([Quote(9_925, 1)], [Quote(10_059, 1)])
    # infinite horizon, q_max = max_inventory / size = 4, q = 1, sigma 2 (see test_models):
    # bid 98.664686 - 0.645385 = 98.019301 -> 98.01; ask 99.591783 + 0.645385 = 100.237169 -> 100.24
    params = {"gamma": 0.1, "sigma": 2.0, "k": 1.5, "horizon": "inf", "max_inventory": 4}
    assert quotes("avellaneda-stoikov", params, position=1) == ([Quote(9_801, 1)], [Quote(10_024, 1)])


def test_models_wait_for_what_they_cannot_estimate_yet():
    s = make_strategy("glft")
    s.on_start(INST)
    assert s.quotes(view()).bids == [] and s.last["waiting_for"] == "sigma"
    s = make_strategy("glft", {"sigma": 0.1})
    s.on_start(INST)
    assert s.quotes(view()).asks == [] and s.last["waiting_for"] == "fill intensity fit"


def test_bad_parameters_are_named():
    with pytest.raises(Exception, match="horizon"):
        make_strategy("avellaneda-stoikov", {"horizon": "-1s"})
    with pytest.raises(Exception, match="half_spread"):
        make_strategy("skew", {"half_spread": "1tick"})  # renamed to spread: no alias


def test_models_fit_sigma_a_and_k_online_and_the_tape_stays_in_step():
    src = source.synthetic(150_000, 5)
    glft = make_strategy("glft", {"gamma": 1.0})
    result = run_backtest(src, glft, SimConfig(interval_ns=glft.interval_ns), None, report=False)
    assert result.summary["fills"] > 0
    last = glft.last
    assert last["sigma"] > 0 and 0 < last["A"] < math.inf and 0 < last["k"] < math.inf
    assert glft._tape.resyncs == 0  # the private replay matched the live book at every decision
    flow = make_strategy(
        "skew",
        {
            "fv_method": "microprice",
            "ofi_skew": 1.0,
            "flow_skew": 0.5,
            "markout_widen": 1.0,
            "threshold": "1tick",
        },
    )
    result = run_backtest(src, flow, SimConfig(interval_ns=flow.interval_ns), None, report=False)
    assert result.summary["fills"] > 0 and flow._tape.resyncs == 0


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_named_model_runs_from_the_cli(tmp_path, name):
    out = tmp_path / name
    result = CliRunner().invoke(
        app,
        [
            *("backtest", "--strategy", name, "--data", "synthetic", "--events", "200000", "--seed", "2"),
            *("--quiet", "--no-report", "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == name and summary["events"] == 200_000
    assert summary["fills"] > 0
