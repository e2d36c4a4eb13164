"""hftbacktest .npz: exact round trips, files in hftbacktest's own layout, L3 aggregation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from quotewise.book.core import apply_events, new_book, top_levels
from quotewise.data.binance import read_binance
from quotewise.data.hftbacktest import HBT_DTYPE, read_hftbacktest_npz, write_hftbacktest_npz
from quotewise.data.lobster import read_lobster
from quotewise.data.store import EventData
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import ADD, ASK, BID, CLEAR, DELETE, EVENT_DTYPE, EXECUTE, REDUCE, SET, TRADE
from quotewise.model.instrument import Instrument

# hftbacktest's constants, spelled out independently of the module under test
EXCH, LOCAL, BUY, SELL = 1 << 31, 1 << 30, 1 << 29, 1 << 28
DEPTH, TRADE_EV, CLEAR_EV, SNAPSHOT = 1, 2, 3, 4
FIELDS = [("ev", "u8"), ("exch_ts", "i8"), ("local_ts", "i8"), ("px", "f8"), ("qty", "f8")]
HBT = np.dtype([*FIELDS, ("order_id", "u8"), ("ival", "i8"), ("fval", "f8")], align=True)
INSTRUMENT = Instrument(symbol="BTCUSDT", venue="test", tick_size=0.1, lot_size=0.001)
T0 = 1_700_000_000_000_000_000  # ns since the epoch: 2023-11-14


def _events(rows: list[tuple[int, int, int, int, int]], t0: int = T0) -> np.ndarray:
    """(kind, side, price, size, order_id) rows at increasing times."""
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for i, (kind, side, price, size, oid) in enumerate(rows):
        ev[i] = (t0 + i, t0 + i + 5, price, size, oid, kind, side)
    return ev


def _book(events: np.ndarray, lo: int = 0, hi: int = 2000) -> list[list[tuple[int, int]]]:
    book = new_book(lo, hi)
    apply_events(*book, events)
    out = []
    for side in (BID, ASK):
        px, sz = np.zeros(50, np.int64), np.zeros(50, np.int64)
        k = top_levels(*book, side, 50, px, sz)
        out.append(list(zip(px[:k].tolist(), sz[:k].tolist(), strict=True)))
    return out


def test_layout_is_hftbacktests() -> None:
    assert HBT_DTYPE == HBT and HBT_DTYPE.itemsize == 64


def test_real_l2_round_trip_is_exact(tmp_path: Path) -> None:
    data = read_binance(shared_path("binance", "usdm", "btcusdt_20240808.gz"))
    path = write_hftbacktest_npz(data, tmp_path / "btc.npz")
    with np.load(path) as npz:
        raw = npz["data"]
    assert raw.dtype == HBT_DTYPE and len(raw) == len(data.events)
    assert np.all(raw["ev"] & (EXCH | LOCAL) == EXCH | LOCAL)
    back = read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001, symbol="BTCUSDT")
    assert np.array_equal(back.events, data.events)
    assert back.instrument.symbol == "BTCUSDT"
    trades = data.events["kind"] == TRADE
    # a trade resting on the ask (side -1) was an aggressive buy
    assert np.array_equal(raw["ev"][trades] & BUY != 0, data.events["side"][trades] == ASK)


def test_side_clears_round_trip(tmp_path: Path) -> None:
    events = _events(
        [
            (CLEAR, 0, 0, 0, 0),
            (SET, BID, 100, 5, 0),
            (SET, BID, 98, 2, 0),
            (SET, ASK, 101, 3, 0),
            (TRADE, BID, 100, 1, 77),
            (CLEAR, BID, 0, 0, 0),
            (CLEAR, BID, 0, 0, 0),  # an empty side
            (SET, BID, 99, 4, 0),
            (CLEAR, ASK, 0, 0, 0),
            (TRADE, 0, 99, 1, 78),  # aggressor unknown
        ]
    )
    data = EventData(events=events, instrument=INSTRUMENT)
    back = read_hftbacktest_npz(
        write_hftbacktest_npz(data, tmp_path / "c.npz"), tick_size=0.1, lot_size=0.001
    )
    assert np.array_equal(back.events, events)
    assert back.report["side_clears"] == 3


def _hbt(rows: list[tuple[int, int, float, float, int]], t0: int = T0) -> np.ndarray:
    """Rows (ev, exch_ts after t0, px, qty, order_id) in hftbacktest's array layout, local = exch + 10."""
    data = np.zeros(len(rows), HBT)
    for i, (ev, ts, px, qty, oid) in enumerate(rows):
        data[i] = (ev, t0 + ts, t0 + ts + 10, px, qty, oid, 0, 0.0)
    return data


