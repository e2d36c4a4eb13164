"""The synthetic market: deterministic, chunkable, a valid L3 stream, and a market worth trading.

Validity is checked two independent ways: a numba replay through the backtest's own L2 book
(never crossed, never one-sided, no clamps) and a pure-Python order map (every removal names a
live order, at its side and price, with enough size; executions hit the head of the best queue).
"""

from __future__ import annotations

from collections import deque

import numba as nb
import numpy as np
import pytest

from quotewise.book import core
from quotewise.data.store import EventData
from quotewise.data.synthetic import (
    SYNTH_INSTRUMENT,
    SyntheticMarket,
    SyntheticParams,
    generate_synthetic,
    iter_synthetic_chunks,
    make_params,
)
from quotewise.errors import ConfigError
from quotewise.model.events import ADD, BID, DELETE, EVENT_DTYPE, EXECUTE, REDUCE, EventKind

N_BIG = 1_000_000
N_DICT = 200_000

# A deliberately cramped market: tiny price window, tiny order pool, violent fair value, so that
# recentring, pool displacement and edge clamping all happen and are checked too.
STRESS = {
    "window_ticks": 64,
    "placement_max_ticks": 7,
    "volatility_ticks": 8.0,
    "jump_rate": 2.0,
    "jump_mean_ticks": 15.0,
    "max_jump_ticks": 40.0,
    "max_orders": 1_024,
    "initial_orders_per_side": 40,
    "limit_rate": 600.0,
    "cancel_rate": 0.2,
    "informed_rate": 20.0,
}


@nb.njit(cache=True)
def _replay(events, bid, ask, st):
    """Apply every event; record 2*mid, spread and touch sizes; return the first bad index or -1.

    Bad: after the first two events (one bid, one ask) a side is empty or the book is crossed.
    """
    n = events.shape[0]
    mid2 = np.zeros(n, np.int64)
    spread = np.zeros(n, np.int64)
    touch = np.zeros(n, np.int64)
    bad = -1
    for k in range(n):
        e = events[k]
        core.apply_event(bid, ask, st, e["kind"], e["side"], e["price"], e["size"])
        b = core.best_bid(st)
        a = core.best_ask(st)
        if k >= 1 and bad < 0 and (b < 0 or a < 0 or b >= a):
            bad = k
        mid2[k] = a + b
        spread[k] = a - b
        if b >= 0 and a >= 0:
            touch[k] = bid[b - st[core.BASE]] + ask[a - st[core.BASE]]
    return mid2, spread, touch, bad


def same_events(a: np.ndarray, b: np.ndarray) -> bool:
    """Field by field, byte for byte (the dtype's padding bytes carry no data)."""
    return a.dtype == b.dtype and all(a[f].tobytes() == b[f].tobytes() for f in EVENT_DTYPE.names)


def replay(events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    lo, hi = int(events["price"].min()), int(events["price"].max())
    bid, ask, st = core.new_book(lo, hi)
    mid2, spread, touch, bad = _replay(events, bid, ask, st)
    return mid2, spread, touch, int(bad), st


def check_l3(events: np.ndarray) -> None:
    """Independent order map: every event must be consistent with the orders it names."""
    orders: dict[int, list[int]] = {}  # id -> [side, price, remaining]
    queues: dict[tuple[int, int], deque[int]] = {}
    for i, (kind, side, price, size, oid) in enumerate(
        zip(
            events["kind"].tolist(),
            events["side"].tolist(),
            events["price"].tolist(),
            events["size"].tolist(),
            events["order_id"].tolist(),
            strict=True,
        )
    ):
        where = f"event {i}: kind {kind} id {oid}"
        assert side in (1, -1), where
        assert size > 0, where
        if kind == ADD:
            assert oid not in orders and oid > 0, where
            orders[oid] = [side, price, size]
            queues.setdefault((side, price), deque()).append(oid)
            continue
        assert oid in orders, f"{where}: not a live order"
        o_side, o_price, left = orders[oid]
        assert (o_side, o_price) == (side, price), f"{where}: side/price differ from the order's"
        if kind == REDUCE:
            assert size < left, f"{where}: reduce of {size} leaves nothing of {left}"
            orders[oid][2] = left - size
            continue
        if kind == DELETE:
            assert size == left, f"{where}: delete of {size}, order has {left}"
        elif kind == EXECUTE:
            assert size <= left, f"{where}: executes {size} of {left}"
            queue = queues[(side, price)]
            assert queue[0] == oid, f"{where}: not the head of its FIFO queue"
            prices = [p for (s, p), q in queues.items() if s == side and q]
            assert price == (max(prices) if side == BID else min(prices)), f"{where}: not the best price"
        else:
            raise AssertionError(f"{where}: unexpected kind in a pure L3 stream")
        if size == left:
            del orders[oid]
            queues[(side, price)].remove(oid)
        else:
            orders[oid][2] = left - size


@pytest.fixture(scope="module")
def big() -> EventData:
    return generate_synthetic(N_BIG, seed=3)


@pytest.fixture(scope="module")
def big_replay(big: EventData) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    return replay(big.events)


def test_same_seed_is_byte_identical_and_seeds_differ() -> None:
    a = generate_synthetic(50_000, seed=5)
    b = generate_synthetic(50_000, seed=5)
    c = generate_synthetic(50_000, seed=6)
    assert a.events.dtype == EVENT_DTYPE
    assert a.events.tobytes() == b.events.tobytes()
    assert a.report == b.report
    assert not same_events(a.events, c.events)
    assert not np.array_equal(a.events["price"], c.events["price"])


@pytest.mark.parametrize(
    ("n", "chunk", "params"),
    [(300_001, 7_919, {}), (3_000, 1, {}), (60_000, 5, STRESS), (60_000, 4_099, STRESS)],
)
def test_chunks_concatenate_to_the_one_shot_stream(n: int, chunk: int, params: dict) -> None:
    one_shot = generate_synthetic(n, seed=11, **params)
    chunks = list(iter_synthetic_chunks(n, seed=11, chunk_size=chunk, **params))
    assert [len(c) for c in chunks] == [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])
    assert same_events(np.concatenate(chunks), one_shot.events)


