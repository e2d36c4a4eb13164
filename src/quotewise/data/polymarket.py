"""Polymarket market-channel captures to normalized L2 events of one outcome token.

Format. One line per websocket message: ``<local receive time, ns> <message JSON as sent>``, plain or
gzip (told by the magic bytes). A line's JSON is one message or an array of them (the channel sends
the first books of a subscription as an array). A file that starts with ``[`` is instead one JSON
array of messages with no receive times: each message's own time then stands for both clocks, with a
warning. Messages are told apart by ``event_type``; captures that dropped it are read by their keys
(:func:`message_kind`).

Messages. ``book`` is a full snapshot of one token (``bids``/``asks``, older captures
``buys``/``sells``, of ``{price, size}``): CLEAR then a SET per level. ``price_change`` carries level
updates (``price_changes``, each with its ``asset_id``; older shapes: ``changes`` or one flat
change), ``size`` being the level's new total, ``side`` BUY for bids: SETs. Updates before the
token's first book are skipped (its book is unknown until then). ``last_trade_price`` is a print whose
``side`` is the taker's: BUY lifted the ask, so the TRADE rests on the ask (-1). ``tick_size_change``
is recorded in ``report["tick_size_changes"]``; ``market_resolved`` in ``report["resolution"]``, with
``report["settlement_price"]`` 1.0 when the token read won and 0.0 when it lost (what a held share
pays; the backtest settles on it) and ``report["settlement_source"]`` naming the line.
``best_bid_ask`` repeats the book and, like any other kind, is only counted.

Units and choices. Prices are probabilities in [0, 1]: the tick is the finest of 0.01 (the usual
Polymarket tick), every tick the capture states (old and new ticks of ``tick_size_change``, a book's
``tick_size``) and the finest decimal of the prices, so every quote seen is on the grid; when the
tick changed during the capture, the grid is the finest and a warning says so. Sizes are shares,
sent with up to 2 decimals: the lot is the finest decimal seen (0.01 when any size has cents, else
1). ``timestamp`` (epoch ms, a string) is the exchange time; both clocks' units are read from their
magnitudes (:class:`quotewise.data.units.EpochClock`). Fees are not on the channel: the instrument
has none, with a warning. A capture may hold several tokens (a market's YES and NO, or more): one is
read, ``asset`` or by default the first with a book; ``report["assets"]`` counts the messages of each.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from quotewise.data.store import EventData, add_warning
from quotewise.data.units import (
    EpochClock,
    ValueFormatError,
    infer_increment,
    normalize_clocks,
    units_and_step,
)
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE, SET, TRADE
from quotewise.model.instrument import Instrument

KINDS = frozenset(
    [
        "book",
        "price_change",
        "last_trade_price",
        "tick_size_change",
        "best_bid_ask",
        "market_resolved",
        "new_market",
    ]
)
DEFAULT_TICK = 0.01
# Polymarket's platform fee (docs.polymarket.com/trading/fees): takers pay rate x C x p x (1 - p), C
# shares at price p, in USDC rounded down to 5 decimals; makers pay nothing. The rate is set per market (most
# have none), so it is given, --taker-fee RATE; the curve and the rounding are the venue's.
POLYMARKET_FEES: dict[str, Any] = {"fee_curve": "probability", "fee_step": 1e-5, "fee_rounding": "down"}
_SIDES = {"BUY": BID, "SELL": ASK}
_decode = json.JSONDecoder().decode
Where = str  # "path:line" (or "path: message N"), for error messages


# -- the capture file, shared with the Kalshi reader ----------------------------------------------------
def open_capture(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it starts with the gzip magic (names do not say reliably)."""
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else path.open("rb")


def capture_lines(path: Path) -> Iterator[tuple[Where, int, Any]]:
    """``(where, local receive time as written, JSON)`` per non-blank ``<int> <JSON>`` line.

    Raises :class:`DataError` naming the line for a malformed one, and for a corrupt gzip file.
    """
    try:
        with open_capture(path) as fh:
            for number, raw in enumerate(fh, 1):
                if raw.strip():
                    yield f"{path}:{number}", *_split(raw, f"{path}:{number}")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip file ({exc})") from None


