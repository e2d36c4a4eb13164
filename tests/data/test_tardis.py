"""tardis.dev CSV reader: the real fixtures, replayed against an independent parse, and edge cases."""

from __future__ import annotations

import csv
import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from quotewise.book.core import CROSS_FIXES, apply_events, best_ask, best_bid, new_book, top_levels
from quotewise.data.store import EventData
from quotewise.data.tardis import read_tardis
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, CLEAR, SET, TRADE

SNAPSHOT_FILES = [
    "binance-futures_book_snapshot_5_BTCUSDT.csv",
    "binance-futures_book_snapshot_25_BTCUSDT.csv",
    "huobi-dm-swap_quotes_BTC-USD.csv",
]


def _rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def _ticks(text: str, step: float) -> int:
    value = Decimal(text) / Decimal(repr(step))
    assert value == value.to_integral_value()
    return int(value)


def _listed(row: dict[str, str], side: str, tick: float, lot: float) -> list[tuple[int, int]]:
    """The row's levels of ``side`` ("bids"/"asks") as (ticks, lots), best first."""
    if "ask_price" in row:
        pairs = [(row[f"{side[:3]}_price"], row[f"{side[:3]}_amount"])]
    else:
        depth = sum(1 for k in row if k.startswith(f"{side}[") and k.endswith(".price"))
        pairs = [(row[f"{side}[{i}].price"], row[f"{side}[{i}].amount"]) for i in range(depth)]
    return [(_ticks(p, tick), _ticks(q, lot)) for p, q in pairs if p]


