"""Binance capture reader: real USD-M, COIN-M and spot files, plus small broken files."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from quotewise.book.core import BB, CROSS_FIXES, OUT_OF_RANGE, apply_events, best_ask, best_bid, new_book
from quotewise.data.binance import read_binance
from quotewise.data.store import EventData
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, CLEAR, SET, TRADE

STREAMS = {
    "usdm": ("binance-usdm", ["usdm/btcusdt_20240808.gz"]),
    "spot": ("binance-spot", ["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"]),
    "cm": ("binance-coinm", ["cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz"]),
}


def _paths(name: str) -> list[Path]:
    return [shared_path("binance", f) for f in STREAMS[name][1]]


def _raw_lines(paths: list[Path]) -> list[tuple]:
    """The capture parsed on its own into ``(local ts, stream kind, fields...)``, to check against."""
    out: list[tuple] = []
    for path in paths:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                ts, _, body = line.partition(" ")
                obj = json.loads(body)
                data = obj.get("data", {})
                kind = (
                    obj.get("stream", "snapshot").rpartition("@")[2]
                    if "lastUpdateId" not in obj
                    else "snapshot"
                )
                if kind == "bookTicker":
                    out.append((int(ts), kind, data["u"], data["b"], data["a"]))
                elif kind == "trade":
                    out.append((int(ts), kind, data["t"], data["m"], data["p"]))
                else:
                    out.append((int(ts), "depth" if "e" in data else kind, data.get("u")))
    return out


@pytest.fixture(scope="module", params=sorted(STREAMS))
def stream(request: pytest.FixtureRequest) -> tuple[str, EventData, list[tuple[int, dict]]]:
    paths = _paths(request.param)
    return request.param, read_binance(paths), _raw_lines(paths)


def _replay_by_line(data: EventData) -> tuple[dict[int, tuple[int, int]], np.ndarray]:
    """Book best bid/ask after each group of events sharing a local time (one capture line)."""
    ev = data.events
    book = new_book(int(ev["price"].min()), int(ev["price"].max()))
    ends = np.append(np.flatnonzero(np.diff(ev["local_ts"])) + 1, len(ev))
    after: dict[int, tuple[int, int]] = {}
    start = 0
    for end in ends:
        apply_events(*book, ev[start:end])
        after[int(ev["local_ts"][end - 1])] = (int(best_bid(book[2])), int(best_ask(book[2])))
        start = end
    return after, book[2]


def test_reads_venue_symbol_and_units(stream: tuple[str, EventData, list]) -> None:
    name, data, raw = stream
    assert data.instrument.venue == STREAMS[name][0]
    symbol = "BTCUSD_PERP" if name == "cm" else "BTCUSDT"
    assert data.instrument.symbol == symbol
    tick, lot = {"usdm": (0.1, 0.001), "cm": (0.1, 1.0), "spot": (0.01, 1e-6)}[name]
    assert data.instrument.tick_size == tick
    assert data.instrument.lot_size == lot
    ev = data.events
    assert np.all(np.diff(ev["exch_ts"]) >= 0)
    assert np.all(np.diff(ev["local_ts"]) >= 0)
    assert np.all(ev["local_ts"] >= ev["exch_ts"])
    assert (ev["local_ts"] - ev["exch_ts"]).min() == 0
    rep = data.report
    assert rep["lines"] == len(raw)
    assert rep["gaps"] == 0
    assert rep["time_units"] == {"local": "ns", "exchange": "ms"}
    assert "warnings" not in rep  # each day's snapshot comes about a second after its first update
    assert rep["local_clock_shift_ns"] > 1_000_000_000  # this capture clock runs ~1.27 s behind Binance
    assert rep["book_tickers_ignored"] == sum(r[1] == "bookTicker" for r in raw)
    assert rep["depth_messages"] == sum(r[1] == "depth" for r in raw)
    assert rep["snapshots"] == 1
    assert set(np.unique(ev["kind"])) == {CLEAR, SET, TRADE}


def test_trades_match_trade_lines(stream: tuple[str, EventData, list]) -> None:
    _, data, raw = stream
    trades = [r[2:] for r in raw if r[1] == "trade"]
    ev = data.events[data.events["kind"] == TRADE]
    assert len(ev) == len(trades) == data.report["trades"]
    assert ev["order_id"].tolist() == [t[0] for t in trades]
    assert ev["side"].tolist() == [BID if t[1] else ASK for t in trades]
    tick = Decimal(repr(data.instrument.tick_size))
    assert ev["price"].tolist() == [int(Decimal(t[2]) / tick) for t in trades]


def test_book_never_crossed_and_matches_book_ticker(stream: tuple[str, EventData, list]) -> None:
    """After every line the book is uncrossed; each bookTicker whose update id closes a diff agrees."""
    _, data, raw = stream
    after, st = _replay_by_line(data)
    assert st[CROSS_FIXES] == 0 and st[OUT_OF_RANGE] == 0
    assert st[BB] >= 0
    for bid, ask in after.values():
        assert bid < 0 or ask < 0 or bid < ask
    shift = data.report["local_clock_shift_ns"]
    snapshot_at = next(r[0] for r in raw if r[1] == "snapshot")
    diff_at = {r[2]: r[0] for r in raw if r[1] == "depth"}
    tick = Decimal(repr(data.instrument.tick_size))
    checked = 0
    last_ticker = None
    for _, _, u, b, a in (r for r in raw if r[1] == "bookTicker"):
        last_ticker = (int(Decimal(b) / tick), int(Decimal(a) / tick))
        line_ts = diff_at.get(u)
        if line_ts is not None and line_ts > snapshot_at:
            assert after[line_ts + shift] == last_ticker
            checked += 1
    assert checked > 100
    # the final book is the last ticker's, or the book one depth message earlier
    depth_lines = [r[0] + shift for r in raw if r[1] == "depth"]
    assert last_ticker in (after[depth_lines[-1]], after[depth_lines[-2]])


# -- small hand-written captures ---------------------------------------------------------------

T0 = 1_700_000_000_000_000_000
E0 = 1_700_000_000_000


def _snapshot(last_id: int, bid: str = "100.0", ask: str = "100.5") -> dict:
    return {"lastUpdateId": last_id, "E": E0, "T": E0, "bids": [[bid, "1.000"]], "asks": [[ask, "2.000"]]}


def _diff(first: int, last: int, prev: int, bids: list, asks: list, e: int = E0) -> dict:
    data = {"e": "depthUpdate", "E": e, "T": e, "s": "XYZUSDT", "U": first, "u": last, "pu": prev}
    data.update(b=bids, a=asks)
    return {"stream": "xyzusdt@depth@0ms", "data": data}


def _trade(tid: int, price: str, buyer_maker: bool) -> dict:
    data = {"e": "trade", "E": E0, "T": E0, "s": "XYZUSDT", "t": tid, "p": price, "q": "0.500", "X": "MARKET"}
    data["m"] = buyer_maker
    return {"stream": "xyzusdt@trade", "data": data}


def _messages() -> list[dict]:
    return [
        _diff(90, 99, 89, [["99.5", "3.000"]], []),  # older than the snapshot: dropped
        _diff(100, 102, 99, [["100.0", "1.500"]], []),  # spans lastUpdateId=101: the first applied
        _snapshot(101),
        _diff(103, 105, 102, [], [["100.5", "0.000"], ["100.6", "4.000"]]),
        _trade(7, "100.0", True),
        _diff(106, 110, 105, [["100.1", "0.250"]], []),
    ]


def _write(path: Path, lines: list[dict | str], start: int = T0) -> Path:
    with gzip.open(path, "wt") as fh:
        for i, line in enumerate(lines):
            body = line if isinstance(line, str) else json.dumps(line)
            fh.write(f"{start + i * 1000} {body}\n")
    return path


def test_small_capture_rebuilds_book(tmp_path: Path) -> None:
    data = read_binance(_write(tmp_path / "x.gz", _messages()))
    ev = data.events
    assert data.instrument.venue == "binance-usdm" and data.instrument.symbol == "XYZUSDT"
    assert data.report["diffs_stale"] == 1
    assert data.instrument.tick_size == 0.1 and data.instrument.lot_size == 0.01  # "0.250" is the finest
    rows = [(int(k), int(s), int(p), int(q)) for k, s, p, q in ev[["kind", "side", "price", "size"]]]
    assert rows == [
        (CLEAR, 0, 0, 0),
        (SET, BID, 1000, 100),
        (SET, ASK, 1005, 200),
        (SET, BID, 1000, 150),
        (SET, ASK, 1005, 0),
        (SET, ASK, 1006, 400),
        (TRADE, BID, 1000, 50),
        (SET, BID, 1001, 25),
    ]
    # the held diff is applied when the snapshot arrives, at the snapshot's local time
    assert ev["local_ts"][3] == ev["local_ts"][0]


def test_given_units_are_used_and_checked(tmp_path: Path) -> None:
    path = _write(tmp_path / "units.gz", _messages())
    data = read_binance(path, tick_size=0.05, lot_size=0.0005)
    assert (data.instrument.tick_size, data.instrument.lot_size) == (0.05, 0.0005)
    assert data.events["price"][-1] == 2002 and data.events["size"][-1] == 500
    with pytest.raises(DataError, match=r"units.gz:4: price '100.6' is off the price grid of 0.5"):
        read_binance(path, tick_size=0.5)


def test_gap_raises_or_is_skipped_until_next_snapshot(tmp_path: Path) -> None:
    messages = _messages()
    del messages[3]  # remove the diff 103..105: the next one's pu=105 does not follow u=102
    path = _write(tmp_path / "gap.gz", messages)
    with pytest.raises(DataError, match=r"gap.gz:5: depth update-id gap.*u=102.*pu=105"):
        read_binance(path)
    data = read_binance(path, allow_gaps=True)
    assert data.report["gaps"] == 1
    assert data.report["diffs_skipped_in_gap"] == 1
    assert data.events["kind"][-1] == CLEAR  # the book is unknown after the gap
    resync = [*messages, _snapshot(108, bid="100.2"), _diff(111, 112, 110, [], [["100.9", "1.000"]])]
    data = read_binance(_write(tmp_path / "resync.gz", resync), allow_gaps=True)
    assert data.report["gaps"] == 1 and data.report["diffs_skipped_in_gap"] == 0
    book = new_book(900, 1100)
    apply_events(*book, data.events)
    assert best_bid(book[2]) == 1002 and best_ask(book[2]) == 1005


def test_spot_sequencing_rule(tmp_path: Path) -> None:
    def spot(first: int, last: int, bids: list) -> dict:
        data = {"e": "depthUpdate", "E": E0, "s": "XYZUSDT", "U": first, "u": last, "b": bids, "a": []}
        return {"stream": "xyzusdt@depth@100ms", "data": data}

    snap = {"lastUpdateId": 101, "bids": [["100.00", "1.0"]], "asks": [["100.50", "1.0"]]}
    good = [spot(95, 101, []), snap, spot(102, 103, [["100.10", "2.0"]]), spot(104, 104, [])]
    data = read_binance(_write(tmp_path / "spot.gz", good))
    assert data.instrument.venue == "binance-spot"
    assert data.report["diffs_stale"] == 1  # u == lastUpdateId is already in the spot snapshot
    assert data.instrument.tick_size == 0.1 and data.instrument.lot_size == 1.0
    with pytest.raises(DataError, match="gap"):
        read_binance(_write(tmp_path / "spotgap.gz", [*good[:3], spot(105, 106, [])]))


def test_diffs_without_any_snapshot_are_refused(tmp_path: Path) -> None:
    messages = [m for m in _messages() if "lastUpdateId" not in m]
    path = _write(tmp_path / "nosnap.gz", messages)
    with pytest.raises(DataError, match=r"nosnap.gz: 4 depth updates but no depth snapshot .* --data EAR"):
        read_binance(path)
    trades_only = read_binance(_write(tmp_path / "trades.gz", [_trade(1, "100.0", True)]))
    assert trades_only.events["kind"].tolist() == [TRADE] and "warnings" not in trades_only.report


def test_real_day_without_its_snapshot_is_refused_and_chains_after_the_previous_day() -> None:
    second = shared_path("binance", "spot", "btcusdt_20240809.gz")
    with pytest.raises(DataError) as info:
        read_binance(second)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{second}: ")
    assert "depth updates but no depth snapshot" in text and f"--data EARLIER.gz,{second}" in text
    assert int(text.split(": ")[1].split()[0].replace(",", "")) > 1000
    pair = read_binance([shared_path("binance", "spot", "btcusdt_20240808.gz"), second])
    assert pair.report["snapshots"] == 1 and "warnings" not in pair.report


def test_late_snapshot_starts_the_book_with_a_warning(tmp_path: Path) -> None:
    """A snapshot 10 s into the stream: the book starts there and the skipped updates are said."""
    second = 1_000_000_000
    early = [_diff(80 + i, 80 + i, 79 + i, [["99.0", "1.000"]], [], e=E0 + i * 1000) for i in range(10)]
    lines = [*early, *_messages()]
    path = tmp_path / "late.gz"
    with gzip.open(path, "wt") as fh:
        for i, msg in enumerate(lines):
            fh.write(f"{T0 + i * second} {json.dumps(msg)}\n")
    data = read_binance(path)
    assert data.report["warnings"] == [
        f"{path}:13: the book starts at this first depth snapshot, 12.0 s after the first depth update; "
        "the 11 depth updates before it were skipped"
    ]
    assert data.events["kind"][0] == CLEAR  # nothing of the early updates reaches the book
    assert read_binance(_write(tmp_path / "prompt.gz", _messages())).report.get("warnings") is None


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    lines: list[dict | str] = [*_messages()]
    lines.insert(3, '{"stream": "xyzusdt@trade", "data": {')
    with pytest.raises(DataError, match=r"bad.gz:4: malformed line"):
        read_binance(_write(tmp_path / "bad.gz", lines))
    with pytest.raises(DataError, match=r"noprefix.gz:1: malformed line"):
        read_binance(_write(tmp_path / "noprefix.gz", ["no-timestamp-here"]))


def test_bad_price_names_the_line(tmp_path: Path) -> None:
    messages = _messages()
    messages[3]["data"]["a"][1][0] = "100.6x"
    with pytest.raises(DataError, match=r"price.gz:4: .*'100.6x'"):
        read_binance(_write(tmp_path / "price.gz", messages))


def test_local_time_going_backwards(tmp_path: Path) -> None:
    path = tmp_path / "back.gz"
    with gzip.open(path, "wt") as fh:
        for ts, msg in zip([T0, T0 + 10, T0 + 5], _messages()[:3], strict=True):
            fh.write(f"{ts} {json.dumps(msg)}\n")
    with pytest.raises(DataError, match=r"back.gz:3: non-monotonic timestamps"):
        read_binance(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    trades = [_trade(i, f"{100 + i % 7}.5", i % 2 == 0) for i in range(3000)]
    whole = _write(tmp_path / "whole.gz", trades).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"cut.gz: truncated or corrupt gzip"):
        read_binance(cut)


def test_two_symbols_refused(tmp_path: Path) -> None:
    other = _trade(8, "100.0", False)
    other["data"]["s"] = "ABCUSDT"
    with pytest.raises(DataError, match="symbol ABCUSDT in a stream of XYZUSDT"):
        read_binance(_write(tmp_path / "two.gz", [*_messages(), other]))