def _split(raw: bytes, where: Where) -> tuple[int, Any]:
    stamp, _, text = raw.partition(b" ")
    try:
        return int(stamp), _decode(text.decode())
    except ValueError as exc:
        raise DataError(f"{where}: malformed line, expected '<int receive time> <JSON>': {exc}") from None


def _starts_with_array(path: Path) -> bool:
    with open_capture(path) as fh:
        return fh.read(4096).lstrip()[:1] == b"["


def _messages(path: Path) -> Iterator[tuple[Where, int | None, dict[str, Any]]]:
    """Every message with where it is and its local receive time as written (None: the file has none)."""
    if _starts_with_array(path):
        with open_capture(path) as fh:
            try:
                items = json.load(fh)
            except (ValueError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise DataError(f"{path}: not a JSON array of messages ({exc})") from None
        for i, msg in enumerate(items, 1):
            yield f"{path}: message {i}", None, msg
        return
    for where, local, obj in capture_lines(path):
        for msg in obj if isinstance(obj, list) else [obj]:
            yield where, local, msg


# -- messages ---------------------------------------------------------------------------------------------
def message_kind(msg: Any) -> str | None:
    """``event_type``, or for captures that dropped it the kind the keys show (None: not a market message)."""
    if not isinstance(msg, dict):
        return None
    if "event_type" in msg:
        return str(msg["event_type"])
    if "price_changes" in msg:
        return "price_change"
    if "winning_asset_id" in msg:
        return "market_resolved"
    if "asset_id" not in msg or "type" in msg or "maker_orders" in msg:  # user-channel messages
        return None
    if "bids" in msg or "buys" in msg:
        return "book"
    if "new_tick_size" in msg:
        return "tick_size_change"
    if "fee_rate_bps" in msg and "price" in msg:
        return "last_trade_price"
    return "best_bid_ask" if "best_bid" in msg else None


def is_message(obj: Any) -> bool:
    """Whether a capture line's JSON (a message or an array of them) is from the market channel."""
    items = obj if isinstance(obj, list) else [obj]
    return any(message_kind(m) in KINDS for m in items)


def _changes(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """A price_change's level updates, each with its asset id, whichever shape the message has."""
    if "price_changes" in msg:
        return msg["price_changes"]
    if "changes" in msg:
        return [{"asset_id": msg["asset_id"], **c} for c in msg["changes"]]
    return [msg]


def _assets(msg: dict[str, Any], kind: str) -> set[str]:
    if kind == "price_change":
        return {str(c["asset_id"]) for c in _changes(msg)}
    return {str(msg["asset_id"])} if "asset_id" in msg else set()


def _first_book_asset(path: Path) -> str | None:
    """The token of the first book in the capture: the default one to read."""
    for _, _, msg in _messages(path):
        if message_kind(msg) == "book":
            return str(msg["asset_id"])
    return None


class _Events:
    """Events in file order, prices and sizes kept as the decimal strings sent until the grid is known."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, int, int]] = []  # exch, local, order id, kind, side
        self.prices: list[str] = []
        self.sizes: list[str] = []
        self.where: list[Where] = []

    def add(self, kind: int, side: int, exch: int, local: int, price: str, size: str, where: Where) -> None:
        self.rows.append((exch, local, 0, kind, side))
        self.prices.append(price)
        self.sizes.append(size)
        self.where.append(where)

    def units(self, what: str, strings: list[str], step: float | None) -> tuple[np.ndarray, float]:
        try:
            return units_and_step(strings, step, what=what)
        except ValueFormatError as exc:
            raise DataError(f"{self.where[exc.index]}: {exc}") from None

    def finest(self, what: str, strings: list[str]) -> float:
        try:
            return infer_increment(strings)
        except ValueFormatError as exc:
            raise DataError(f"{self.where[exc.index]}: {what}: {exc}") from None

    def build(self, tick: float, lot: float) -> np.ndarray:
        ev = np.zeros(len(self.rows), EVENT_DTYPE)
        cols = np.array(self.rows, np.int64).reshape(-1, 5)
        for i, name in enumerate(("exch_ts", "local_ts", "order_id", "kind", "side")):
            ev[name] = cols[:, i]
        ev["price"] = self.units("price", self.prices, tick)[0]
        ev["size"] = self.units("size", self.sizes, lot)[0]
        return ev


def _is_zero(size: str) -> bool:
    return float(size) == 0


class _Reader:
    """The per-message state: which token, whether its book is known, what the report counts."""

    def __init__(self, asset: str) -> None:
        self.asset = asset
        self.out = _Events()
        self.has_book = False
        self.market = ""
        self.stated_ticks: list[float] = []
        self.local_clock = EpochClock("local receive time")
        self.exch_clock = EpochClock("exchange time")
        self.prev_local = -1
        self.no_local = False
        self.messages: Counter[str] = Counter()
        self.assets: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.report: dict[str, Any] = {"asset": asset, "tick_size_changes": []}

    def _ns(self, clock: EpochClock, value: Any, where: Where) -> int:
        try:
            return clock.ns(int(value))
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None

    def _local(self, raw: int | None, exch: int, where: Where) -> int:
        """The receive time; without one, the exchange time (kept non-decreasing, as receipt would be)."""
        if raw is None:
            self.no_local = True
            local = max(exch, self.prev_local)
        else:
            local = self._ns(self.local_clock, raw, where)
            if local < self.prev_local:
                raise DataError(
                    f"{where}: non-monotonic timestamps: local time {local} is before the previous "
                    f"line's {self.prev_local}"
                )
        self.prev_local = local
        return local

    def message(self, msg: Any, raw_local: int | None, where: Where) -> None:
        try:
            kind = message_kind(msg) or "unknown"
            self.messages[kind] += 1
            if kind not in KINDS or kind in ("new_market", "best_bid_ask"):
                self.skipped[kind] += 1
                return
            assets = _assets(msg, kind)
            self.assets.update(assets)
            if self.asset in assets:
                self.market = self.market or str(msg.get("market", ""))
            elif kind != "market_resolved":
                self.skipped["other_assets"] += 1
                return
            exch = self._ns(self.exch_clock, msg["timestamp"], where)
            local = self._local(raw_local, exch, where)
            getattr(self, f"_{kind}")(msg, exch, local, where)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{where}: malformed message ({type(exc).__name__}: {exc})") from None

    def _book(self, msg: dict[str, Any], exch: int, local: int, where: Where) -> None:
        self.has_book = True
        if "tick_size" in msg:
            self.stated_ticks.append(float(msg["tick_size"]))
        self.out.add(CLEAR, 0, exch, local, "0", "0", where)
        for side, names in ((BID, ("bids", "buys")), (ASK, ("asks", "sells"))):
            levels = msg.get(names[0], msg.get(names[1])) or []
            for level in levels:
                self.out.add(SET, side, exch, local, str(level["price"]), str(level["size"]), where)

    def _price_change(self, msg: dict[str, Any], exch: int, local: int, where: Where) -> None:
        ours = [c for c in _changes(msg) if str(c["asset_id"]) == self.asset]
        if not self.has_book:
            self.skipped["level_updates_before_book"] += len(ours)
            return
        # removals first: the book then never crosses between two levels of one message
        for change in sorted(ours, key=lambda c: not _is_zero(str(c["size"]))):
            side = _SIDES[str(change["side"]).upper()]
            self.out.add(SET, side, exch, local, str(change["price"]), str(change["size"]), where)

    def _last_trade_price(self, msg: dict[str, Any], exch: int, local: int, where: Where) -> None:
        resting = -_SIDES[str(msg["side"]).upper()]
        self.out.add(TRADE, resting, exch, local, str(msg["price"]), str(msg["size"]), where)

    def _tick_size_change(self, msg: dict[str, Any], exch: int, local: int, where: Where) -> None:
        old, new = str(msg["old_tick_size"]), str(msg["new_tick_size"])
        self.stated_ticks += [float(old), float(new)]
        self.report["tick_size_changes"].append({"ts": exch, "old": old, "new": new})

    def _market_resolved(self, msg: dict[str, Any], exch: int, local: int, where: Where) -> None:
        winner = str(msg["winning_asset_id"])
        listed = {str(a) for a in msg.get("assets_ids") or ()}
        if self.asset != winner and self.asset not in listed and msg.get("market") != self.market:
            self.skipped["other_resolutions"] += 1
            return
        outcome = msg.get("winning_outcome")
        self.report["resolution"] = {"winning_asset_id": winner, "outcome": outcome, "ts": exch}
        self.report["settlement_price"] = 1.0 if winner == self.asset else 0.0
        self.report["settlement_source"] = f"the data (market_resolved, {where})"

    # -- the end --------------------------------------------------------------------------------------
    def grid(self, given: float | None) -> float:
        """The tick: the one given, else the finest of the default, the stated ticks and the prices."""
        if given is not None:
            return given
        return min(DEFAULT_TICK, self.out.finest("price", self.out.prices), *self.stated_ticks)

    def finish(self, path: Path, tick: float) -> None:
        report = self.report
        if self.asset not in self.assets:
            seen = ", ".join(self.assets) or "none"
            raise DataError(f"{path}: no message of asset {self.asset}; assets in the capture: {seen}")
        if not self.out.rows:
            raise DataError(f"{path}: no book, level update or trade of asset {self.asset} to read")
        report.update(
            messages=dict(self.messages),
            assets=dict(self.assets),
            market=self.market,
            skipped=dict(self.skipped),
            time_units={"local": self.local_clock.unit, "exchange": self.exch_clock.unit},
        )
        self._warn(path, tick)

    def _warn(self, path: Path, tick: float) -> None:
        report = self.report
        others = len(self.assets) - 1
        if others:
            add_warning(
                report,
                f"the capture holds {others} other asset(s) (report 'assets'), left out: read one with "
                "asset=TOKEN_ID",
            )
        if self.no_local:
            add_warning(
                report,
                f"{path} has no receive times: the messages' own timestamps stand for both clocks, so "
                "feed latency is not in the data",
            )
        for change in report["tick_size_changes"]:
            if float(change["new"]) < tick:
                add_warning(
                    report,
                    f"the tick became {change['new']} at {change['ts']} ns: finer than the grid {tick:g}",
                )
        if report["tick_size_changes"]:
            add_warning(
                report,
                f"the tick changed during the capture (report 'tick_size_changes'); the events use the "
                f"finest, {tick:g}, throughout, so quotes may be finer than the venue allowed at times",
            )
        if self.skipped["level_updates_before_book"]:
            add_warning(
                report,
                f"{self.skipped['level_updates_before_book']:,} level updates came before the first book "
                "of the asset and were skipped (its book is unknown until then)",
            )
        add_warning(
            report,
            "Polymarket's fee rate is set per market and not on the market channel: 0 unless given "
            "(--taker-fee RATE; the fee is RATE x shares x p x (1 - p), takers only)",
        )


def read_polymarket(path: str | Path, asset: str | None = None, tick_size: float | None = None) -> EventData:
    """Read one token's book and trades from a market-channel capture (see the module docstring).

    ``asset`` is the token id (default: the first one with a book); ``tick_size`` overrides the grid.
    Raises :class:`DataError` naming the line for malformed lines or messages, non-monotonic receive
    times, and prices off the grid; naming the file when the token is absent or has nothing to read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    chosen = asset or _first_book_asset(path)
    if chosen is None:
        raise DataError(f"{path}: no book message to build a book from; give asset=TOKEN_ID")
    reader = _Reader(str(chosen))
    for where, local, msg in _messages(path):
        reader.message(msg, local, where)
    tick = reader.grid(tick_size)
    reader.finish(path, tick)
    lot = reader.out.finest("size", reader.out.sizes)
    events = reader.out.build(tick, lot)
    normalize_clocks(events, reader.report, str(path))
    reader.report["files"] = [str(path)]
    instrument = Instrument(
        symbol=reader.asset,
        venue="polymarket",
        tick_size=tick,
        lot_size=lot,
        min_price=tick,
        max_price=round(1 - tick, 12),
        quote="USDC",
        size_unit="shares",
        **POLYMARKET_FEES,
    )
    return EventData(events=events, instrument=instrument, source=str(path), report=reader.report)


# -- writing a capture ---------------------------------------------------------------------------------------
SYNTHETIC_MARKET = "0x" + "5e" * 32  # the condition id a written capture names when given none
_NAMES = {BID: "BUY", ASK: "SELL"}


def _decimals(step: float) -> int:
    return max(0, -int(np.floor(np.log10(step) + 1e-9)))


@dataclass(frozen=True)
class Token:
    """One outcome token as the market channel names it, with the instrument's grid for its numbers."""

    asset_id: str
    market: str
    tick: float
    lot: float

    def price(self, ticks: int) -> str:
        return f"{ticks * self.tick:.{_decimals(self.tick)}f}"

    def size(self, lots: int) -> str:
        return f"{lots * self.lot:.{_decimals(self.lot)}f}"

    def head(self, kind: str, ts_ms: int) -> dict[str, Any]:
        return {"event_type": kind, "market": self.market, "asset_id": self.asset_id, "timestamp": str(ts_ms)}

    def book(self, levels: dict[int, dict[int, int]], ts_ms: int) -> dict[str, Any]:
        """A ``book`` message: bids best first, asks best first."""
        side = {s: sorted(levels[s].items(), reverse=s == BID) for s in (BID, ASK)}
        return {
            **self.head("book", ts_ms),
            "bids": [{"price": self.price(p), "size": self.size(q)} for p, q in side[BID]],
            "asks": [{"price": self.price(p), "size": self.size(q)} for p, q in side[ASK]],
            "tick_size": f"{self.tick:g}",
        }

    def price_change(
        self, changes: list[tuple[int, int, int]], best: tuple[int, int], ts_ms: int
    ) -> dict[str, Any]:
        """A ``price_change`` message (the current shape: one entry per level, each with the token)."""
        msg = self.head("price_change", ts_ms)
        del msg["asset_id"]
        msg["price_changes"] = [
            {
                "asset_id": self.asset_id,
                "price": self.price(price),
                "side": _NAMES[side],
                "size": self.size(size),
                "best_bid": self.price(best[0]),
                "best_ask": self.price(best[1]),
            }
            for side, price, size in changes
        ]
        return msg

    def last_trade(
        self, resting: int, price: int, size: int, ts_ms: int, fee_rate_bps: int = 0
    ) -> dict[str, Any]:
        """A ``last_trade_price`` message; ``side`` is the taker's (the resting side's opposite)."""
        return {
            **self.head("last_trade_price", ts_ms),
            "fee_rate_bps": str(fee_rate_bps),
            "price": self.price(price),
            "side": _NAMES[-resting],
            "size": self.size(size),
        }


def write_capture(
    data: EventData, path: str | Path, asset_id: str | None = None, market: str = SYNTHETIC_MARKET
) -> Path:
    """Write ``data`` as a market-channel capture of token ``asset_id`` (default: the instrument's
    symbol): a ``book`` first and after each reset, ``price_change`` per instant, ``last_trade_price``
    per trade, each line stamped with its receive time. :func:`read_polymarket` reads it back."""
    from quotewise.data.capture import level_batches, write_lines

    inst = data.instrument
    token = Token(asset_id or inst.symbol, market, inst.tick_size, inst.lot_size)

    def lines() -> Iterator[tuple[int, Any]]:
        for batch in level_batches(data.events):
            ts_ms = batch.exch_ts // 1_000_000
            if batch.snapshot is not None:
                yield batch.local_ts, token.book(batch.snapshot, ts_ms)
            elif batch.changes:
                changes = [(side, price, size) for side, price, size, _ in batch.changes]
                yield batch.local_ts, token.price_change(changes, batch.best, ts_ms)
            for resting, price, size in batch.trades:
                yield batch.local_ts, token.last_trade(resting, price, size, ts_ms)

    return write_lines(path, lines())