def test_reads_a_file_in_hftbacktest_layout(tmp_path: Path) -> None:
    """A converter-style snapshot (ranged side clears + snapshot levels), diffs and trades."""
    flags = EXCH | LOCAL
    rows = [
        (flags | DEPTH | BUY, 1, 6000.0, 1.0, 0),
        (flags | DEPTH | BUY, 1, 5990.0, 0.5, 0),  # deeper than the snapshot below: survives it
        (flags | DEPTH | SELL, 1, 6001.0, 2.0, 0),
        (flags | CLEAR_EV | BUY, 2, 5999.0, 0.0, 0),  # clears bids from the best down to 5999.0
        (flags | CLEAR_EV | SELL, 2, 6003.0, 0.0, 0),
        (flags | SNAPSHOT | BUY, 2, 5999.9, 0.25, 0),
        (flags | SNAPSHOT | BUY, 2, 5999.0, 0.125, 0),
        (flags | SNAPSHOT | SELL, 2, 6000.1, 0.75, 0),
        (flags | TRADE_EV | BUY, 3, 6000.1, 0.1, 11),  # buyer-initiated: rests on the ask
        (flags | TRADE_EV | SELL, 4, 5999.9, 0.2, 12),
        (flags | DEPTH | SELL, 5, 6000.1, 0.65, 0),
    ]
    path = tmp_path / "hbt.npz"
    np.savez(path, data=_hbt(rows))
    data = read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001, symbol="X")
    ev = data.events
    got = [(int(k), int(s), int(p), int(q)) for k, s, p, q in ev[["kind", "side", "price", "size"]]]
    assert got == [
        (SET, BID, 60000, 1000),
        (SET, BID, 59900, 500),
        (SET, ASK, 60010, 2000),
        (SET, BID, 60000, 0),  # the bid clear down to 5999.0 leaves 5990.0: written out as SET 0
        (CLEAR, ASK, 0, 0),  # the ask clear covers the whole side
        (SET, BID, 59999, 250),
        (SET, BID, 59990, 125),
        (SET, ASK, 60001, 750),
        (TRADE, ASK, 60001, 100),
        (TRADE, BID, 59999, 200),
        (SET, ASK, 60001, 650),
    ]
    assert ev["order_id"][8:10].tolist() == [11, 12]
    assert np.array_equal(ev["local_ts"], ev["exch_ts"] + 10)
    assert _book(ev, 59000, 61000) == [[(59999, 250), (59990, 125), (59900, 500)], [(60001, 650)]]
    assert data.report["side_clears"] == 2


def test_split_exchange_and_local_copies(tmp_path: Path) -> None:
    """hftbacktest's order correction may write one event as an EXCH-only and a LOCAL-only row."""
    rows = [
        (EXCH | LOCAL | DEPTH | BUY, 1, 100.0, 1.0, 0),
        (EXCH | TRADE_EV | SELL, 2, 100.0, 0.5, 5),
        (EXCH | LOCAL | DEPTH | SELL, 3, 100.1, 1.0, 0),
        (LOCAL | TRADE_EV | SELL, 2, 100.0, 0.5, 5),  # the local copy of the trade: dropped
        (LOCAL | DEPTH | SELL, 4, 100.2, 1.0, 0),  # local-only without a twin: kept
    ]
    path = tmp_path / "split.npz"
    np.savez(path, data=_hbt(rows))
    data = read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001)
    assert len(data.events) == 4
    assert np.count_nonzero(data.events["kind"] == TRADE) == 1
    rep = data.report
    assert (rep["exch_only_rows"], rep["local_only_rows"], rep["local_only_duplicates_dropped"]) == (1, 2, 1)


