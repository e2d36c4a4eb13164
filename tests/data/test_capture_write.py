"""Capture writers: a market written as Polymarket's or Kalshi's websocket messages reads back as the
same book and trades (what lets the emulators and the recorder be checked against the readers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quotewise.book.orderbook import OrderBook
from quotewise.data.hftbacktest import l2_events
from quotewise.data.kalshi import read_kalshi
from quotewise.data.kalshi import write_capture as write_kalshi
from quotewise.data.polymarket import read_polymarket
from quotewise.data.polymarket import write_capture as write_polymarket
from quotewise.data.store import EventData
from quotewise.data.synthetic import generate_synthetic, synthetic_binary
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import ASK, BID, TRADE

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


@pytest.fixture(scope="module")
def market() -> EventData:
    return synthetic_binary(30_000, seed=3)


def _books_at(events: np.ndarray, stamps: np.ndarray) -> list[dict[int, dict[int, int]]]:
    """The book (both sides, price -> size) after the last event at or before each stamp."""
    book = OrderBook(1, 99)
    out, i = [], 0
    for ts in stamps:
        j = int(np.searchsorted(events["exch_ts"], ts, side="right"))
        book.apply(events[i:j])
        i = j
        out.append(
            {s: dict(zip(*(a.tolist() for a in book.levels(s, 200)), strict=True)) for s in (BID, ASK)}
        )
    return out


def _trades(events: np.ndarray) -> list[tuple[int, int, int]]:
    t = events[events["kind"] == TRADE]
    return list(zip(t["side"].tolist(), t["price"].tolist(), t["size"].tolist(), strict=True))


def test_synthetic_binary_stays_inside_the_valid_prices(market: EventData) -> None:
    prices = market.events["price"][market.events["kind"] != 7]
    assert prices.min() >= 1 and prices.max() <= 99
    assert market.instrument.binary and (market.events["kind"] == TRADE).sum() > 100
    with pytest.raises(ConfigError, match="strictly between"):
        synthetic_binary(100, start=0.995)


@pytest.mark.parametrize("suffix", [".txt", ".gz"])
def test_polymarket_capture_reads_back_as_the_same_market(
    market: EventData, tmp_path: Path, suffix: str
) -> None:
    path = write_polymarket(market, tmp_path / f"cap{suffix}", TOKEN)
    back = read_polymarket(path)
    assert back.instrument.symbol == TOKEN and back.instrument.tick_size == pytest.approx(0.01)
    stamps = np.unique(market.events["exch_ts"])[:: max(1, len(market.events) // 40)]
    ms = (stamps // 1_000_000) * 1_000_000  # the channel stamps whole milliseconds: compare at their ends
    assert _books_at(back.events, ms) == _books_at(l2_events(market.events), ms + 999_999)
    assert _trades(back.events) == _trades(l2_events(market.events))


def test_kalshi_capture_reads_back_as_the_same_market(market: EventData, tmp_path: Path) -> None:
    path = write_kalshi(market, tmp_path / "cap.txt", "KXTEST-26DEC31")
    back = read_kalshi(path)
    assert back.report["seq_gaps"] == 0 and back.instrument.symbol == "KXTEST-26DEC31"
    locals_ = np.unique(market.events["local_ts"])[:: max(1, len(market.events) // 40)]
    src = l2_events(market.events)
    src["exch_ts"] = src["local_ts"]  # Kalshi's book messages carry the receive time only
    assert _books_at(back.events, locals_) == _books_at(src, locals_)
    assert _trades(back.events) == _trades(src)


def test_kalshi_capture_refuses_a_grid_other_than_cents(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"tick must be 0\.01"):
        write_kalshi(_on_tick(0.05), tmp_path / "x.txt")


def _on_tick(tick: float) -> EventData:
    data = generate_synthetic(1_000)
    return EventData(
        data.events, data.instrument.model_copy(update={"tick_size": tick}), data.source, data.report
    )
