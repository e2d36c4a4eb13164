"""Binance captures (``<local receive time> <JSON>`` lines, gzipped) to normalized L2 events.

One capture holds a symbol's combined streams: diff depth (``depthUpdate``), trades (``trade`` or
``aggTrade``), ``bookTicker``, and REST depth snapshots (``{"lastUpdateId": ...}``) written on
their own lines. The book is rebuilt the way Binance documents it: diffs are buffered until a
snapshot arrives; diffs older than the snapshot are dropped; the first applied diff must span the
snapshot's ``lastUpdateId`` (futures: ``U <= id <= u``; spot: ``U <= id + 1 <= u``) and every next
one must continue the chain (futures: ``pu`` equals the previous ``u``; spot: ``U`` is the previous
``u + 1``). A snapshot is emitted as CLEAR (side 0) plus a SET per level; diffs become SETs.

A broken chain raises :class:`DataError`, or with ``allow_gaps`` clears the book (the book is
unknown from there on, and an empty book is safer to trade against than a stale one) and skips
diffs until a later snapshot re-syncs it. Buffered diffs applied at a snapshot take the snapshot
line's local time: that is when a live reader could first apply them. Depth updates with no snapshot
anywhere cannot give a book and are refused; a first snapshot that comes more than
:data:`SNAPSHOT_WAIT_NS` after the first update is a warning in the report (the book is unknown
until then).

Trades become TRADE events on the resting side (``m`` true: the buyer made the market, so the bid
rested: side +1). ``bookTicker`` only repeats the depth stream and is counted, not emitted. Exchange
times are ``E`` for depth and ``T`` for trades, normally milliseconds; local times are normally
nanoseconds, but older captures wrote microseconds. Both units are read from the magnitudes, per file
(:class:`quotewise.data.units.EpochClock`, reported under ``time_units``); see
:func:`quotewise.data.units.normalize_clocks` for how both clocks are made monotone and consistent.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from quotewise.data.store import EventData, add_warning
from quotewise.data.units import EpochClock, ValueFormatError, normalize_clocks, units_and_step
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE, SET, TRADE
from quotewise.model.instrument import Instrument

SNAPSHOT_WAIT_NS = 5_000_000_000  # a REST snapshot fetched on subscribing comes sooner than this
PENDING_MAX = 10_000  # diffs kept while waiting for a snapshot; older ones cannot be needed
_NO_TIME = -1  # a snapshot without its own exchange time takes the running maximum
_decode = json.JSONDecoder().decode


class _Builder:
    """Collects events as blocks (runs sharing kind, side and times) and strings to convert later."""

    def __init__(self) -> None:
        self.count: list[int] = []
        self.kind: list[int] = []
        self.side: list[int] = []
        self.exch: list[int] = []
        self.local: list[int] = []
        self.oid: list[int] = []
        self.has_values: list[bool] = []
        self.group: list[int] = []  # blocks from one line share a group
        self.groups = 0
        self.where: list[tuple[str, int]] = []
        self.prices: list[str] = []
        self.sizes: list[str] = []

    def block(
        self, n: int, kind: int, side: int, exch: int, local: int, oid: int, where: tuple[str, int]
    ) -> None:
        if not self.where or where != self.where[-1]:
            self.groups += 1
        self.count.append(n)
        self.kind.append(kind)
        self.side.append(side)
        self.exch.append(exch)
        self.local.append(local)
        self.oid.append(oid)
        self.has_values.append(kind != CLEAR)
        self.where.append(where)
        self.group.append(self.groups)

    def levels(
        self, levels: list[list[str]], side: int, exch: int, local: int, where: tuple[str, int]
    ) -> None:
        if levels:
            self.prices.extend([lv[0] for lv in levels])
            self.sizes.extend([lv[1] for lv in levels])
            self.block(len(levels), SET, side, exch, local, 0, where)

    def _line_of(self, value_index: int) -> str:
        counts = np.asarray(self.count) * np.asarray(self.has_values)
        block = int(np.searchsorted(np.cumsum(counts), value_index, side="right"))
        path, line = self.where[block]
        return f"{path}:{line}"

    def convert(self, what: str, strings: list[str], step: float | None) -> tuple[np.ndarray, float]:
        try:
            return units_and_step(strings, step, what=what)
        except ValueFormatError as exc:
            raise DataError(f"{self._line_of(exc.index)}: {exc}") from None

    def build(self, tick: float | None, lot: float | None) -> tuple[np.ndarray, float, float]:
        counts = np.asarray(self.count, np.int64)
        ev = np.zeros(int(counts.sum()), EVENT_DTYPE)
        ev["kind"] = np.repeat(np.asarray(self.kind, np.uint8), counts)
        ev["side"] = np.repeat(np.asarray(self.side, np.int8), counts)
        ev["exch_ts"] = np.repeat(np.asarray(self.exch, np.int64), counts)
        ev["local_ts"] = np.repeat(np.asarray(self.local, np.int64), counts)
        ev["order_id"] = np.repeat(np.asarray(self.oid, np.int64), counts)
        valued = np.repeat(np.asarray(self.has_values, bool), counts)
        ev["price"][valued], tick = self.convert("price", self.prices, tick)
        ev["size"][valued], lot = self.convert("size", self.sizes, lot)
        # within a message, removals go first: the book then never crosses between two of its levels
        group = np.repeat(np.asarray(self.group, np.int64), counts)
        order = np.lexsort((ev["size"] != 0, group))
        return ev[order], tick, lot


def _venue(msg: dict[str, Any], symbol: str) -> str | None:
    """The market a message comes from, when it tells: COIN-M messages carry ``ps``/``pair`` or a
    ``_PERP`` symbol, USD-M diffs ``pu``, spot diffs neither; REST snapshots carry ``E`` on futures
    only, and futures trades carry ``X``."""
    if "ps" in msg or "pair" in msg or symbol.endswith("_PERP"):
        return "binance-coinm"
    if "pu" in msg:
        return "binance-usdm"
    if msg.get("e") == "depthUpdate":
        return "binance-spot"
    if "lastUpdateId" in msg:
        return "binance-usdm" if "E" in msg else "binance-spot"
    if msg.get("e") in ("trade", "aggTrade"):
        return "binance-usdm" if "X" in msg else "binance-spot"
    return None


class _Reader:
    """The per-line state machine: book sync, sequencing, counts."""

    def __init__(self, allow_gaps: bool) -> None:
        self.allow_gaps = allow_gaps
        self.out = _Builder()
        self.synced = False
        self.in_gap = False
        self.snapshot_id = 0
        self.prev_u = -1  # u of the last applied diff; -1 while awaiting the first after a snapshot
        self.pending: deque[tuple[dict[str, Any], int, tuple[str, int]]] = deque()
        self.prev_local = -1
        self.clocks: list[tuple[EpochClock, EpochClock]] = []
        self.first_depth_local: int | None = None
        self.applied = 0
        self.symbol = ""
        self.venue: str | None = None
        self.venue_guess: str | None = None
        self.report: dict[str, Any] = {
            "lines": 0,
            "depth_messages": 0,
            "snapshots": 0,
            "snapshots_redundant": 0,
            "trades": 0,
            "book_tickers_ignored": 0,
            "other_messages_ignored": 0,
            "diffs_stale": 0,
            "diffs_skipped_before_snapshot": 0,
            "diffs_skipped_in_gap": 0,
            "gaps": 0,
        }

    # -- lines -------------------------------------------------------------------------------
    def start_file(self) -> None:
        """Each file's times may be in their own units; within a file they must not change."""
        self.clocks.append((EpochClock("local receive time"), EpochClock("exchange time")))

    def _ns(self, clock: EpochClock, value: Any, where: tuple[str, int]) -> int:
        try:
            return clock.ns(int(value))
        except DataError as exc:
            raise DataError(f"{where[0]}:{where[1]}: {exc}") from None

    def _exch(self, value: Any, where: tuple[str, int]) -> int:
        return self._ns(self.clocks[-1][1], value, where)

    def line(self, raw: bytes, where: tuple[str, int]) -> None:
        self.report["lines"] += 1
        space = raw.find(b" ")
        try:
            if space <= 0:
                raise ValueError("no '<timestamp> ' prefix")
            local = int(raw[:space])
            obj = _decode(raw[space + 1 :].decode())
            if not isinstance(obj, dict):
                raise ValueError("the JSON is not an object")
        except ValueError as exc:
            raise DataError(
                f"{where[0]}:{where[1]}: malformed line, expected '<int time> <JSON>': {exc}"
            ) from None
        local = self._ns(self.clocks[-1][0], local, where)
        if local < self.prev_local:
            raise DataError(
                f"{where[0]}:{where[1]}: non-monotonic timestamps: local time {local} is before the "
                f"previous line's {self.prev_local}"
            )
        self.prev_local = local
        try:
            self._message(obj, local, where)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataError(
                f"{where[0]}:{where[1]}: malformed message ({type(exc).__name__}: {exc})"
            ) from None

    def _message(self, obj: dict[str, Any], local: int, where: tuple[str, int]) -> None:
        if "lastUpdateId" in obj:
            self._note_symbol(str(obj.get("symbol", "")), obj, where)
            self._snapshot(obj, local, where)
            return
        stream = str(obj.get("stream", ""))
        msg = obj["data"] if "stream" in obj else obj
        kind = msg.get("e") or stream.partition("@")[2]
        self._note_symbol(str(msg.get("s", "")) or stream.partition("@")[0].upper(), msg, where)
        if kind == "depthUpdate":
            self.report["depth_messages"] += 1
            if self.first_depth_local is None:
                self.first_depth_local = local
            if self.synced:
                self._diff(msg, local, where)
            else:
                self._hold(msg, local, where)
        elif kind in ("trade", "aggTrade"):
            self.report["trades"] += 1
            side = BID if msg["m"] else ASK
            trade_id = int(msg["t"] if kind == "trade" else msg["a"])
            self.out.prices.append(msg["p"])
            self.out.sizes.append(msg["q"])
            self.out.block(1, TRADE, side, self._exch(msg["T"], where), local, trade_id, where)
        elif kind == "bookTicker":
            self.report["book_tickers_ignored"] += 1
        else:
            self.report["other_messages_ignored"] += 1

    def _note_symbol(self, symbol: str, msg: dict[str, Any], where: tuple[str, int]) -> None:
        if symbol:
            symbol = symbol.upper()
            if not self.symbol:
                self.symbol = symbol
            elif symbol != self.symbol:
                raise DataError(
                    f"{where[0]}:{where[1]}: symbol {symbol} in a stream of {self.symbol}; "
                    "read one instrument at a time"
                )
        if self.venue is None:
            venue = _venue(msg, self.symbol)
            # depth messages and snapshots say it for sure; a trade is only a fallback guess
            if venue is not None and ("U" in msg or "lastUpdateId" in msg or venue == "binance-coinm"):
                self.venue = venue
            elif venue is not None and self.venue_guess is None:
                self.venue_guess = venue

    # -- depth -------------------------------------------------------------------------------
    def _hold(self, msg: dict[str, Any], local: int, where: tuple[str, int]) -> None:
        if len(self.pending) == PENDING_MAX:
            self.pending.popleft()
            self._count_skipped(1)
        self.pending.append((msg, local, where))

    def _count_skipped(self, n: int) -> None:
        key = "diffs_skipped_in_gap" if self.in_gap else "diffs_skipped_before_snapshot"
        self.report[key] += n

    def _snapshot(self, snap: dict[str, Any], local: int, where: tuple[str, int]) -> None:
        self.report["snapshots"] += 1
        if self.synced:
            # the unbroken diff chain already gives this book exactly
            self.report["snapshots_redundant"] += 1
            return
        exch = self._exch(snap["E"], where) if "E" in snap else _NO_TIME
        self.out.block(1, CLEAR, 0, exch, local, 0, where)
        self.out.levels(snap["bids"], BID, exch, local, where)
        self.out.levels(snap["asks"], ASK, exch, local, where)
        self.snapshot_id = int(snap["lastUpdateId"])
        self.prev_u = -1
        self.synced = True
        held, self.pending = self.pending, deque()
        for msg, _, held_where in held:
            if self.synced:
                self._diff(msg, local, held_where)
            else:
                self.pending.append((msg, local, held_where))
        if self.synced:
            self.in_gap = False
        if self.report["snapshots"] == 1:
            self._note_book_start(local, where)

    def _note_book_start(self, local: int, where: tuple[str, int]) -> None:
        """Warn when the first snapshot comes long after the depth stream began: no book until then."""
        if self.first_depth_local is None:
            return
        waited = local - self.first_depth_local
        if waited > SNAPSHOT_WAIT_NS:
            skipped = self.report["depth_messages"] - self.applied
            add_warning(
                self.report,
                f"{where[0]}:{where[1]}: the book starts at this first depth snapshot, {waited / 1e9:.1f} s "
                f"after the first depth update; the {skipped:,} depth updates before it were skipped",
            )

    def _diff(self, msg: dict[str, Any], local: int, where: tuple[str, int]) -> None:
        first, last = int(msg["U"]), int(msg["u"])
        prev = msg.get("pu")
        futures = prev is not None
        if self.prev_u < 0:
            sid = self.snapshot_id
            if last < sid or (not futures and last == sid):
                if self.in_gap:
                    self.report["diffs_skipped_in_gap"] += 1
                else:
                    self.report["diffs_stale"] += 1
                return
            target = sid if futures else sid + 1
            if first > target:
                self._gap(
                    msg,
                    local,
                    where,
                    f"snapshot lastUpdateId={sid} but the next diff has U={first}, u={last}",
                )
                return
        elif (int(prev) != self.prev_u) if futures else (first != self.prev_u + 1):
            ids = f"pu={prev}, U={first}, u={last}" if futures else f"U={first}, u={last}"
            self._gap(msg, local, where, f"previous diff ended at u={self.prev_u} but this one has {ids}")
            return
        exch = self._exch(msg["E"], where)
        self.out.levels(msg["b"], BID, exch, local, where)
        self.out.levels(msg["a"], ASK, exch, local, where)
        self.prev_u = last
        self.applied += 1

    def _gap(self, msg: dict[str, Any], local: int, where: tuple[str, int], detail: str) -> None:
        if not self.allow_gaps:
            raise DataError(
                f"{where[0]}:{where[1]}: depth update-id gap: {detail} "
                "(allow_gaps=True skips to the next snapshot)"
            )
        self.report["gaps"] += 1
        self.synced = False
        self.in_gap = True
        self.prev_u = -1
        self.out.block(1, CLEAR, 0, self._exch(msg["E"], where), local, 0, where)
        self._hold(msg, local, where)

    def finish(self, files: list[Path]) -> None:
        """Count what never found a snapshot; refuse a stream whose book cannot be built at all."""
        self._count_skipped(len(self.pending))
        self.pending.clear()
        depth = self.report["depth_messages"]
        if depth and not self.report["snapshots"]:
            names = ",".join(map(str, files))
            raise DataError(
                f'{names}: {depth:,} depth updates but no depth snapshot (a {{"lastUpdateId": ...}} line) '
                f"to build the book from; give the earlier file that has it first: --data EARLIER.gz,{names}"
            )
        self.report["time_units"] = {
            "local": _units(c[0] for c in self.clocks),
            "exchange": _units(c[1] for c in self.clocks),
        }


