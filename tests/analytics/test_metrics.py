"""Every metric pinned by hand on the tiny run (sample_runs.py lists its numbers) or a few P&L samples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sample_runs import SECOND, T0, equity, fills, orders

from quotewise.analytics.metrics import (
    adverse_selection_ratio,
    compute_metrics,
    fill_rate,
    inventory_turnover,
    markout_bps,
    markout_table,
    max_drawdown,
    mean_abs_position,
    minute_pnl_changes,
    sharpe,
    spread_capture_pct,
    var_95,
    win_rate,
)


def _pnl(seconds: list[int], pnl: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"ts": T0 + np.array(seconds, dtype=np.int64) * SECOND, "pnl": pnl})


# P&L samples over four minutes: minute 0 ends at 3, minute 1 at 0, minute 2 has no sample (stays 0),
# minute 3 ends at 4. Starting from the first sample (0): P = 0, 3, 0, 0, 4.
MINUTES = _pnl([0, 30, 59, 60, 119, 180], [0.0, 1.0, 3.0, 2.0, 0.0, 4.0])


def test_fill_rate() -> None:
    # 3 fills / 5 "submitted" order events
    assert fill_rate(fills(), orders()) == pytest.approx(0.6)


def test_spread_capture_pct() -> None:
    pct, used = spread_capture_pct(fills(), equity())

    # fill 1 (t=10): quotes 99.9/100.1 -> half 0.1; edge +1*(100.0-99.9) = 0.1 -> 100 %
    # fill 2 (t=20): quotes 99.9/100.3 -> half 0.2; edge -1*(100.1-100.2) = 0.1 -> 50 %
    # fill 3 (t=30): no mid at the fill -> left out. Mean of 100 % and 50 %:
    assert pct == pytest.approx(75.0)
    assert used == 2


def test_spread_capture_leaves_out_one_sided_quotes() -> None:
    one_sided = equity()
    one_sided.loc[4, "ask_quote"] = math.nan  # the sample fill 2 reads its quotes from

    pct, used = spread_capture_pct(fills(), one_sided)

    assert (pct, used) == (pytest.approx(100.0), 1)


def test_inventory_turnover() -> None:
    # |position| held 5 s per sample over 40 s: (0+0+2+2+1+1+2+2)*5 / 40 = 1.25; volume 2+1+1 = 4
    assert mean_abs_position(equity()) == pytest.approx(1.25)
    assert inventory_turnover(fills(), equity()) == pytest.approx(4 / 1.25)


def test_markouts_by_side() -> None:
    # 1 s: fill 1 at 11 s sees the 10 s mid 100.0: (100.0-99.9)/99.9*1e4 = 10.01001 bps
    #      fill 2 at 21 s sees 100.1: -(100.1-100.2)/100.2*1e4 = 9.98004 bps
    #      fill 3 at 31 s: 30 s has no mid, so 25 s: 100.2: (100.2-100.0)/100.0*1e4 = 20 bps
    one = [0.1 / 99.9 * 1e4, 0.1 / 100.2 * 1e4, 20.0]
    np.testing.assert_allclose(markout_bps(fills(), equity(), 1), one)
    # 5 s: 99.8 -> -10.01001; 100.2 -> 0; 100.3 -> 30 bps
    np.testing.assert_allclose(markout_bps(fills(), equity(), 5), [-0.1 / 99.9 * 1e4, 0.0, 30.0], atol=1e-9)

    table, counts = markout_table(fills(), equity())

    assert table["buy"]["1s"] == pytest.approx((one[0] + one[2]) / 2)  # 15.005005
    assert table["sell"]["1s"] == pytest.approx(one[1])
    assert table["all"]["1s"] == pytest.approx(sum(one) / 3)  # 13.33002
    # 60 s and 300 s end after the last sample (40 s) for every fill: nothing to average
    assert math.isnan(table["all"]["60s"]) and math.isnan(table["buy"]["300s"])
    assert counts == {"1s": 3, "5s": 3, "60s": 0, "300s": 0}


def test_adverse_selection_ratio() -> None:
    # 5 s markouts -10.01, 0, +30: one negative of three (zero is not adverse)
    assert adverse_selection_ratio(fills(), equity()) == pytest.approx(1 / 3)


def test_minute_pnl_changes() -> None:
    # P = 0, 3, 0, 0, 4 -> changes 3, -3, 0, 4
    np.testing.assert_allclose(minute_pnl_changes(MINUTES), [3.0, -3.0, 0.0, 4.0])


def test_sharpe() -> None:
    changes = minute_pnl_changes(MINUTES)
    # mean (3-3+0+4)/4 = 1; deviations 2, -4, -1, 3 -> squares 30 / (4-1) = 10 -> std sqrt(10)
    # Sharpe = 1/sqrt(10) * sqrt(525600) = sqrt(52560) = 229.26
    assert sharpe(changes) == pytest.approx(math.sqrt(52_560))
    assert math.isnan(sharpe(np.array([1.0])))
    assert math.isnan(sharpe(np.array([1.0, 1.0])))  # no variation: undefined, not infinite


def test_win_rate() -> None:
    # non-zero changes 3, -3, 4: two gains of three
    assert win_rate(minute_pnl_changes(MINUTES)) == pytest.approx(2 / 3)
    assert math.isnan(win_rate(np.zeros(3)))


def test_var_95() -> None:
    # sorted -3, 0, 3, 4; 5th percentile at rank 0.05*(4-1) = 0.15: -3 + 0.15*(0-(-3)) = -2.55 -> 2.55
    assert var_95(minute_pnl_changes(MINUTES)) == pytest.approx(2.55)


def test_max_drawdown() -> None:
    drawdown = max_drawdown(MINUTES)

    # running peak 0, 1, 3, 3, 3, 4: the largest gap is 3 - 0 at 119 s, from the peak at 59 s
    assert drawdown.amount == pytest.approx(3.0)
    assert drawdown.peak_ts == T0 + 59 * SECOND
    assert drawdown.trough_ts == T0 + 119 * SECOND
    assert drawdown.trough_pnl == 0.0


def test_compute_metrics_on_the_tiny_run() -> None:
    m = compute_metrics(fills(), orders(), equity())

    assert (m.fills, m.orders_placed) == (3, 5)
    assert m.inventory_turnover == pytest.approx(3.2)
    # the run lasts 40 s inside minute 0: one change, 0 -> 0.99
    assert m.minutes == 1
    assert math.isnan(m.sharpe)
    assert m.win_rate == 1.0
    assert m.var_95 == pytest.approx(-0.99)  # negative: even the worst minute was a gain
    # P&L 0, 0, 0.18, -0.22, ...: the peak 0.18 at 10 s, trough -0.22 at 15 s
    assert m.max_drawdown == pytest.approx(0.40)
    assert (m.max_drawdown_peak, m.max_drawdown_trough) == (
        "2024-03-01T00:00:10+00:00",
        "2024-03-01T00:00:15+00:00",
    )
    as_json = m.to_dict()
    assert as_json["sharpe"] is None and as_json["markouts_bps"]["all"]["60s"] is None


def test_metrics_of_an_empty_run_are_undefined_not_errors() -> None:
    m = compute_metrics(fills().iloc[:0], orders().iloc[:0], equity().iloc[:0])

    assert m.fills == 0 and m.minutes == 0
    for value in (m.fill_rate, m.spread_capture_pct, m.inventory_turnover, m.sharpe, m.max_drawdown):
        assert math.isnan(value)
    assert m.max_drawdown_trough is None
