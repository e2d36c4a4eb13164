"""Polymarket market-channel reader: captures built from the real example messages in ../shared/data."""

from __future__ import annotations

import copy
import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import shared_path
from quotewise.book.orderbook import OrderBook
from quotewise.data.convert import detect_format, load_source
from quotewise.data.polymarket import read_polymarket
from quotewise.data.store import EventData
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, TRADE

T0_MS = 1_703_875_200_000
LAG_NS = 2_000_000  # receive time after the exchange time


def _example(*parts: str) -> dict[str, Any]:
    return json.loads(shared_path("polymarket", *parts).read_text())


def _timed(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the messages 100 ms apart, in the order given."""
    out = []
    for i, msg in enumerate(messages):
        msg = copy.deepcopy(msg)
        msg["timestamp"] = str(T0_MS + 100 * i)
        out.append(msg)
    return out


def _write(path: Path, messages: list[Any]) -> Path:
    """A line capture: ``<receive ns> <JSON>``; a list item is written as one line holding an array."""
    lines = []
    for item in messages:
        first = item[0] if isinstance(item, list) else item
        lines.append(f"{int(first['timestamp']) * 1_000_000 + LAG_NS} {json.dumps(item)}\n")
    text = "".join(lines).encode()
    path.write_bytes(gzip.compress(text) if path.suffix == ".gz" else text)
    return path


@pytest.fixture
def yes_book() -> dict[str, Any]:
    """The snapshot as the channel sent it in an older capture: no ``event_type`` (read by its keys)."""
    return _example("clob_api", "ws_book_snapshot.json")


@pytest.fixture
def updates(yes_book: dict[str, Any]) -> list[dict[str, Any]]:
    """After the book: a buy lifts the 0.51 ask, the level goes, a bid joins at 0.51 (the real
    price_change, v2 shape), the flat old shape moves an ask, then prints, top of book, a tick change."""
    asset = yes_book["asset_id"]
    trade = _example("clob_api", "ws_market_last_trade_msg.json")
    trade["size"] = "150.0"
    gone = _example("clob_api", "ws_market_price_change_msg.json")
    gone["price_changes"][0].update(side="SELL", price="0.51", size="0")
    joined = _example("clob_api", "ws_market_price_change_msg.json")
    flat = _example("ws_messages", "price_change.json")
    flat.update(asset_id=asset, price="0.53", size="12.5")
    sell = _example("ws_messages", "last_trade_price.json")
    sell.update(asset_id=asset, price="0.50")
    top = _example("clob_api", "ws_market_best_bid_ask_msg.json")
    top["asset_id"] = asset
    tick = _example("clob_api", "ws_market_tick_size_msg.json")
    return [trade, gone, joined, flat, sell, top, tick]


def _levels(msg: dict[str, Any], side: str) -> dict[Decimal, Decimal]:
    return {Decimal(lv["price"]): Decimal(lv["size"]) for lv in msg[side]}


def _reference(messages: list[dict[str, Any]], asset: str) -> list[dict[int, dict[Decimal, Decimal]]]:
    """The book after each message, kept from the messages themselves: {side: {price: size}}."""
    book: dict[int, dict[Decimal, Decimal]] = {BID: {}, ASK: {}}
    out = []
    for msg in messages:
        if "bids" in msg:
            book = {BID: _levels(msg, "bids"), ASK: _levels(msg, "asks")}
        elif msg.get("event_type") == "price_change":
            changes = msg.get("price_changes", [msg])
            for c in (c for c in changes if c["asset_id"] == asset):
                side = BID if c["side"] == "BUY" else ASK
                book[side][Decimal(c["price"])] = Decimal(c["size"])
                if Decimal(c["size"]) == 0:
                    del book[side][Decimal(c["price"])]
        out.append(copy.deepcopy(book))
    return out


def _book_after(data: EventData, local_ns: int) -> OrderBook:
    top = round(1 / data.instrument.tick_size)
    book = OrderBook(0, top)
    ev = data.events
    book.apply(ev[ev["local_ts"] <= local_ns])
    return book


def _assert_book(data: EventData, book: OrderBook, expected: dict[int, dict[Decimal, Decimal]]) -> None:
    inst = data.instrument
    tick, lot = Decimal(str(inst.tick_size)), Decimal(str(inst.lot_size))
    for side in (BID, ASK):
        want = {int(p / tick): int(s / lot) for p, s in expected[side].items()}
        got = {p: book.size_at(side, p) for p in range(book.lo_tick, book.hi_tick + 1)}
        assert {p: s for p, s in got.items() if s} == want
    assert book.best_bid == int(max(expected[BID]) / tick)
    assert book.best_ask == int(min(expected[ASK]) / tick)


def test_book_matches_the_messages_after_each_kind_of_update(tmp_path: Path, yes_book, updates) -> None:
    messages = _timed([yes_book, *updates])
    data = read_polymarket(_write(tmp_path / "cap.txt", messages))
    assert data.instrument.tick_size == 0.01
    assert data.instrument.lot_size == 0.01  # the sell print's size is 85.36
    for msg, expected in zip(messages, _reference(messages, yes_book["asset_id"]), strict=True):
        local = int(msg["timestamp"]) * 1_000_000 + LAG_NS
        _assert_book(data, _book_after(data, local), expected)
    assert data.report["messages"] == {
        "book": 1,
        "last_trade_price": 2,
        "price_change": 3,
        "best_bid_ask": 1,
        "tick_size_change": 1,
    }
    assert data.report["skipped"] == {"best_bid_ask": 1}
    assert data.report["time_units"] == {"local": "ns", "exchange": "ms"}


def test_a_trade_rests_opposite_the_taker(tmp_path: Path, yes_book, updates) -> None:
    data = read_polymarket(_write(tmp_path / "cap.txt", _timed([yes_book, *updates])))
    trades = data.events[data.events["kind"] == TRADE]
    # taker BUY of 150 at 0.51 lifted the ask; taker SELL of 85.36 at 0.50 hit the bid
    assert trades["side"].tolist() == [ASK, BID]
    assert trades["price"].tolist() == [51, 50]
    assert data.instrument.lot_size == 0.01
    assert trades["size"].tolist() == [15_000, 8_536]
    assert np.all(np.diff(trades["exch_ts"]) > 0)


def test_tick_changes_are_recorded_and_the_grid_is_the_finest(tmp_path: Path, yes_book) -> None:
    change = _example("ws_messages", "tick_size_change.json")
    change["asset_id"] = yes_book["asset_id"]  # 0.01 -> 0.001
    bid = _example("clob_api", "ws_market_price_change_msg.json")
    bid["price_changes"][0].update(price="0.505", size="10")
    messages = _timed([yes_book, change, bid])
    data = read_polymarket(_write(tmp_path / "cap.txt", messages))
    assert data.instrument.tick_size == 0.001
    assert (data.instrument.min_price, data.instrument.max_price) == (0.001, 0.999)
    ts = int(messages[1]["timestamp"]) * 1_000_000
    assert data.report["tick_size_changes"] == [{"ts": ts, "old": "0.01", "new": "0.001"}]
    assert any("the tick changed" in w for w in data.report["warnings"])
    assert _book_after(data, ts * 2).best_bid == 505

    coarse = read_polymarket(_write(tmp_path / "coarse.txt", messages[:2]), tick_size=0.01)
    assert any("finer than the grid" in w for w in coarse.report["warnings"])


def _two_tokens(yes_book: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str]:
    """A YES and a NO book of one market, then its resolution for YES."""
    yes = yes_book["asset_id"]
    no_book = _example("ws_messages", "book.json")
    no = no_book["asset_id"]
    resolved = _example("clob_api", "ws_market_resolved_msg.json")
    resolved.update(assets_ids=[yes, no], winning_asset_id=yes, market=yes_book["market"])
    return _timed([yes_book, no_book, resolved]), yes, no


def test_resolution_gives_the_settlement_price_of_the_token_read(tmp_path: Path, yes_book) -> None:
    messages, yes, no = _two_tokens(yes_book)
    path = _write(tmp_path / "cap.txt", messages)
    won, lost = read_polymarket(path), read_polymarket(path, asset=no)
    ts = int(messages[2]["timestamp"]) * 1_000_000
    assert won.instrument.symbol == yes  # the default: the first token with a book
    assert won.report["resolution"] == {"winning_asset_id": yes, "outcome": "Yes", "ts": ts}
    assert won.report["settlement_price"] == 1.0
    assert won.report["settlement_source"] == f"the data (market_resolved, {path}:3)"
    assert lost.instrument.symbol == no
    assert lost.report["settlement_price"] == 0.0
    assert lost.instrument.tick_size == 0.001  # that book quotes 0.999
    assert won.report["assets"] == {yes: 1, no: 1}
    assert any("1 other asset" in w for w in won.report["warnings"])
    assert load_source(path, symbol=no).instrument.symbol == no


def test_gzip_array_lines_and_a_json_array_file_read_alike(tmp_path: Path, yes_book, updates) -> None:
    messages = _timed([yes_book, *updates])
    plain = read_polymarket(_write(tmp_path / "cap.txt", messages))
    gz = read_polymarket(_write(tmp_path / "cap.gz", [messages[:2], *messages[2:]]))
    for field in ("exch_ts", "price", "size", "kind", "side"):
        np.testing.assert_array_equal(gz.events[field], plain.events[field])
    # the two messages of the first line share its receive time
    assert len(set(gz.events["local_ts"][gz.events["exch_ts"] <= T0_MS * 1_000_000 + 100_000_000])) == 1

    array = tmp_path / "cap.json"
    array.write_bytes(gzip.compress(json.dumps(messages, indent=2).encode()))
    whole = read_polymarket(array)
    for field in ("exch_ts", "price", "size", "kind", "side"):
        np.testing.assert_array_equal(whole.events[field], plain.events[field])
    np.testing.assert_array_equal(whole.events["local_ts"], whole.events["exch_ts"])
    assert any("no receive times" in w for w in whole.report["warnings"])


def test_detected_by_content(tmp_path: Path, yes_book, updates) -> None:
    messages = _timed([yes_book, *updates])
    assert detect_format(_write(tmp_path / "a.txt", messages)) == "polymarket"
    assert detect_format(_write(tmp_path / "b.gz", [messages[:2], *messages[2:]])) == "polymarket"
    array = tmp_path / "c.json"
    array.write_text(json.dumps(messages, indent=1))
    assert detect_format(array) == "polymarket"
    binance = tmp_path / "d.txt"
    binance.write_text('1723075200000000000 {"stream": "btcusdt@trade", "data": {"e": "trade"}}\n')
    assert detect_format(binance) == "binance"
    assert load_source(tmp_path / "a.txt").instrument.venue == "polymarket"


def test_malformed_lines_and_messages_name_the_line(tmp_path: Path, yes_book, updates) -> None:
    messages = _timed([yes_book, *updates])
    path = _write(tmp_path / "cap.txt", messages)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines[:2], "not-a-time {}\n", *lines[2:]]))
    with pytest.raises(DataError, match=r"cap\.txt:3: malformed line"):
        read_polymarket(path)
    broken = copy.deepcopy(messages)
    del broken[2]["price_changes"][0]["side"]
    with pytest.raises(DataError, match=r"cap2\.txt:3: malformed message \(KeyError"):
        read_polymarket(_write(tmp_path / "cap2.txt", broken))
    with pytest.raises(DataError, match="no message of asset 42"):
        read_polymarket(_write(tmp_path / "cap3.txt", messages), asset="42")


def test_mm_backtest_picks_the_token_and_settles_it_by_the_datas_resolution(tmp_path: Path, yes_book) -> None:
    import subprocess
    import sys

    messages, yes, no = _two_tokens(yes_book)
    path = _write(tmp_path / "cap.txt", messages)
    for token, price in ((yes, 1.0), (no, 0.0)):
        out = tmp_path / token[:8]
        done = subprocess.run(
            [sys.executable, "-m", "quotewise.cli", "backtest", "--data", str(path), "--market", token,
             "--spread", "2", "--size", "50", "--max-pos", "500", "--quiet", "--out", str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["instrument"]["symbol"] == token
        assert summary["settlement"]["price"] == price
        a = summary["attribution"]
        assert a["spread_capture"] + a["inventory"] + a["fees"] + a["settlement"] == pytest.approx(
            summary["total_pnl"], abs=1e-9
        )