def _book_for(data: EventData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prices = data.events["price"][data.events["kind"] != CLEAR]
    return new_book(int(prices.min()) - 10, int(prices.max()) + 10)


def _top(book: tuple[np.ndarray, np.ndarray, np.ndarray], side: int, n: int) -> list[tuple[int, int]]:
    px, sz = np.zeros(n, np.int64), np.zeros(n, np.int64)
    k = top_levels(*book, side, n, px, sz)
    return list(zip(px[:k].tolist(), sz[:k].tolist(), strict=True))


@pytest.mark.parametrize("name", SNAPSHOT_FILES)
def test_snapshot_differences_reproduce_every_row(name: str) -> None:
    path = shared_path("tardis", name)
    data = read_tardis(path)
    rows = _rows(path)
    ev = data.events
    tick, lot = data.instrument.tick_size, data.instrument.lot_size
    assert ev["kind"][0] == CLEAR and np.all(ev["kind"][1:] == SET)
    assert data.report["data_type"] == ("quotes" if "quotes" in name else "book_snapshot")
    times = ev["local_ts"]
    assert len({r["local_timestamp"] for r in rows}) == len(rows)  # one row per local time
    # replay row by row: the events of one row share its local time
    book = _book_for(data)
    start = 0
    for row in rows:
        local = int(row["local_timestamp"]) * 1000
        end = start + int(np.count_nonzero(times[start:] == local))
        apply_events(*book, ev[start:end])
        start = end
        bids, asks = _listed(row, "bids", tick, lot), _listed(row, "asks", tick, lot)
        assert _top(book, BID, len(bids)) == bids
        assert _top(book, ASK, len(asks)) == asks
    assert start == len(ev)
    assert book[2][CROSS_FIXES] == 0
    # only differences are emitted: far fewer events than listed levels
    if "snapshot" in name:
        assert len(ev) < sum(len(_listed(r, "bids", tick, lot)) * 2 for r in rows) / 2


def test_incremental_book() -> None:
    path = shared_path("tardis", "deribit_incremental_book_L2_BTC-PERPETUAL.csv")
    data = read_tardis(path)
    rows = _rows(path)
    assert (data.instrument.symbol, data.instrument.venue) == ("BTC-PERPETUAL", "deribit")
    assert data.instrument.tick_size == 0.1 and data.instrument.lot_size == 1.0
    ev = data.events
    assert ev["kind"].tolist() == [CLEAR] + [SET] * len(rows)
    assert ev["side"][1:].tolist() == [BID if r["side"] == "bid" else ASK for r in rows]
    book = _book_for(data)
    apply_events(*book, ev)
    assert book[2][CROSS_FIXES] == 0
    bb, ba = best_bid(book[2]), best_ask(book[2])
    assert bb < 0 or bb < ba
    assert ba == 64215
    assert data.report["snapshots"] == 1


def test_trades() -> None:
    path = shared_path("tardis", "bitmex_trades_XBTUSD.csv")
    data = read_tardis(path)
    rows = _rows(path)
    ev = data.events
    assert np.all(ev["kind"] == TRADE)
    assert ev["side"].tolist() == [ASK if r["side"] == "buy" else BID for r in rows]
    assert ev["size"].tolist() == [int(r["amount"]) for r in rows]
    assert data.report["trade_ids_not_numeric"] == len(rows)  # BitMEX trade ids are UUIDs
    assert np.all(ev["order_id"] == 0)
    assert ev["exch_ts"][0] == int(rows[0]["timestamp"]) * 1000


HEAD = "exchange,symbol,timestamp,local_timestamp"
T0_US = 1_600_000_000_000_000  # 2020-09-13 in microseconds, as tardis.dev writes times


def _after(t0: int, line: str) -> str:
    fields = line.split(",")
    fields[2:4] = [str(t0 + int(f)) for f in fields[2:4]]
    return ",".join(fields)


def _write(path: Path, header: str, lines: list[str], t0: int = T0_US) -> Path:
    """A tardis CSV whose rows' two times are ``t0`` plus the ones written in ``lines``."""
    if header.startswith(HEAD):
        lines = [_after(t0, line) for line in lines]
    text = "\n".join([header, *lines]) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_snapshot_window_rule(tmp_path: Path) -> None:
    """Levels falling out of the window stay; unlisted levels inside the window go."""
    levels = [f"{s}[{i}].{f}" for i in range(2) for s in ("asks", "bids") for f in ("price", "amount")]
    header = ",".join([HEAD, *levels])
    lines = [
        "x,S,1,10,10.3,1,10.2,1,10.4,1,10.1,1",
        "x,S,2,20,10.3,1,10.2,1,10.4,1,10.0,2",  # bid 10.1 unlisted inside the window: removed
        "x,S,3,30,10.5,3,10.4,1,10.6,1,10.3,1",  # market up: old bids 10.2, 10.0 fall out, kept
        "x,S,4,40,10.3,2,10.2,5,10.4,1,,",  # one bid listed: the whole bid side is shown
    ]
    data = read_tardis(_write(tmp_path / "snap.csv.gz", header, lines))
    ev = data.events
    book = new_book(0, 200)
    states = []
    for t in (10, 20, 30, 40):
        apply_events(*book, ev[ev["local_ts"] == (T0_US + t) * 1000])
        states.append((_top(book, BID, 5), _top(book, ASK, 5)))
    assert states[1][0] == [(102, 1), (100, 2)]
    assert states[2][0] == [(104, 1), (103, 1), (102, 1), (100, 2)]
    assert states[2][1] == [(105, 3), (106, 1)]
    assert states[3] == ([(102, 5)], [(103, 2), (104, 1), (105, 3), (106, 1)])
    assert book[2][CROSS_FIXES] == 0


def test_incremental_snapshot_runs_clear_the_book(tmp_path: Path) -> None:
    header = f"{HEAD},is_snapshot,side,price,amount"
    lines = [
        "x,S,1,10,true,bid,5.0,1",
        "x,S,1,10,true,ask,5.5,1",
        "x,S,2,20,false,bid,5.1,2",
        "x,S,3,30,true,bid,4.0,3",
        "x,S,3,30,true,ask,4.5,3",
        "x,S,4,40,false,ask,4.5,0",
    ]
    ev = read_tardis(_write(tmp_path / "inc.csv", header, lines)).events
    assert ev["kind"].tolist() == [CLEAR, SET, SET, SET, CLEAR, SET, SET, SET]
    assert ev["price"].tolist() == [0, 50, 55, 51, 0, 40, 45, 45]
    assert ev["size"][-1] == 0


def test_quotes_with_an_empty_side(tmp_path: Path) -> None:
    header = f"{HEAD},ask_amount,ask_price,bid_price,bid_amount"
    lines = ["x,S,1,10,4,2.5,2.4,3", "x,S,2,20,4,2.5,,"]
    data = read_tardis(_write(tmp_path / "q.csv", header, lines))
    book = new_book(0, 100)
    apply_events(*book, data.events)
    assert best_bid(book[2]) == -1 and best_ask(book[2]) == 25
    assert data.report["empty_prices_skipped"] == 1


def test_trades_numeric_ids_and_unknown_side(tmp_path: Path) -> None:
    header = f"{HEAD},id,side,price,amount"
    lines = ["x,S,1,10,123,buy,1.5,2", "x,S,2,20,124,unknown,1.5,1", "x,S,3,30,,sell,1.5,1"]
    data = read_tardis(_write(tmp_path / "t.csv", header, lines))
    assert data.events["order_id"].tolist() == [123, 124, 0]
    assert data.events["side"].tolist() == [ASK, 0, BID]
    assert data.report["trades_unknown_side"] == 1 and data.report["trade_ids_not_numeric"] == 1


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not a tardis\.dev CSV"):
        read_tardis(_write(tmp_path / "other.csv", "a,b,c", ["1,2,3"]))
    header = f"{HEAD},id,side,price,amount"
    with pytest.raises(DataError, match=r"back.csv:3: non-monotonic timestamps"):
        read_tardis(_write(tmp_path / "back.csv", header, ["x,S,1,10,1,buy,1.5,2", "x,S,2,5,2,buy,1.5,1"]))
    with pytest.raises(DataError, match=r"price.csv:3: .*'1.5x'"):
        read_tardis(_write(tmp_path / "price.csv", header, ["x,S,1,10,1,buy,1.5,2", "x,S,2,20,2,buy,1.5x,1"]))
    with pytest.raises(DataError, match="off the price grid"):
        read_tardis(_write(tmp_path / "grid.csv", header, ["x,S,1,10,1,buy,1.55,2"]), tick_size=0.1)


def test_time_units_are_checked_not_assumed(tmp_path: Path) -> None:
    header = f"{HEAD},id,side,price,amount"
    rows = ["x,S,1,10,1,buy,1.5,2", "x,S,2,20,2,buy,1.5,1"]
    documented = read_tardis(_write(tmp_path / "us.csv", header, rows))
    assert documented.report["time_units"] == {"local": "us", "exchange": "us"}
    assert documented.events["exch_ts"].tolist() == [(T0_US + 1) * 1000, (T0_US + 2) * 1000]
    in_ns = read_tardis(_write(tmp_path / "ns.csv", header, rows, t0=T0_US * 1000))
    assert in_ns.report["time_units"] == {"local": "ns", "exchange": "ns"}
    assert in_ns.events["exch_ts"].tolist() == [T0_US * 1000 + 1, T0_US * 1000 + 2]
    mixed = [_after(T0_US, rows[0]), f"x,S,{T0_US + 2},{(T0_US + 20) // 1000},2,buy,1.5,1"]
    with pytest.raises(DataError, match=r"mixed.csv:3: local_timestamp \d+ is not in us like the first one"):
        read_tardis(_write(tmp_path / "mixed.csv", header, mixed, t0=0))
    with pytest.raises(DataError, match=r"tiny.csv:2: timestamp 1 is no epoch time in s, ms, us or ns"):
        read_tardis(_write(tmp_path / "tiny.csv", header, rows, t0=0))


def test_incremental_book_starts_at_its_first_snapshot(tmp_path: Path) -> None:
    header = f"{HEAD},is_snapshot,side,price,amount"
    updates = ["x,S,1,1000000,false,bid,5.0,1", "x,S,2,2000000,false,ask,5.5,1"]
    path = _write(tmp_path / "nosnap.csv", header, updates)
    with pytest.raises(DataError, match=r"nosnap.csv: 2 incremental_book_L2 rows but no is_snapshot=true"):
        read_tardis(path)
    later = [*updates, "x,S,3,3500000,true,bid,4.0,3", "x,S,3,3500000,true,ask,4.5,3"]
    data = read_tardis(_write(tmp_path / "late.csv", header, later))
    assert data.report["warnings"] == [
        f"{tmp_path / 'late.csv'}:4: the book starts at the first is_snapshot row, 2.5 s after the first "
        "row; the 2 update rows before it were skipped"
    ]
    assert data.events["kind"].tolist() == [CLEAR, SET, SET] and data.events["price"].tolist() == [0, 40, 45]
    assert data.report["rows_before_first_snapshot"] == 2