def test_replay_never_crossed_nor_one_sided(big: EventData, big_replay) -> None:
    _, spread, _, bad, st = big_replay
    assert bad == -1, f"book crossed or one-sided after event {bad}"
    assert st[core.CROSS_FIXES] == 0 and st[core.NEG_CLAMPS] == 0 and st[core.OUT_OF_RANGE] == 0
    assert spread[1:].min() >= 1


def test_stress_market_stays_valid() -> None:
    data = generate_synthetic(200_000, seed=3, **STRESS)
    sim = data.report["simulator"]
    assert sim["recentres"] > 0 and sim["recentre_deletes"] > 0
    assert sim["displaced_orders"] > 0 and sim["clamped_placements"] > 0 and sim["refills"] > 0
    _, _, _, bad, st = replay(data.events)
    assert bad == -1
    assert st[core.CROSS_FIXES] == 0 and st[core.NEG_CLAMPS] == 0 and st[core.OUT_OF_RANGE] == 0
    check_l3(data.events)


def test_every_removal_names_a_live_order(big: EventData) -> None:
    check_l3(big.events[:N_DICT])


def test_kinds_in_plausible_proportions(big: EventData) -> None:
    counts = big.report["counts"]
    assert sum(counts.values()) == N_BIG
    share = {k: v / N_BIG for k, v in counts.items()}
    assert 0.35 < share["ADD"] < 0.60
    assert 0.30 < share["DELETE"] < 0.55
    assert 0.02 < share["REDUCE"] < 0.15
    assert 0.02 < share["EXECUTE"] < 0.12
    assert counts["TRADE"] == counts["SET"] == counts["CLEAR"] == 0
    kinds = np.bincount(big.events["kind"], minlength=8)
    assert all(kinds[k.value] == counts[k.name] for k in EventKind)


