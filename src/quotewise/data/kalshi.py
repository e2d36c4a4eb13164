"""Kalshi websocket captures to normalized L2 events of one market's YES contract.

Format. One line per message, ``<local receive time, ns> <message JSON as sent>``, plain or gzip (the
line format of :func:`quotewise.data.polymarket.capture_lines`). Messages are
``{"type": ..., "sid": ..., "seq": ..., "msg": {...}}``:

- ``orderbook_snapshot``: ``msg.yes`` and ``msg.no`` as ``[[price_cents, quantity], ...]``: CLEAR
  then a SET per level.
- ``orderbook_delta``: ``msg.price`` (cents), ``msg.delta`` (change in quantity), ``msg.side`` yes/no:
  the level's new total (kept here) as a SET. Deltas before the market's first snapshot are skipped.
- ``trade``: ``msg.yes_price`` (cents), ``msg.count``, ``msg.taker_side``: a TRADE on the resting
  side, opposite the taker (taker ``yes`` bought YES, lifting the ask: side -1).

Kalshi's book holds bids only, for YES and for NO. Buying NO at ``p`` is selling YES at ``100 - p``,
so the YES book read here has the ``yes`` levels as bids and the ``no`` levels as asks at
``100 - p``. Every other message type is counted in the report and skipped.

Units and choices. Prices are cents, so the tick is 0.01 (dollars per contract) and valid prices are
0.01 to 0.99; sizes are whole contracts (lot 1). Book messages carry no exchange time, and a trade's
``ts`` is in whole seconds, which would put trades up to a second before the book changes around
them: the receive time stands for both clocks. ``seq`` must rise by one per subscription (``sid``);
a gap is counted (``report["seq_gaps"]``) and warned about, since the book may be wrong until the
next snapshot. A capture may hold several markets: one is read, ``ticker`` or by default the first
with a snapshot; ``report["tickers"]`` counts the messages of each. Fees are not on the channel: the
instrument has Kalshi's general schedule (:data:`KALSHI_FEES`), with a note.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from quotewise.data.polymarket import capture_lines
from quotewise.data.store import EventData, add_warning
from quotewise.data.units import EpochClock, normalize_clocks
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE, SET, TRADE
from quotewise.model.instrument import Instrument

KINDS = frozenset(["orderbook_snapshot", "orderbook_delta", "trade"])
TICK = 0.01
CENTS = 100  # a contract pays 100 cents: a NO price p is a YES price 100 - p
# Kalshi's general fee schedule (kalshi.com/docs/kalshi-fee-schedule.pdf): a taker pays
# ceil_to_cent(0.07 x C x P x (1 - P)) per order, C contracts at P dollars; makers pay nothing except
# on the markets the schedule lists, which charge them 0.0175 x C x P x (1 - P) (--maker-fee 0.0175).
KALSHI_FEES: dict[str, Any] = {
    "fee_curve": "probability",
    "taker_fee": 0.07,
    "fee_step": 0.01,
    "fee_rounding": "up",
}


def is_message(obj: Any) -> bool:
    """Whether a capture line's JSON is a Kalshi message: market data, or the ``subscribed``
    acknowledgement a capture starts with."""
    if not isinstance(obj, dict) or not isinstance(obj.get("msg"), dict):
        return False
    return obj.get("type") in KINDS or (obj.get("type") == "subscribed" and "channel" in obj["msg"])


def _first_snapshot_ticker(path: Path) -> str | None:
    """The market of the first snapshot in the capture: the default one to read."""
    for _, _, obj in capture_lines(path):
        if isinstance(obj, dict) and obj.get("type") == "orderbook_snapshot":
            return str(obj["msg"]["market_ticker"])
    return None


class _Reader:
    """The per-line state: the YES and NO bid levels, sequence numbers per subscription, counts."""

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.rows: list[tuple[int, int, int, int, int, int, int]] = []  # EVENT_DTYPE field order
        self.levels: dict[str, dict[int, int]] = {"yes": {}, "no": {}}
        self.has_book = False
        self.seqs: dict[Any, int] = {}
        self.first_gap = ""
        self.clock = EpochClock("local receive time")
        self.prev_local = -1
        self.messages: Counter[str] = Counter()
        self.tickers: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.report: dict[str, Any] = {"ticker": ticker, "seq_gaps": 0, "negative_levels": 0}

    def line(self, where: str, raw_local: int, obj: Any) -> None:
        try:
            local = self.clock.ns(raw_local)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        if local < self.prev_local:
            raise DataError(
                f"{where}: non-monotonic timestamps: local time {local} is before the previous "
                f"line's {self.prev_local}"
            )
        self.prev_local = local
        try:
            self._message(obj, local, where)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise DataError(f"{where}: malformed message ({type(exc).__name__}: {exc})") from None

    def _message(self, obj: Any, local: int, where: str) -> None:
        kind = str(obj.get("type")) if isinstance(obj, dict) else "unknown"
        self.messages[kind] += 1
        if kind not in KINDS:
            self.skipped[kind] += 1
            return
        self._check_seq(obj, where)
        msg = obj["msg"]
        ticker = str(msg["market_ticker"])
        self.tickers[ticker] += 1
        if ticker != self.ticker:
            self.skipped["other_tickers"] += 1
        elif kind == "orderbook_snapshot":
            self._snapshot(msg, local)
        elif kind == "orderbook_delta":
            self._delta(msg, local)
        else:
            resting = ASK if msg["taker_side"] == "yes" else BID
            self.rows.append((local, local, int(msg["yes_price"]), int(msg["count"]), 0, TRADE, resting))

    def _check_seq(self, obj: dict[str, Any], where: str) -> None:
        """``seq`` counts one subscription's messages: a jump means some were lost."""
        if "seq" not in obj:
            return
        sid, seq = obj.get("sid"), int(obj["seq"])
        prev = self.seqs.get(sid)
        if prev is not None and seq != prev + 1:
            self.report["seq_gaps"] += 1
            self.first_gap = self.first_gap or f"{where}: sid {sid} seq {prev} then {seq}"
        self.seqs[sid] = seq

    def _set(self, book_side: str, cents: int, size: int, local: int) -> None:
        """A SET on the YES book: ``yes`` bids at their price, ``no`` bids as asks at 100 - price."""
        side, price = (BID, cents) if book_side == "yes" else (ASK, CENTS - cents)
        self.rows.append((local, local, price, size, 0, SET, side))

    def _snapshot(self, msg: dict[str, Any], local: int) -> None:
        self.has_book = True
        self.rows.append((local, local, 0, 0, 0, CLEAR, 0))
        for book_side in ("yes", "no"):
            levels = self.levels[book_side] = {int(p): int(q) for p, q in msg.get(book_side) or ()}
            for cents, size in levels.items():
                self._set(book_side, cents, size, local)

    def _delta(self, msg: dict[str, Any], local: int) -> None:
        if not self.has_book:
            self.skipped["deltas_before_snapshot"] += 1
            return
        book_side, cents = str(msg["side"]), int(msg["price"])
        levels = self.levels[book_side]
        size = levels.get(cents, 0) + int(msg["delta"])
        if size < 0:  # a lost delta: the level cannot hold less than nothing
            self.report["negative_levels"] += 1
            size = 0
        if size:
            levels[cents] = size
        else:
            levels.pop(cents, None)
        self._set(book_side, cents, size, local)

    def finish(self, path: Path) -> None:
        report = self.report
        if self.ticker not in self.tickers:
            seen = ", ".join(self.tickers) or "none"
            raise DataError(f"{path}: no message of market {self.ticker}; markets in the capture: {seen}")
        if not self.rows:
            raise DataError(f"{path}: no snapshot, delta or trade of market {self.ticker} to read")
        report.update(
            messages=dict(self.messages),
            tickers=dict(self.tickers),
            skipped=dict(self.skipped),
            time_units={"local": self.clock.unit, "exchange": self.clock.unit},
        )
        if report["seq_gaps"]:
            add_warning(
                report,
                f"{report['seq_gaps']} sequence gap(s), the first at {self.first_gap}: the book may be wrong "
                "from a gap until the next snapshot",
            )
        if report["negative_levels"]:
            add_warning(
                report,
                f"{report['negative_levels']} delta(s) took a level below zero (set to 0): messages were "
                "lost or the capture is not one subscription",
            )
        if len(self.tickers) > 1:
            add_warning(
                report,
                f"the capture holds {len(self.tickers) - 1} other market(s) (report 'tickers'), left out: "
                "read one with ticker=TICKER",
            )
        add_warning(
            report,
            "fees: Kalshi's general schedule, takers ceil(0.07 x C x P x (1 - P)) to the cent, makers 0 "
            "(--maker-fee 0.0175 for the markets that charge makers)",
        )


