"""Volatility estimators against hand-computed values (sigma in ticks per sqrt second)."""

from __future__ import annotations

import math

import pytest

from quotewise.signals.volatility import EwmaVol, RollingVol, vol_regime

S = 1_000_000_000


def test_ewma_vol_by_hand():
    v = EwmaVol(halflife_ns=1 * S)
    assert v.update(0, 100.0) is None  # one mid: no change yet
    # +2 ticks in 1 s: the first rate seeds the variance: 2^2 / 1 = 4
    assert v.update(1 * S, 102.0) == pytest.approx(2.0)
    # 0 in 1 s (one half-life, w = 0.5): 0.5 * 4 + 0.5 * 0 = 2
    assert v.update(2 * S, 102.0) == pytest.approx(math.sqrt(2.0))
    # -2 ticks in 2 s: rate 4 / 2 = 2; w = 0.5^2 = 0.25: 0.25 * 2 + 0.75 * 2 = 2
    assert v.update(4 * S, 100.0) == pytest.approx(math.sqrt(2.0))


def test_rolling_vol_by_hand():
    v = RollingVol(window_ns=2 * S)
    v.update(0, 100.0)
    v.update(1 * S, 102.0)  # change 2 over 1 s
    # changes 2 and -1 over 2 s: (4 + 1) / 2 = 2.5
    assert v.update(2 * S, 101.0) == pytest.approx(math.sqrt(2.5))
    # at 3 s the change that ended at 1 s leaves the 2 s window: (1 + 0) / 2 = 0.5
    assert v.update(3 * S, 101.0) == pytest.approx(math.sqrt(0.5))


def test_regime():
    assert vol_regime(0.5, 1.0) == "low"
    assert vol_regime(1.0, 1.0) == "medium"
    assert vol_regime(2.0, 1.0) == "high"