def test_timestamps_and_rate(big: EventData) -> None:
    ts = big.events["exch_ts"]
    assert np.all(np.diff(ts) >= 0)
    assert np.array_equal(big.events["local_ts"], ts)
    assert ts[0] == SyntheticParams().start_ns
    rate = big.report["events_per_s"]
    assert 1_000 < rate < 2_000
    per_ms = np.bincount((ts - ts[0]) // 1_000_000)
    assert per_ms.max() >= 5  # bursts: several events within one millisecond


def test_feed_delay_shifts_local_time() -> None:
    events = generate_synthetic(5_000, seed=1, feed_delay_ns=250_000).events
    assert np.all(events["local_ts"] - events["exch_ts"] == 250_000)


def test_mid_moves_but_stays_in_a_sane_band(big: EventData, big_replay) -> None:
    mid2, spread, touch, _, _ = big_replay
    t = big.events["exch_ts"]
    grid = np.arange(t[0] + 1_000_000_000, t[-1], 1_000_000_000)
    mid = mid2[np.searchsorted(t, grid, side="right") - 1] / 2.0
    step = np.diff(mid)
    assert 0.3 < step.std() < 10.0  # ticks per second
    assert mid.min() > 9_000 and mid.max() < 11_000  # within 10% of 100.00 over ~11 minutes
    assert 1.0 <= spread[1000:].mean() < 3.0
    assert 10 < touch[1000:].mean() / 2 < 1_000


def _aggressor_continuation(events: np.ndarray, mid2: np.ndarray, horizon: int) -> np.ndarray:
    """Mid move after each market order, from just after it, signed by the aggressor's side."""
    ex = np.flatnonzero(events["kind"] == EXECUTE)
    new = np.r_[True, (np.diff(ex) > 1) | (np.diff(events["exch_ts"][ex]) > 0)]
    first = ex[new]
    last = ex[np.r_[new[1:], True]]
    keep = (first > 1_000) & (last + horizon < len(events))
    first, last = first[keep], last[keep]
    aggressor = -events["side"][first].astype(np.float64)  # resting ask hit = a buy = +1
    return aggressor * (mid2[last + horizon] - mid2[last]) / 2.0


def test_passive_orders_suffer_adverse_selection(big: EventData, big_replay) -> None:
    """After a market order the mid keeps moving its way: resting on the other side loses."""
    events = big.events[:300_000]
    moves = _aggressor_continuation(events, big_replay[0][:300_000], horizon=200)
    t_stat = moves.mean() / moves.std() * np.sqrt(len(moves))
    assert moves.mean() > 0.1 and t_stat > 8
    # the drift comes from informed flow: without it, trades carry no information
    noise = generate_synthetic(300_000, seed=3, informed_rate=0.0).events
    noise_moves = _aggressor_continuation(noise, replay(noise)[0], horizon=200)
    assert abs(noise_moves.mean()) < 0.05
    assert moves.mean() > noise_moves.mean() + 0.1


def test_report_and_instrument(big: EventData) -> None:
    assert big.instrument == SYNTH_INSTRUMENT
    assert (big.instrument.symbol, big.instrument.venue) == ("SYNTH", "synthetic")
    assert big.instrument.tick_size == 0.01 and big.instrument.lot_size == 1
    rep = big.report
    assert rep["seed"] == 3 and rep["n_events"] == N_BIG
    assert rep["params"] == SyntheticParams().model_dump()
    assert rep["duration_s"] > 0
    assert rep["price_min_ticks"] == big.events["price"].min()
    assert rep["price_max_ticks"] == big.events["price"].max()
    assert rep["price_min"] == pytest.approx(rep["price_min_ticks"] * 0.01)
    sim = rep["simulator"]
    assert sim["recentres"] == sim["clamped_placements"] == sim["displaced_orders"] == 0
    assert sim["informed_market_orders"] > 0 and sim["noise_market_orders"] > 0


def test_opening_is_pure_l3_adds() -> None:
    p = SyntheticParams()
    events = generate_synthetic(2 * p.initial_orders_per_side, seed=0).events
    assert np.all(events["kind"] == ADD)
    assert list(events["side"][:4]) == [1, -1, 1, -1]
    assert np.all(events["exch_ts"] == p.start_ns)
    assert np.array_equal(events["order_id"], np.arange(1, len(events) + 1))


def test_market_object_continues_the_stream() -> None:
    market = SyntheticMarket(seed=4)
    parts = [market.generate(n) for n in (0, 10, 12_345, 1)]
    assert same_events(np.concatenate(parts), generate_synthetic(12_356, seed=4).events)
    assert np.isfinite(market.fair_value)


def test_empty_generation() -> None:
    data = generate_synthetic(0)
    assert len(data.events) == 0 and data.report["duration_s"] == 0.0
    assert list(iter_synthetic_chunks(0)) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"market_rate": -1.0}, "market_rate"),
        ({"limit_rate": 0.0}, "limit_rate"),
        ({"cancel_rate": float("inf")}, "cancel_rate"),
        ({"reduce_prob": 1.5}, "reduce_prob"),
        ({"min_side_orders": 1}, "min_side_orders"),
        ({"initial_orders_per_side": 5}, "min_side_orders"),
        ({"window_ticks": 100, "placement_max_ticks": 40}, "window_ticks"),
        ({"max_orders": 100}, "max_orders"),
        ({"not_a_knob": 1}, "not_a_knob"),
    ],
)
def test_bad_parameters_are_rejected_clearly(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        generate_synthetic(10, **overrides)
    with pytest.raises(ConfigError, match="invalid synthetic market parameters"):
        make_params(**overrides)


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(ConfigError, match="n_events"):
        generate_synthetic(-1)
    with pytest.raises(ConfigError, match="chunk_size"):
        next(iter_synthetic_chunks(10, chunk_size=0))


def test_params_object_with_overrides() -> None:
    base = SyntheticParams(market_rate=5.0)
    merged = make_params(base, informed_rate=0.0)
    assert (merged.market_rate, merged.informed_rate) == (5.0, 0.0)
    assert make_params(base) is base
    a = generate_synthetic(2_000, seed=1, params=base).events
    b = generate_synthetic(2_000, seed=1, market_rate=5.0).events
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("order_id", 10**12, "not a live order"),
        ("price", 1, "side/price differ"),
        ("size", 10**9, "executes"),
    ],
)
def test_the_order_map_check_catches_corruption(field: str, value: int, message: str) -> None:
    events = generate_synthetic(20_000, seed=8).events.copy()
    i = int(np.flatnonzero(events["kind"] == EXECUTE)[0])
    events[field][i] = value
    with pytest.raises(AssertionError, match=message):
        check_l3(events)