def test_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    bid = EXCH | LOCAL | DEPTH | BUY
    np.savez(path, data=_hbt([(bid, 1, 100.0, 1.0, 0), (bid, 2, 100.05, 1.0, 0)]))
    with pytest.raises(DataError, match=r"row 1: price 100.05 is not a multiple"):
        read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001)
    np.savez(path, data=_hbt([(EXCH | LOCAL | 10, 1, 100.0, 1.0, 0)]))
    with pytest.raises(DataError, match="event kind 10 is not supported"):
        read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001)
    np.savez(path, other=np.zeros(3))
    with pytest.raises(DataError, match="'data' array"):
        read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001)
    with pytest.raises(ConfigError, match="tick_size"):
        read_hftbacktest_npz(path, tick_size=0.0, lot_size=0.001)
    with pytest.raises(TypeError):
        read_hftbacktest_npz(path)  # type: ignore[call-arg]


def test_l3_events_are_written_as_level_totals(tmp_path: Path) -> None:
    l3 = _events(
        [
            (ADD, BID, 1000, 5, 1),
            (ADD, BID, 1000, 3, 2),
            (ADD, ASK, 1002, 4, 3),
            (REDUCE, BID, 1000, 2, 1),
            (EXECUTE, ASK, 1002, 1, 3),
            (DELETE, BID, 1000, 3, 2),
        ]
    )
    data = EventData(events=l3, instrument=INSTRUMENT)
    path = write_hftbacktest_npz(data, tmp_path / "l3.npz")
    with np.load(path) as npz:
        raw = npz["data"]
    kinds = (raw["ev"] & 0xFF).tolist()
    assert kinds == [DEPTH, DEPTH, DEPTH, DEPTH, TRADE_EV, DEPTH, DEPTH]
    assert np.round(raw["qty"] / 0.001).astype(int).tolist() == [5, 8, 4, 6, 1, 3, 3]
    assert raw["ev"][4] & BUY  # executing a resting ask is an aggressive buy
    back = read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001)
    assert _book(back.events) == _book(l3) == [[(1000, 3)], [(1002, 3)]]


def test_real_l3_lobster_keeps_every_book(tmp_path: Path) -> None:
    l3 = read_lobster(shared_path("lobster", "AAPL_2012-06-21_10_first999"))
    path = write_hftbacktest_npz(l3, tmp_path / "aapl.npz")
    back = read_hftbacktest_npz(path, tick_size=l3.instrument.tick_size, lot_size=1.0)
    kinds = l3.events["kind"]
    prints = np.count_nonzero((kinds == EXECUTE) | (kinds == TRADE))
    assert np.count_nonzero(back.events["kind"] == TRADE) == prints
    ends = np.cumsum(np.where(kinds == EXECUTE, 2, 1))  # rows written up to and including each event
    prices = l3.events["price"][kinds != CLEAR]
    lo, hi = int(prices.min()), int(prices.max())
    for i in range(0, len(kinds), 97):
        assert _book(back.events[: ends[i]], lo, hi) == _book(l3.events[: i + 1], lo, hi)


def test_microsecond_times_of_older_versions_are_read_as_such(tmp_path: Path) -> None:
    rows = [
        (EXCH | LOCAL | DEPTH | BUY, 1, 100.0, 1.0, 0),
        (EXCH | LOCAL | TRADE_EV | SELL, 2, 100.0, 0.5, 7),
    ]
    path = tmp_path / "times.npz"
    np.savez(path, data=_hbt(rows, t0=T0 // 1000))
    data = read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001)
    assert data.report["time_units"] == {"local": "us", "exchange": "us"}
    assert data.events["exch_ts"].tolist() == [T0 + 1_000, T0 + 2_000]
    assert np.array_equal(data.events["local_ts"], data.events["exch_ts"] + 10_000)
    mixed = _hbt(rows)
    mixed["local_ts"][1] //= 1000
    np.savez(path, data=mixed)
    with pytest.raises(DataError, match=r"times.npz: row 1: local_ts \d+ is not in ns like the first one"):
        read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001)
    late = _hbt(rows)
    late["local_ts"] += 2 * 3_600 * 10**9  # local times written in UTC+2
    np.savez(path, data=late)
    with pytest.raises(DataError, match=r"times.npz: local receive times are 2.0 hours ahead of"):
        read_hftbacktest_npz(path, tick_size=0.1, lot_size=0.001)
