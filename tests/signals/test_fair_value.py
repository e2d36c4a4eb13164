"""Fair-value estimators against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from quotewise.signals.fair_value import Ema, MicropriceG1, fit_g1, imbalance01, mid_price, vwap, weighted_mid


def test_mid_and_weighted_mid():
    assert mid_price(100, 102) == 101.0
    # (b * Qa + a * Qb) / (Qb + Qa) = (100 * 1 + 102 * 3) / 4 = 406 / 4 = 101.5
    assert weighted_mid(100, 3, 102, 1) == pytest.approx(101.5)
    # the same as mid + S * (I - 1/2) with I = 3 / 4: 101 + 2 * 0.25 = 101.5
    assert mid_price(100, 102) + 2 * (imbalance01(3, 1) - 0.5) == pytest.approx(101.5)
    assert weighted_mid(100, 0, 102, 0) == 101.0  # no sizes: no information, the mid


def test_vwap():
    # (100 * 1 + 103 * 2) / 3 = 306 / 3 = 102
    assert vwap(np.array([100.0, 103.0]), np.array([1.0, 2.0])) == pytest.approx(102.0)
    assert vwap(np.array([]), np.array([])) is None


def test_fit_g1_bins_and_symmetrises():
    # imbalance bins of width 0.1: 0.80, 0.85, 0.82 -> bin 8; 0.15 -> bin 1; all at a 1-tick spread
    imb = np.array([0.80, 0.85, 0.82, 0.15])
    dmid = np.array([0.5, 0.5, -0.5, -0.5])
    sums, counts = fit_g1(imb, np.ones(4, np.int64), dmid, n_imbalance=10, n_spread=2)
    # raw bin 8: sum 0.5 over 3; raw bin 1: sum -0.5 over 1.
    # symmetrised bin 8 adds bin 1 mirrored (-(-0.5)): sum 1.0 over 4 -> g1 = 0.25
    # symmetrised bin 1 adds bin 8 mirrored (-(0.5)): sum -1.0 over 4 -> g1 = -0.25
    assert sums[0, 8] / counts[0, 8] == pytest.approx(0.25)
    assert sums[0, 1] / counts[0, 1] == pytest.approx(-0.25)
    assert counts[1].sum() == 0  # nothing at a 2-tick spread


def test_microprice_learns_next_mid_change_and_starts_from_weighted_mid():
    m = MicropriceG1(n_imbalance=10, n_spread=2, prior_weight=20.0)
    # no data: the prior S * (I - 1/2) = 2 * (0.8 - 0.5) = 0.6, the weighted mid's adjustment
    assert m.adjustment(0.8, 2) == pytest.approx(0.6)
    m.observe(100.0, 0.8, 1)
    m.observe(100.0, 0.85, 1)  # the mid has not moved: both samples wait
    m.observe(100.5, 0.5, 1)  # the mid moved +0.5: both resolve with +0.5
    # bin (S=1, 8): sum 1.0 over 2 (and its mirror bin 1: -1.0 over 2)
    # shrunk: (1.0 + 20 * 1 * (0.8 - 0.5)) / (2 + 20) = 7 / 22
    assert m.adjustment(0.8, 1) == pytest.approx(7 / 22)
    # the mirror bin [0.1, 0.2): (-1.0 + 20 * 1 * (0.15 - 0.5)) / 22 = -8 / 22
    assert m.adjustment(0.15, 1) == pytest.approx(-8 / 22)
    # the micro-price: bid 100 (4 lots), ask 101 (1 lot): I = 0.8, mid 100.5 -> 100.5 + 7 / 22
    assert m.price(100, 4, 101, 1) == pytest.approx(100.5 + 7 / 22)


def test_microprice_without_prior_is_the_data_mean():
    m = MicropriceG1(prior_weight=0.0)
    for mid, imb in [(10.0, 0.95), (10.0, 0.92), (11.0, 0.5)]:
        m.observe(mid, imb, 1)
    assert m.adjustment(0.95, 1) == pytest.approx(1.0)  # both samples saw the next change +1


def test_ema():
    e = Ema(0.5)
    assert e.update(10.0) == 10.0  # seeded by the first value
    assert e.update(20.0) == pytest.approx(15.0)  # 0.5 * 20 + 0.5 * 10
    assert e.update(30.0) == pytest.approx(22.5)  # 0.5 * 30 + 0.5 * 15
    with pytest.raises(ValueError):
        Ema(0.0)
