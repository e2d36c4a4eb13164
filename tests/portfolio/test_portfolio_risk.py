"""Portfolio risk: VaR formulas on known series, exposure shares, covariance and portfolio volatility,
limit breaches, and the rolling beta the hedge ratio uses."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from quotewise.portfolio.hedge import rolling_beta
from quotewise.portfolio.risk import (
    Exposure,
    breach_events,
    historical_var,
    parametric_var,
    portfolio_risk,
)

Z99 = NormalDist().inv_cdf(0.99)


def test_parametric_var_is_z_sigma_sqrt_h():
    changes = np.array([1.0, -1.0, 1.0, -1.0])  # sample std (ddof 1) = sqrt(4 / 3)
    sigma = math.sqrt(4 / 3)
    assert parametric_var(changes, 60, 1) == pytest.approx(Z99 * sigma * math.sqrt(60), rel=1e-12)
    assert parametric_var(changes, 86_400, 1) == pytest.approx(Z99 * sigma * math.sqrt(86_400), rel=1e-12)
    assert pytest.approx(2.326348, abs=1e-6) == Z99


def test_historical_var_is_the_empirical_quantile_scaled_by_root_time():
    changes = np.arange(-50.0, 51.0)  # 101 values: the 1% quantile is -49 exactly
    assert historical_var(changes, 1, 1) == pytest.approx(49.0)
    assert historical_var(changes, 60, 1) == pytest.approx(49.0 * math.sqrt(60))
    rng = np.random.default_rng(7)
    x = rng.normal(size=1_001)
    assert historical_var(x, 1, 1) == pytest.approx(-np.sort(x)[10])  # the 10th of 1000 gaps


def test_exposure_net_gross_and_shares():
    frame = pd.DataFrame({"spot": [100.0, 300.0], "hedge": [-100.0, -100.0]}, index=[0, 1])
    exposure = Exposure(frame)
    assert exposure.net.tolist() == [0.0, 200.0] and exposure.gross.tolist() == [200.0, 400.0]
    assert exposure.shares() == pytest.approx({"spot": 200 / 300, "hedge": 100 / 300})


def test_breach_events_mark_the_start_of_each_breach_with_its_value():
    series = pd.Series([1.0, 5.0, 6.0, 2.0, 7.0], index=[10, 20, 30, 40, 50])
    events = breach_events(series, 4.0, "max_net")
    assert [(e["ts"], e["value"]) for e in events] == [(20, 5.0), (50, 7.0)]
    assert breach_events(series, None, "max_net") == []


def test_portfolio_volatility_is_the_std_of_the_book_changes_and_limits_fire():
    rng = np.random.default_rng(3)
    a = np.cumsum(rng.normal(size=400))
    pnl = pd.DataFrame({"a": a, "hedge": -0.5 * a + np.cumsum(rng.normal(size=400))}, index=np.arange(400))
    exposure = Exposure(pd.DataFrame({"a": np.full(400, 1_000.0), "hedge": np.full(400, -400.0)}))
    risk = portfolio_risk(pnl, exposure, 1.0, {"max_net": 500.0, "max_gross": None, "var_1m": 1.0})
    book = pnl.sum(axis=1).diff().dropna()
    assert risk["volatility"]["per_step"] == pytest.approx(book.tail(300).std(ddof=1), rel=1e-9)
    assert risk["var"]["parametric"]["1m"] == pytest.approx(Z99 * book.std(ddof=1) * math.sqrt(60), rel=1e-9)
    assert risk["exposure"]["max_abs_net"] == 600.0 and risk["exposure"]["max_gross"] == 1_400.0
    assert [e["limit"] for e in risk["events"]] == ["max_net", "var_1m"]


def test_rolling_beta_recovers_a_known_beta():
    rng = np.random.default_rng(5)
    grid = np.arange(600) * 1_000_000_000
    rh = rng.normal(scale=1e-4, size=599)
    hedge = 100 * np.exp(np.concatenate([[0.0], np.cumsum(rh)]))
    making = 100 * np.exp(np.concatenate([[0.0], np.cumsum(2 * rh)]))
    beta = rolling_beta(making, hedge, grid, window=300, min_obs=30)
    assert beta(int(grid[10])) == 1.0  # too few returns yet
    assert beta(int(grid[-1])) == pytest.approx(2.0, rel=1e-6)
