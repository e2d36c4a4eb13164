"""Kalshi websocket reader on small hand-written captures (no real Kalshi files ship with the data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quotewise.book.orderbook import OrderBook
from quotewise.data.convert import detect_format, load_source
from quotewise.data.kalshi import read_kalshi
from quotewise.data.store import EventData
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, TRADE

T0_NS = 1_735_689_600_000_000_000  # 2025-01-01
TICKER = "KXHIGHNY-25JAN01-B45.5"
OTHER = "KXHIGHNY-25JAN01-B47.5"


def _snapshot(seq: int, ticker: str = TICKER) -> dict[str, Any]:
    return {
        "type": "orderbook_snapshot",
        "sid": 2,
        "seq": seq,
        "msg": {
            "market_ticker": ticker,
            "market_id": "9b0f6b43-5b68-4f9f-9f02-9a2d1ad8c5f0",
            "yes": [[38, 300], [40, 100], [42, 50]],
            "no": [[40, 20], [50, 30], [55, 70]],
        },
    }


def _delta(seq: int, price: int, delta: int, side: str, ticker: str = TICKER) -> dict[str, Any]:
    return {
        "type": "orderbook_delta",
        "sid": 2,
        "seq": seq,
        "msg": {"market_ticker": ticker, "price": price, "delta": delta, "side": side},
    }


def _trade(yes_price: int, count: int, taker_side: str) -> dict[str, Any]:
    return {
        "type": "trade",
        "sid": 3,
        "msg": {
            "trade_id": "d91bc706-ee49-470d-82d8-11418bda6fed",
            "market_ticker": TICKER,
            "yes_price": yes_price,
            "no_price": 100 - yes_price,
            "count": count,
            "taker_side": taker_side,
            "ts": T0_NS // 1_000_000_000,
        },
    }


SUBSCRIBED = {"type": "subscribed", "id": 1, "msg": {"channel": "orderbook_delta", "sid": 2}}


def _capture() -> list[dict[str, Any]]:
    return [
        SUBSCRIBED,
        _snapshot(1),
        _delta(2, 42, 25, "yes"),  # YES bid 0.42: 50 -> 75
        _delta(3, 55, -70, "no"),  # NO bid 0.55 gone: YES ask 0.45 gone
        _trade(50, 10, "yes"),
        _delta(4, 50, -10, "no"),  # the trade took 10 of the YES ask at 0.50
        _trade(42, 5, "no"),
        _delta(5, 42, -5, "yes"),
    ]


def _write(path: Path, messages: list[dict[str, Any]]) -> Path:
    text = "".join(f"{T0_NS + i * 1_000_000} {json.dumps(m)}\n" for i, m in enumerate(messages))
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def _book(data: EventData, lines: int) -> OrderBook:
    """The book after the first ``lines`` lines of a capture written by :func:`_write`."""
    book = OrderBook(0, 100)
    ev = data.events
    book.apply(ev[ev["local_ts"] < T0_NS + lines * 1_000_000])
    return book


def _levels(book: OrderBook, side: int) -> dict[int, int]:
    return {p: book.size_at(side, p) for p in range(101) if book.size_at(side, p)}


def test_no_bids_are_yes_asks_at_100_minus_the_price(tmp_path: Path) -> None:
    data = read_kalshi(_write(tmp_path / "cap.txt", _capture()))
    after_snapshot = _book(data, 2)
    assert _levels(after_snapshot, BID) == {38: 300, 40: 100, 42: 50}
    assert _levels(after_snapshot, ASK) == {60: 20, 50: 30, 45: 70}  # a NO bid at 40 is a YES ask at 60
    assert (after_snapshot.best_bid, after_snapshot.best_ask) == (42, 45)
    inst = data.instrument
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size) == ("kalshi", TICKER, 0.01, 1.0)
    assert (inst.min_price, inst.max_price, inst.quote) == (0.01, 0.99, "USD")


def test_deltas_keep_level_totals(tmp_path: Path) -> None:
    data = read_kalshi(_write(tmp_path / "cap.txt", _capture()))
    assert _book(data, 3).size_at(BID, 42) == 75
    after_no = _book(data, 4)
    assert after_no.size_at(ASK, 45) == 0
    assert after_no.best_ask == 50
    end = _book(data, 8)
    assert _levels(end, BID) == {38: 300, 40: 100, 42: 70}
    assert _levels(end, ASK) == {60: 20, 50: 20}


def test_trades_rest_opposite_the_taker(tmp_path: Path) -> None:
    data = read_kalshi(_write(tmp_path / "cap.txt", _capture()))
    trades = data.events[data.events["kind"] == TRADE]
    assert trades["side"].tolist() == [ASK, BID]  # taker yes lifted the ask; taker no hit the bid
    assert trades["price"].tolist() == [50, 42]
    assert trades["size"].tolist() == [10, 5]
    assert data.report["messages"] == {
        "subscribed": 1,
        "orderbook_snapshot": 1,
        "orderbook_delta": 4,
        "trade": 2,
    }
    assert data.report["skipped"] == {"subscribed": 1}
    assert data.report["seq_gaps"] == 0
    np.testing.assert_array_equal(data.events["exch_ts"], data.events["local_ts"])


def test_a_seq_gap_is_counted_and_warned(tmp_path: Path) -> None:
    messages = _capture()
    del messages[3]  # seq 3 lost
    data = read_kalshi(_write(tmp_path / "cap.txt", messages))
    assert data.report["seq_gaps"] == 1
    assert any("sid 2 seq 2 then 4" in w for w in data.report["warnings"])


def test_one_market_is_read_and_the_others_counted(tmp_path: Path) -> None:
    messages = [_snapshot(1, OTHER), _delta(2, 40, 5, "yes", OTHER), *_capture()[1:]]
    for seq, msg in enumerate((m for m in messages if "seq" in m), 1):
        msg["seq"] = seq
    path = _write(tmp_path / "cap.txt", messages)
    first = read_kalshi(path)
    assert first.instrument.symbol == OTHER  # the default: the first market with a snapshot
    assert any("1 other market" in w for w in first.report["warnings"])
    ours = read_kalshi(path, ticker=TICKER)
    assert ours.report["tickers"] == {OTHER: 2, TICKER: 7}
    assert ours.report["skipped"] == {"other_tickers": 2}
    assert load_source(path, symbol=TICKER).instrument.symbol == TICKER


def test_deltas_before_the_snapshot_are_skipped(tmp_path: Path) -> None:
    messages = [_delta(1, 40, 5, "yes"), *_capture()[1:]]
    data = read_kalshi(_write(tmp_path / "cap.txt", messages))
    assert data.report["skipped"] == {"deltas_before_snapshot": 1}
    assert _book(data, 2).size_at(BID, 40) == 100


def test_gzip_and_detection_by_content(tmp_path: Path) -> None:
    plain = read_kalshi(_write(tmp_path / "cap.txt", _capture()))
    gz = _write(tmp_path / "cap.gz", _capture())
    assert detect_format(gz) == "kalshi"  # by the subscription acknowledgement
    assert detect_format(_write(tmp_path / "b.txt", _capture()[1:])) == "kalshi"
    np.testing.assert_array_equal(load_source(gz).events["price"], plain.events["price"])


def test_a_malformed_line_names_its_number(tmp_path: Path) -> None:
    path = _write(tmp_path / "cap.txt", _capture())
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("{", "{{", 1)
    path.write_text("".join(lines))
    with pytest.raises(DataError, match=r"cap\.txt:4: malformed line"):
        read_kalshi(path)
    messages = _capture()
    del messages[2]["msg"]["delta"]
    with pytest.raises(DataError, match=r"cap2\.txt:3: malformed message \(KeyError"):
        read_kalshi(_write(tmp_path / "cap2.txt", messages))
