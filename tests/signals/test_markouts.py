"""Markouts of our fills: side * (mid after the horizon - fill price), per side."""

from __future__ import annotations

import pytest

from quotewise.signals.markouts import MarkoutTracker

S = 1_000_000_000


def test_markouts_mature_at_the_horizon_and_average_per_side():
    m = MarkoutTracker(horizon_ns=1 * S, alpha=0.5)
    m.on_fill(0, 1, 100.0)  # we bought at 100
    m.on_fill(0, -1, 101.0)  # we sold at 101
    assert m.update(S // 2, 99.0) == []  # not yet a second old
    # at 1 s the mid is 99: the buy is marked +1 * (99 - 100) = -1, the sell -1 * (99 - 101) = +2
    assert m.update(1 * S, 99.0) == [(1, -1.0), (-1, 2.0)]
    m.on_fill(2 * S, 1, 99.0)
    m.update(3 * S, 96.0)  # this buy: 96 - 99 = -3; EWMA 0.5 * -3 + 0.5 * -1 = -2
    assert m.mean[1] == pytest.approx(-2.0)
    assert m.mean[-1] == pytest.approx(2.0)
    assert m.count == {1: 2, -1: 1}