def read_kalshi(path: str | Path, ticker: str | None = None) -> EventData:
    """Read one market's YES book and trades from a websocket capture (see the module docstring).

    ``ticker`` is the market (default: the first with a snapshot). Raises :class:`DataError` naming
    the line for malformed lines or messages and non-monotonic receive times; naming the file when the
    market is absent or has nothing to read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    chosen = ticker or _first_snapshot_ticker(path)
    if chosen is None:
        raise DataError(f"{path}: no orderbook_snapshot to build a book from; give ticker=TICKER")
    reader = _Reader(chosen)
    for where, local, obj in capture_lines(path):
        reader.line(where, local, obj)
    reader.finish(path)
    events = np.array(reader.rows, dtype=EVENT_DTYPE)
    normalize_clocks(events, reader.report, str(path))
    reader.report["files"] = [str(path)]
    instrument = Instrument(
        symbol=chosen,
        venue="kalshi",
        tick_size=TICK,
        lot_size=1.0,
        min_price=TICK,
        max_price=1 - TICK,
        quote="USD",
        size_unit="contracts",
        **KALSHI_FEES,
    )
    return EventData(events=events, instrument=instrument, source=str(path), report=reader.report)


# -- writing a capture ---------------------------------------------------------------------------------------
BOOK_SID, TRADE_SID = 1, 2  # the subscription ids a written capture uses for the book and the trades


def yes_no_levels(levels: dict[int, dict[int, int]]) -> dict[str, list[list[int]]]:
    """The YES book as Kalshi publishes it: YES bids, and NO bids at 100 - each YES ask."""
    return {
        "yes": [[p, q] for p, q in sorted(levels[BID].items())],
        "no": [[CENTS - p, q] for p, q in sorted(levels[ASK].items(), reverse=True)],
    }


def delta_of(side: int, price: int, delta: int) -> dict[str, Any]:
    """One YES-book level change as an ``orderbook_delta`` body (a YES ask is a NO bid)."""
    return {
        "price": price if side == BID else CENTS - price,
        "delta": delta,
        "side": "yes" if side == BID else "no",
    }


def trade_of(resting: int, price: int, count: int, ts_ns: int) -> dict[str, Any]:
    """A ``trade`` body: a trade resting on the ask was a YES taker."""
    return {
        "yes_price": price,
        "no_price": CENTS - price,
        "count": count,
        "taker_side": "yes" if resting == ASK else "no",
        "ts": ts_ns // 1_000_000_000,
    }


def write_capture(data: EventData, path: str | Path, ticker: str | None = None) -> Path:
    """Write ``data`` (a market on a 0.01 tick) as a websocket capture of ``ticker`` (default: the
    instrument's symbol): ``orderbook_snapshot`` first and after each reset, an ``orderbook_delta`` per
    level change, a ``trade`` per trade, each numbered per subscription. :func:`read_kalshi` reads it."""
    from quotewise.data.capture import level_batches, write_lines

    if abs(data.instrument.tick_size - TICK) > 1e-12:
        raise DataError(
            f"a Kalshi capture is in cents: the tick must be 0.01, not {data.instrument.tick_size:g}"
        )
    name = ticker or data.instrument.symbol

    def lines() -> Iterator[tuple[int, Any]]:
        seq = {BOOK_SID: 0, TRADE_SID: 0}

        def message(kind: str, sid: int, body: dict[str, Any]) -> dict[str, Any]:
            seq[sid] += 1
            return {"type": kind, "sid": sid, "seq": seq[sid], "msg": {"market_ticker": name, **body}}

        for batch in level_batches(data.events):
            if batch.snapshot is not None:
                yield batch.local_ts, message("orderbook_snapshot", BOOK_SID, yes_no_levels(batch.snapshot))
            for side, price, size, old in batch.changes:
                yield batch.local_ts, message("orderbook_delta", BOOK_SID, delta_of(side, price, size - old))
            for resting, price, size in batch.trades:
                yield (
                    batch.local_ts,
                    message("trade", TRADE_SID, trade_of(resting, price, size, batch.exch_ts)),
                )

    return write_lines(path, lines())
