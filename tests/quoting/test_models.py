"""Closed-form models and the intensity fit, against values worked out by hand in each test."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from quotewise.model.events import ASK, BID, TRADE, empty_events
from quotewise.quoting.components import IntensityEstimator
from quotewise.quoting.models import (
    as_infinite_quotes,
    as_infinite_reservation,
    as_optimal_spread,
    as_quotes,
    as_reservation_price,
    fit_intensity,
    glft_coefficients,
    glft_quotes,
    tail_counts,
)


def test_avellaneda_stoikov_finite_horizon_by_hand():
    # s = 100, q = 2, gamma = 0.1, sigma = 2, T - t = 10, k = 1.5
    # r = s - q gamma sigma^2 (T - t) = 100 - 2 * 0.1 * 4 * 10 = 92
    assert as_reservation_price(100.0, 2.0, 0.1, 2.0, 10.0) == pytest.approx(92.0)
    # spread = gamma sigma^2 (T - t) + (2 / gamma) ln(1 + gamma / k)
    #        = 0.1 * 4 * 10 + 20 * ln(1 + 0.1 / 1.5) = 4 + 20 * 0.0645385211 = 5.290770422
    assert as_optimal_spread(0.1, 2.0, 10.0, 1.5) == pytest.approx(5.290770422)
    bid, ask = as_quotes(100.0, 2.0, 0.1, 2.0, 10.0, 1.5)
    assert bid == pytest.approx(92.0 - 2.645385211) and ask == pytest.approx(92.0 + 2.645385211)


def test_avellaneda_stoikov_infinite_horizon_by_hand():
    # gamma = 0.1, sigma = 2, q_max = 4: gamma^2 sigma^2 = 0.04, 2 omega = 0.04 * (4 + 1)^2 = 1
    # q = 1: r_b = s + (1/gamma) ln[(1 - 0.04 * 2^2) / (1 - 0.04 * 1)] = 100 + 10 ln(0.84 / 0.96)
    #                                                                  = 100 + 10 * -0.133531393 = 98.66468607
    #        r_a = s - (1/gamma) ln[(1 - 0.04 * 0^2) / (1 - 0.04)] = 100 - 10 ln(1 / 0.96) = 99.59178334
    r_bid, r_ask = as_infinite_reservation(100.0, 1.0, 0.1, 2.0, 4.0)
    assert r_bid == pytest.approx(98.66468607) and r_ask == pytest.approx(99.59178334)
    # quotes: r_b - (1/gamma) ln(1 + gamma/k), r_a + the same; with k = 1.5 that is 0.645385211
    bid, ask = as_infinite_quotes(100.0, 1.0, 0.1, 2.0, 1.5, 4.0)
    assert bid == pytest.approx(98.66468607 - 0.645385211)
    assert ask == pytest.approx(99.59178334 + 0.645385211)
    # flat: symmetric around s
    rb0, ra0 = as_infinite_reservation(100.0, 0.0, 0.1, 2.0, 4.0)
    assert 100.0 - rb0 == pytest.approx(ra0 - 100.0)
    with pytest.raises(ValueError, match="q_max"):
        as_infinite_reservation(100.0, 5.0, 0.1, 2.0, 4.0)


def test_glft_by_hand():
    # gamma = xi = 0.1, sigma = 0.5, A = 140, k = 1.5, delta = 1
    # c1 = (1 / 0.1) ln(1 + 0.1 / 1.5) = 10 * 0.0645385211 = 0.645385211
    # c2 = sqrt(0.1 * 0.25 / (2 * 140 * 1 * 1.5) * (1 + 0.1/1.5)^(1.5/0.1 + 1))
    #    = sqrt(5.952380952e-5 * exp(16 * 0.0645385211)) = sqrt(5.952380952e-5 * 2.808402) = 0.012929
    c1, c2 = glft_coefficients(0.1, 0.5, 140.0, 1.5)
    assert c1 == pytest.approx(0.645385211)
    assert c2 == pytest.approx(math.sqrt(5.952380952e-5 * 2.808402), rel=1e-6)
    # q = 3: delta_b = c1 + c2 / 2 + 3 c2 = 0.645385 + 3.5 * 0.012929 = 0.690637
    #        delta_a = c1 + c2 / 2 - 3 c2 = 0.645385 - 2.5 * 0.012929 = 0.613062
    bid, ask = glft_quotes(100.0, 3.0, 0.1, 0.5, 140.0, 1.5)
    assert bid == pytest.approx(100.0 - 0.690637, abs=2e-6)
    assert ask == pytest.approx(100.0 + 0.613062, abs=2e-6)


def test_glft_model_b_is_the_xi_to_zero_limit():
    # xi = 0: c1 = 1 / k = 0.5; c2 = sqrt(gamma sigma^2 / (2 A k) * e) = sqrt(0.1 * 1 / (2 * 10 * 2) * e)
    c1, c2 = glft_coefficients(0.1, 1.0, 10.0, 2.0, xi=0.0)
    assert c1 == pytest.approx(0.5)
    assert c2 == pytest.approx(math.sqrt(0.1 / 40.0 * math.e))
    near = glft_coefficients(0.1, 1.0, 10.0, 2.0, xi=1e-9)
    assert near == pytest.approx((c1, c2), rel=1e-6)


def test_tail_counts_by_hand():
    # depths 0.2, 0.7, 1.5: reaching >= 0.5 -> 2, >= 1.0 -> 1, >= 2.0 -> 0
    assert tail_counts(np.array([0.7, 0.2, 1.5]), np.array([0.5, 1.0, 2.0])).tolist() == [2.0, 1.0, 0.0]


def test_fit_intensity_recovers_exact_exponential():
    grid = np.linspace(0.1, 2.0, 20)
    a, k = fit_intensity(grid, 140.0 * np.exp(-1.5 * grid))
    assert a == pytest.approx(140.0) and k == pytest.approx(1.5)
    assert fit_intensity(grid[:1], np.array([3.0])) is None  # one point fits no line
    assert fit_intensity(grid, np.exp(grid)) is None  # a rate that grows with depth is no decay


def test_intensity_estimator_recovers_a_and_k_from_simulated_market_orders():
    # market orders arrive at A = 140/s and each reaches a depth ~ Exp(k = 1.5 per unit price), so
    # the rate reaching at least delta is A exp(-k delta): the fit must recover both from the tape.
    rng = np.random.default_rng(7)
    tick, a_true, k_true, seconds = 0.001, 140.0, 1.5, 120
    est = IntensityEstimator(tick, halflife_ns=10**18, grid_ticks=np.arange(1, 41) * 50.0, refit_ns=0)
    bid, ask = 100_000, 100_001  # mid 100000.5 ticks
    tops = np.array([[bid, 10, ask, 10], [bid, 10, ask, 10]], np.int64)  # the decision-grid tape
    est.update(0, tops, None)
    for sec in range(1, seconds + 1):
        n = rng.poisson(a_true)
        depth_ticks = np.floor(rng.exponential(1.0 / k_true, n) / tick)  # whole ticks past the touch
        side = rng.choice([ASK, BID], n)
        ev = empty_events(n)
        ev["exch_ts"] = ev["local_ts"] = (sec - 1) * 10**9 + np.arange(n)  # distinct times: n orders
        ev["kind"] = TRADE
        ev["side"] = side
        ev["price"] = np.where(side == ASK, ask + depth_ticks, bid - depth_ticks)
        ev["size"] = 1
        est.update(sec * 10**9, tops, ev)
    # depth from the mid = whole ticks + 0.5 tick, which shifts the rates by exp(-k * 0.0005): 0.07%
    a, k = est.fit(seconds * 10**9)
    assert a == pytest.approx(a_true, rel=0.05)
    assert k == pytest.approx(k_true, rel=0.05)


def test_every_test_named_in_the_models_doc_exists():
    root = Path(__file__).resolve().parents[2]
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", (root / "docs" / "models.md").read_text()))
    defined = set()
    for path in [
        *(root / "tests" / "quoting").glob("test_*.py"),
        *(root / "tests" / "signals").glob("test_*.py"),
    ]:
        defined |= set(re.findall(r"^def (test_[a-z0-9_]+)", path.read_text(), re.M))
    assert named, "docs/models.md names no tests"
    assert named <= defined, f"docs/models.md names missing tests: {sorted(named - defined)}"
