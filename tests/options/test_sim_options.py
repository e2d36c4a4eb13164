"""`mm sim options`: delta hedging at the implied vol earns the gamma P&L of the vol gap; the option
market maker quotes around the model price, within its greeks limits, and hedges its delta."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from quotewise.cli import app
from quotewise.errors import ConfigError
from quotewise.options import black_scholes, fit_smile
from quotewise.options.market_maker import MarketMakerConfig, OptionBook, OptionMarketMaker, OptionSpec
from quotewise.options.sim import OptionsSimParams, simulate

runner = CliRunner()
SMALL = ["--paths", "1500", "--steps", "100", "--seed", "3"]


def sim_json(*args: str) -> dict:
    result = runner.invoke(app, ["sim", "options", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_mean_hedged_pnl_agrees_with_the_gamma_pnl_theory():
    out = sim_json(*SMALL)
    gaps = {row["realised"]: row for row in out["gaps"]}
    assert sorted(gaps) == [0.4, 0.5, 0.6] and out["settings"]["implied"] == 0.5
    for row in gaps.values():
        assert abs(row["mean_pnl"] - row["theory"]) < 3 * row["stderr"], row
        # the closed form is the theory's expectation (drift = rate): it too is within the noise
        assert abs(row["closed_form"] - row["theory"]) < 3 * row["theory_stderr"] + 1e-12, row
    assert gaps[0.6]["mean_pnl"] > 10 * gaps[0.6]["stderr"]  # long vol, realised above implied: a gain
    assert gaps[0.4]["mean_pnl"] < -10 * gaps[0.4]["stderr"]
    assert gaps[0.5]["theory"] == 0.0 and gaps[0.5]["closed_form"] == 0.0


def test_closed_form_is_the_difference_of_the_two_prices():
    out = sim_json(*SMALL, "--realised", "0.7", "--rate", "0.05", "--strike", "105", "--type", "put")
    row, settings = out["gaps"][0], out["settings"]
    t = settings["expiry"]
    both = [black_scholes(100, 105, t, vol, 0.05, kind="put").price for vol in (0.7, 0.5)]
    assert row["closed_form"] == pytest.approx(np.exp(0.05 * t) * (both[0] - both[1]))
    assert abs(row["mean_pnl"] - row["theory"]) < 3 * row["stderr"]


def test_market_maker_pnl_splits_into_spread_and_inventory():
    out = sim_json(*SMALL)
    maker = out["market_maker"]
    assert maker["config"]["vol_spread"] == 0.02 and maker["flow_per_day"] == 5.0
    for row in maker["results"]:
        assert row["spread_capture"] + row["inventory_pnl"] == pytest.approx(row["mean_pnl"])
        assert row["spread_capture"] > 0 and row["fills_per_path"] > 0 and row["hedges_per_path"] > 0
        # balanced flow: the hedged inventory earns nothing on average
        assert abs(row["inventory_pnl"]) < 4 * row["inventory_stderr"]


def test_table_output_and_repeatable_realised():
    args = ["sim", "options", "--paths", "200", "--steps", "20", "--realised", "0.3,0.4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Theory" in result.output and "Spread capture" in result.output
    out = sim_json("--paths", "200", "--steps", "20", "--realised", "0.3", "--realised", "0.7,0.5")
    assert [row["realised"] for row in out["gaps"]] == [0.3, 0.7, 0.5]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--realised", "-0.1"], "--realised"),
        (["--realised", "abc"], "--realised"),
        (["--expiry", "soon"], "--expiry"),
        (["--paths", "1"], "paths"),
        (["--implied", "0"], "implied"),
        (["--type", "straddle"], "call or put"),
    ],
)
def test_bad_settings_are_refused(args, named):
    result = runner.invoke(app, ["sim", "options", *args])
    assert result.exit_code == 2 and named in result.output


def test_same_seed_same_result():
    params = OptionsSimParams(paths=50, steps=10)
    assert simulate(params, 5) == simulate(params, 5)


# -- the market maker on its own ---------------------------------------------------------------------

OPTION = OptionSpec(strike=100.0, expiry=0.25)


def test_quotes_are_the_prices_at_vol_minus_and_plus_half_the_spread():
    maker = OptionMarketMaker(OPTION, 0.4, MarketMakerConfig(vol_spread=0.04))
    q = maker.quote(np.array([95.0, 105.0]), 0.25, OptionBook.empty(2))
    for i, spot in enumerate((95.0, 105.0)):
        assert q.bid[i] == pytest.approx(black_scholes(spot, 100, 0.25, 0.38).price)
        assert q.ask[i] == pytest.approx(black_scholes(spot, 100, 0.25, 0.42).price)
        assert q.bid[i] < q.mid[i] < q.ask[i]
    assert q.bid_on.all() and q.ask_on.all()


def test_a_side_that_would_breach_a_greeks_limit_is_not_quoted():
    g = black_scholes(100.0, 100.0, 0.25, 0.4)
    config = MarketMakerConfig(max_gamma=3.5 * g.gamma, max_vega=10 * g.vega)
    maker = OptionMarketMaker(OPTION, 0.4, config)
    book = OptionBook(options=np.array([3.0, -3.0, 0.0]), shares=np.zeros(3), cash=np.zeros(3))
    q = maker.quote(np.full(3, 100.0), 0.25, book)
    assert q.bid_on.tolist() == [False, True, True]  # long 3: a 4th would breach max gamma
    assert q.ask_on.tolist() == [True, False, True]  # short 3: selling a 4th would breach it too
    beyond = OptionBook(options=np.array([5.0]), shares=np.zeros(1), cash=np.zeros(1))
    q = maker.quote(np.array([100.0]), 0.25, beyond)  # past the limit: may still trade back
    assert not q.bid_on[0] and q.ask_on[0]


def test_delta_is_hedged_back_to_zero_outside_the_band():
    maker = OptionMarketMaker(OPTION, 0.4, MarketMakerConfig(hedge_band=1.0))
    book = OptionBook(options=np.array([1.0, 4.0]), shares=np.zeros(2), cash=np.zeros(2))
    delta = np.array([0.6, 0.6])
    trade = maker.hedge(np.array([100.0, 100.0]), book, delta)
    assert trade.tolist() == pytest.approx([0.0, -2.4])  # 0.6 is inside the band, 2.4 is not
    assert book.shares.tolist() == pytest.approx([0.0, -2.4])
    assert book.cash.tolist() == pytest.approx([0.0, 240.0])


def test_the_market_maker_quotes_from_a_smile():
    strikes = [80, 90, 100, 110, 120]
    smile = fit_smile(strikes, 100.0, 0.25, vols=[0.5, 0.45, 0.42, 0.41, 0.42])
    maker = OptionMarketMaker(OptionSpec(strike=90.0, expiry=0.25), smile, MarketMakerConfig())
    q = maker.quote(np.array([100.0]), 0.25, OptionBook.empty(1))
    assert q.mid[0] == pytest.approx(black_scholes(100.0, 90.0, 0.25, smile.vol(90.0)).price)


def test_a_spread_wider_than_the_vol_is_refused():
    with pytest.raises(ConfigError, match="vol_spread"):
        OptionMarketMaker(OPTION, 0.01, MarketMakerConfig(vol_spread=0.04))
