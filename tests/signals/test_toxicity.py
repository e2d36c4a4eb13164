"""Toxic-flow detectors: VPIN by hand, sweeps, size outliers, lead-lag, own markouts, and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from quotewise.book import core
from quotewise.cli import app
from quotewise.errors import ConfigError
from quotewise.model.events import ASK, BID, SET, TRADE, empty_events
from quotewise.signals.toxicity import (
    LeadLag,
    SizeOutliers,
    SweepDetector,
    Vpin,
    adverse_ratio,
    fill_markouts,
    touch_moves,
)


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_vpin_equals_a_hand_computation():
    # buckets of 10 lots, sigma 1 tick: trade 1 has no previous price (half buy), trade 2 rises 1 tick
    # (Phi(1) buy), trade 3 is flat, trade 4 falls 2 ticks (Phi(-2) buy)
    vpin = Vpin(bucket_volume=10, n_buckets=3, sigma=1.0)
    assert vpin.update(np.array([100.0, 101.0]), np.array([5.0, 5.0])) is None  # one bucket of three
    value = vpin.update(np.array([101.0, 99.0]), np.array([10.0, 10.0]))
    buy1 = 2.5 + 5 * phi(1.0)
    bucket1 = abs(buy1 - (10 - buy1)) / 10
    bucket3 = abs(10 * phi(-2.0) - 10 * (1 - phi(-2.0))) / 10
    assert vpin.buckets == 3
    assert value == pytest.approx((bucket1 + 0.0 + bucket3) / 3, abs=1e-12)
    assert value == pytest.approx(0.43195, abs=1e-4)


def test_vpin_splits_a_trade_across_buckets_and_flags_one_sided_flow():
    # no sigma given: trade 2 is classified by the tick rule (no scale yet), then sigma = 1 (one change
    # of 1 tick seen); trade 3's 6 lots go 2 to the first bucket and 4 to the second
    vpin = Vpin(bucket_volume=4, n_buckets=2, threshold=0.6)
    vpin.update(np.array([100.0, 101.0, 102.0]), np.array([1.0, 1.0, 6.0]))
    first = abs(2 * (0.5 + 1 + 2 * phi(1.0)) - 4) / 4
    second = abs(2 * 4 * phi(1.0) - 4) / 4
    assert vpin.buckets == 2 and vpin.value == pytest.approx((first + second) / 2) and vpin.toxic


def test_vpin_rejects_a_bad_bucket():
    with pytest.raises(ConfigError, match="bucket volume"):
        Vpin(0)


def trades(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    """(exch_ts, resting side, price, size) trade prints, local time = exchange time."""
    ev = empty_events(len(rows))
    for i, (t, side, price, size) in enumerate(rows):
        ev[i]["exch_ts"] = ev[i]["local_ts"] = t
        ev[i]["kind"], ev[i]["side"], ev[i]["price"], ev[i]["size"] = TRADE, side, price, size
    return ev


def test_a_sweep_is_detected_and_a_single_level_trade_is_not():
    det = SweepDetector()
    single = trades([(1, ASK, 100, 1), (1, ASK, 100, 2), (2, BID, 99, 1)])
    assert len(det.update(single)[0]) == 0
    # a buyer lifting 100, 101, 102 at one time: one sweep, reported at the second level, sign +1
    t, s = det.update(trades([(5, ASK, 100, 1), (5, ASK, 101, 1), (5, ASK, 102, 1)]))
    assert t.tolist() == [5] and s.tolist() == [1]
    # two prices but different times is not a sweep; a sell sweep split across chunks is one
    assert len(det.update(trades([(6, BID, 99, 1), (7, BID, 98, 1)]))[0]) == 0
    det.update(trades([(9, BID, 99, 1)]))
    t, s = det.update(trades([(9, BID, 98, 1)]))
    assert s.tolist() == [-1] and det.count == 2


def test_size_outliers_above_the_rolling_quantile():
    det = SizeOutliers(window=20, quantile=0.9, min_count=10)
    sizes = np.array([1.0, 2.0] * 10 + [50.0, 2.0])
    flags = det.update(sizes)
    assert flags.tolist() == [False] * 20 + [True, False]
    assert SizeOutliers(window=40, quantile=0.9, min_count=30).update(sizes).sum() == 0  # too few yet


def test_lead_lag_fires_only_after_a_lead_move():
    det = LeadLag(window_ns=100)
    det.on_lead(np.array([1_000]), np.array([1]))
    flags = det.on_trades(np.array([900, 1_000, 1_050, 1_100, 1_200]))
    # before the move, at the same instant (not after it) and past the window: nothing
    assert flags.tolist() == [0, 0, 1, 1, 0]
    assert det.direction(1_050) == 1 and det.direction(1_500) == 0


def test_touch_moves_of_a_lead_book():
    ev = empty_events(4)
    rows = [(BID, 99, 5), (ASK, 101, 5), (ASK, 100, 5), (BID, 98, 5)]
    for i, (side, price, size) in enumerate(rows):
        ev[i]["local_ts"] = 10 * (i + 1)
        ev[i]["kind"], ev[i]["side"], ev[i]["price"], ev[i]["size"] = SET, side, price, size
    bid, ask, st = core.new_book(90, 110)
    t, s = touch_moves(ev, bid, ask, st, np.array([-1], np.int64))
    assert t.tolist() == [30] and s.tolist() == [-1]  # the ask came down; a lower bid level is not the touch


def test_own_markouts_by_side_and_the_adverse_ratio():
    mid_t = np.array([0, 5, 10, 15])
    mid = np.array([100.0, 101.0, 103.0, 99.0])
    # bought at 100 at t=0 (marked at t=5: +1), sold at 100 at t=5 (marked at t=10: -3), bought at t=14
    # (never marked)
    out = fill_markouts(
        np.array([0, 5, 14]), np.array([1, -1, 1]), np.array([100.0, 100.0, 98.0]), mid_t, mid, 5
    )
    assert out[:2].tolist() == [1.0, -3.0] and math.isnan(out[2])
    assert adverse_ratio(out) == 0.5


runner = CliRunner()


def test_cli_toxicity_counts_each_detector():
    result = runner.invoke(app, ["data", "toxicity", "synthetic:5000", "--lead", "synthetic:5000", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["trades"] > 0 and out["vpin"]["buckets"] == 250
    assert {"count", "per_minute"} <= set(out["sweeps"]) and "share_of_trades" in out["size_outliers"]
    # the lead is the same stream: every mid move is followed by our own trades more than by chance
    assert out["lead_lag"]["lead_moves"] > 0
    text = runner.invoke(app, ["data", "toxicity", "synthetic:5000"])
    assert text.exit_code == 0 and "sweeps: count" in text.output


def test_cli_toxicity_names_a_missing_file():
    result = runner.invoke(app, ["data", "toxicity", "/no/such/file.gz"])
    assert result.exit_code != 0 and "file.gz" in result.output