def _units(clocks: Iterable[EpochClock]) -> str | None:
    """The units the files were in, in file order (one when they agree)."""
    return ", ".join(dict.fromkeys(c.unit for c in clocks if c.unit)) or None


def _fill_missing_exch(events: np.ndarray) -> None:
    """Give snapshots without ``E`` the latest exchange time before them (the first one after, if none)."""
    exch = events["exch_ts"]
    missing = exch == _NO_TIME
    if not missing.any():
        return
    exch[missing] = np.maximum.accumulate(exch)[missing]
    still = exch == _NO_TIME
    if still.any():
        timed = exch[~still]
        exch[still] = timed[0] if len(timed) else events["local_ts"][still]


def _lines(path: Path) -> IO[bytes]:
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else path.open("rb")


def read_binance(
    paths: str | Path | Sequence[str | Path],
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    allow_gaps: bool = False,
) -> EventData:
    """Read one or more consecutive capture files of one symbol, in the order given, as one stream.

    ``tick_size``/``lot_size`` default to the finest decimals in the data. Raises
    :class:`DataError` naming the file and line for malformed lines, non-monotonic local times,
    times in no unit or mixed units, update-id gaps (unless ``allow_gaps``) and truncated or corrupt
    gzip files, and naming the files for depth updates without any snapshot.
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not files:
        raise DataError("read_binance: no files given")
    reader = _Reader(allow_gaps)
    for path in files:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        reader.start_file()
        try:
            with _lines(path) as fh:
                for number, raw in enumerate(fh, 1):
                    reader.line(raw, (str(path), number))
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(f"{path}: truncated or corrupt gzip file ({exc})") from None
    reader.finish(files)
    if not reader.out.count:
        raise DataError(f"{', '.join(map(str, files))}: no depth snapshot, diff or trade to read")
    events, tick, lot = reader.out.build(tick_size, lot_size)
    _fill_missing_exch(events)
    report = reader.report
    normalize_clocks(events, report, ", ".join(map(str, files)))
    report["files"] = [str(p) for p in files]
    venue = reader.venue or reader.venue_guess or "binance"
    instrument = Instrument(symbol=reader.symbol or "UNKNOWN", venue=venue, tick_size=tick, lot_size=lot)
    return EventData(events=events, instrument=instrument, source=", ".join(map(str, files)), report=report)
