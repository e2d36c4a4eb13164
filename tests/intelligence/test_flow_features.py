"""Order-flow features and labels: values on a hand-made book, no look-ahead, labels and exclusions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotewise.api import load
from quotewise.book import core
from quotewise.errors import ConfigError
from quotewise.intelligence.features import FEATURES, FeatureConfig, Samples, compute_samples
from quotewise.model.events import ASK, BID, SET, TRADE, empty_events

MS = 1_000_000
BY_MID = FeatureConfig(sample="mid")
COL = {name: i for i, name in enumerate(FEATURES)}


def events(rows: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """(ms, kind, side, price, size) rows as events."""
    out = empty_events(len(rows))
    for i, (ms, kind, side, price, size) in enumerate(rows):
        out[i]["local_ts"] = out[i]["exch_ts"] = ms * MS
        out[i]["kind"], out[i]["side"], out[i]["price"], out[i]["size"] = kind, side, price, size
    return out


HAND = events(
    [
        (0, SET, BID, 100, 10),
        (0, SET, ASK, 102, 10),
        (100, SET, ASK, 101, 5),  # mid 101 -> 100.5: sample 1, next change up within 1 s
        (300, SET, ASK, 101, 0),  # ask back to 102, mid 101: sample 2, next change 1.7 s later
        (400, TRADE, ASK, 102, 2),  # a buyer lifts the ask (resting side ask)
        (2000, SET, BID, 101, 3),  # mid 101.5: sample 3, the data ends 0.5 s later
        (2500, TRADE, BID, 100, 1),
    ]
)


def samples_of(ev: np.ndarray, config: FeatureConfig = BY_MID, chunk: int = 10**9) -> Samples:
    chunks = [ev[i : i + chunk] for i in range(0, len(ev), chunk)]
    return compute_samples(chunks, 1, 1000, config)


def test_hand_made_book_features_and_labels():
    s = samples_of(HAND)
    assert s.ts.tolist() == [100 * MS, 300 * MS, 2000 * MS]
    assert s.mid2.tolist() == [201, 202, 203]
    # after 100 ms the next change (300 ms, up) is within 1 s; after 300 ms none until 2000 ms: excluded;
    # after 2000 ms the data ends at 2500 ms, before the horizon: censored
    assert s.label.tolist() == [1, 0, 0]
    assert s.no_change.tolist() == [False, True, False]
    assert s.censored.tolist() == [False, False, True]
    first = s.x[0]
    assert first[COL["imbalance_1"]] == pytest.approx((10 - 5) / 15)
    assert first[COL["imbalance_3"]] == pytest.approx((10 - 15) / 25)  # asks 101 (5) and 102 (10)
    assert first[COL["spread_ticks"]] == 1
    # CKS: bid unchanged (+10 - 10), ask improved (-5); mean touch depth of the later group (10 + 5) / 2
    assert first[COL["ofi"]] == pytest.approx(-5 / 7.5)
    assert first[COL["depletion_ask"]] == 1.0  # the ask advanced: a new queue
    assert first[COL["depletion_bid"]] == 0.0
    assert first[COL["last_move"]] == -1.0
    assert first[COL["trade_flow"]] == 0.0 and first[COL["log_ms_since_trade"]] == pytest.approx(
        np.log1p(60_000)
    )
    last = s.x[2]
    # within the last second (from 1000 ms): one mid move of 0.5 tick at 101 -> bps
    assert last[COL["volatility_bps"]] == pytest.approx(1 / 202 * 1e4)
    assert last[COL["log_ms_since_trade"]] == pytest.approx(np.log1p(1600))
    assert last[COL["trade_flow"]] == 0.0  # the buy at 400 ms is older than the 1 s window
    assert s.x[1][COL["trade_flow"]] == 0.0 and s.n_trades == 2


def test_trade_flow_counts_buyer_initiated_trades_as_positive():
    ev = events(
        [(0, SET, BID, 100, 10), (0, SET, ASK, 102, 10), (50, TRADE, ASK, 102, 3), (100, SET, ASK, 101, 5)]
    )
    assert samples_of(ev).x[0][COL["trade_flow"]] == 1.0


def brute_force_labels(ev: np.ndarray, s: Samples, horizon_ns: int) -> list[int]:
    """Labels from a plain replay: the mid after each timestamp, then the first different mid after t."""
    bid, ask, st = core.new_book(1, 20_000)
    ts = ev["local_ts"]
    ends = np.flatnonzero(np.r_[ts[1:] != ts[:-1], True])
    times, mids, begin = [], [], 0
    for end in ends:
        core.apply_events(bid, ask, st, ev[begin : end + 1])
        begin = end + 1
        bb, ba = core.best_bid(st), core.best_ask(st)
        if bb >= 0 and ba >= 0:
            times.append(int(ts[end]))
            mids.append(int(bb + ba))
    out = []
    for t, m in zip(s.ts.tolist(), s.mid2.tolist(), strict=True):
        k = next(
            (k for k in range(np.searchsorted(times, t, side="right"), len(times)) if mids[k] != m), None
        )
        out.append(int(np.sign(mids[k] - m)) if k is not None and times[k] - t <= horizon_ns else 0)
    return out


@pytest.fixture(scope="module")
def synthetic_events() -> np.ndarray:
    return np.concatenate(list(load("synthetic:6000", seed=3).chunks()))


@pytest.mark.parametrize("config", [BY_MID, FeatureConfig(sample="stride", stride=7, horizon_ns=300 * MS)])
def test_labels_match_a_brute_force_replay(synthetic_events, config):
    s = compute_samples([synthetic_events], 1, 20_000, config)
    assert s.labelled.sum() > 10
    assert s.label.tolist() == brute_force_labels(synthetic_events, s, config.horizon_ns)
    assert int(s.no_change.sum() + s.censored.sum() + s.labelled.sum()) == len(s.ts)


def test_exclusion_count_grows_as_the_horizon_shrinks(synthetic_events):
    long = compute_samples([synthetic_events], 1, 20_000, FeatureConfig(horizon_ns=2000 * MS))
    short = compute_samples([synthetic_events], 1, 20_000, FeatureConfig(horizon_ns=5 * MS))
    assert short.no_change.sum() > long.no_change.sum()
    assert short.labelled.sum() < long.labelled.sum()


def test_chunking_does_not_change_anything(synthetic_events):
    whole = compute_samples([synthetic_events], 1, 20_000, FeatureConfig())
    n = len(synthetic_events)
    parts = [
        synthetic_events[: n // 3],
        synthetic_events[n // 3 : n // 3 + 1],
        synthetic_events[n // 3 + 1 :],
    ]
    split = compute_samples(parts, 1, 20_000, FeatureConfig())
    np.testing.assert_array_equal(whole.x, split.x)
    np.testing.assert_array_equal(whole.label, split.label)


@settings(max_examples=15, deadline=None)
@given(cut=st.floats(0.1, 0.9), seed=st.integers(0, 2**32 - 1))
def test_no_look_ahead_features_at_t_ignore_every_later_event(synthetic_events, cut, seed):
    """Scramble the price, size, side and kind of every event after t (times kept): the features of
    every sample at or before t are unchanged; so are they when the data simply stops at t."""
    t = int(synthetic_events["local_ts"][int(cut * len(synthetic_events))])
    later = synthetic_events["local_ts"] > t
    rng = np.random.default_rng(seed)
    scrambled = synthetic_events.copy()
    k = int(later.sum())
    scrambled["price"][later] = rng.integers(9_000, 11_000, k)
    scrambled["size"][later] = rng.integers(1, 500, k)
    scrambled["side"][later] = rng.choice([BID, ASK], k)
    scrambled["kind"][later] = rng.choice([SET, TRADE], k)
    config = FeatureConfig()
    base = compute_samples([synthetic_events], 1, 20_000, config)
    other = compute_samples([scrambled], 1, 20_000, config)
    cut_off = compute_samples([synthetic_events[~later]], 1, 20_000, config)
    upto = base.ts <= t
    assert upto.sum() > 0
    np.testing.assert_array_equal(base.x[upto], other.x[: upto.sum()])
    np.testing.assert_array_equal(base.x[upto], cut_off.x[: upto.sum()])
    np.testing.assert_array_equal(base.ts[upto], cut_off.ts[: upto.sum()])


def test_shifted_future_changes_features_not_but_labels_do(synthetic_events):
    """Delay everything after t by more than the horizon: the features up to t stay, and the samples just
    before t lose their labels (their next mid change now lies beyond the horizon)."""
    config = FeatureConfig(sample="mid", horizon_ns=200 * MS)
    t = int(synthetic_events["local_ts"][len(synthetic_events) // 2])
    shifted = synthetic_events.copy()
    later = shifted["local_ts"] > t
    shifted["local_ts"][later] += 10 * config.horizon_ns
    base = compute_samples([synthetic_events], 1, 20_000, config)
    moved = compute_samples([shifted], 1, 20_000, config)
    upto = base.ts <= t
    np.testing.assert_array_equal(base.x[upto], moved.x[: upto.sum()])
    n = int(upto.sum())
    assert moved.label[n - 1] == 0 and moved.no_change[n - 1]  # its next change came after t
    assert np.all((moved.label[:n] == base.label[:n]) | (moved.label[:n] == 0))
    kept = base.ts[:n] + config.horizon_ns < t  # next change, if within the horizon, is before t
    np.testing.assert_array_equal(moved.label[:n][kept], base.label[:n][kept])


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="sampling"):
        FeatureConfig(sample="sometimes")
    with pytest.raises(ConfigError, match="horizon"):
        FeatureConfig(horizon_ns=0)
