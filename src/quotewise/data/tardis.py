"""tardis.dev CSV files (optionally gzipped) to normalized events.

The data type is read from the header:

- ``incremental_book_L2`` (``is_snapshot, side, price, amount``): one SET per row (amount 0
  removes the level). A run of ``is_snapshot=true`` rows at the start of the file or after
  non-snapshot rows is a fresh book, so it begins with CLEAR (side 0). Updates before the first
  snapshot change a book nobody has: they are skipped with a warning, and a file without any
  snapshot row is refused.
- ``book_snapshot_N`` (``asks[i].price/amount, bids[i].price/amount``) and ``quotes`` (the top
  level only, handled as ``book_snapshot_1``): each row shows the best N levels. The first row
  becomes CLEAR + SETs; every later row only its differences from the book built so far. A level
  that falls out of the top-N window is unknown, not gone, so it is kept; a level that is inside
  the new window (from the best price to the worst listed level) but no longer listed is removed
  (SET 0). A side listing fewer than N levels shows the whole side, so every unlisted level on it is
  removed. Removals come before the new sizes, so the book never crosses in between.
- ``trades`` (``id, side, price, amount``): TRADE events on the resting side (an aggressive
  ``buy`` rests on the ask: side -1); a non-numeric trade id becomes order_id 0, an ``unknown``
  aggressor side 0 (both counted).

Times are microseconds (``timestamp`` = exchange, ``local_timestamp`` = local), which is checked
rather than assumed: each column's unit is read from its magnitudes (reported under ``time_units``,
see :func:`quotewise.data.units.epoch_unit`). Empty price fields
(fewer levels than N) are skipped. Clocks are normalized as for every reader
(:func:`quotewise.data.units.normalize_clocks`). Errors name the file line (the header is line 1).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from quotewise.book.core import ASK_HI, BA, BASE, BB, BID_LO, N, level_size, new_book, set_level
from quotewise.data.store import EventData, add_warning
from quotewise.data.units import ValueFormatError, normalize_clocks, to_epoch_ns, units_and_step
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE, SET, TRADE
from quotewise.model.instrument import Instrument

_BASE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp")
_LEVEL_COLUMN = re.compile(r"(asks|bids)\[(\d+)\]\.(price|amount)")


def _header(path: Path) -> list[str]:
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt") as fh:
            first = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the CSV header ({exc})") from None
    return first.strip().split(",")


def tardis_kind(columns: list[str]) -> str | None:
    """The tardis data type a header belongs to, or None when it is not a tardis CSV."""
    if list(columns[:4]) != list(_BASE_COLUMNS):
        return None
    names = set(columns)
    if {"is_snapshot", "side", "price", "amount"} <= names:
        return "incremental_book_L2"
    if "asks[0].price" in names or "bids[0].price" in names:
        return "book_snapshot"
    if {"ask_price", "ask_amount", "bid_price", "bid_amount"} <= names:
        return "quotes"
    if {"id", "side", "price", "amount"} <= names:
        return "trades"
    return None


def _strings(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype("S")


def _to_units(
    path: Path, values: np.ndarray, step: float | None, what: str, rows: np.ndarray
) -> tuple[np.ndarray, float]:
    try:
        return units_and_step(values, step, what=what)
    except ValueFormatError as exc:
        raise DataError(f"{path}:{int(rows[exc.index]) + 2}: {exc}") from None


def _epoch_ns(path: Path, table: pa.Table, name: str) -> tuple[np.ndarray, str]:
    try:
        return to_epoch_ns(table.column(name).to_numpy(), name)
    except ValueFormatError as exc:
        raise DataError(f"{path}:{exc.index + 2}: {exc}") from None


@nb.njit(cache=True)
def _diff_snapshots(bid_px, bid_sz, ask_px, ask_sz, bid, ask, st, out_row, out_side, out_px, out_sz, write):
    """Replay snapshot rows on a dense book and emit the differences (see the module docstring).

    Prices are ticks (-1 = empty field). With ``write`` False only counts, so the caller can size the
    output exactly; the book arrays must then be fresh again for the writing pass.
    """
    base = st[BASE]
    n_rows, depth = bid_px.shape
    mark_bid = np.zeros(st[N], np.int64)
    mark_ask = np.zeros(st[N], np.int64)
    k = 0
    for r in range(n_rows):
        stamp = r + 1
        n_bid = 0
        n_ask = 0
        worst_bid = 0
        worst_ask = 0
        for j in range(depth):
            if bid_px[r, j] >= 0:
                if n_bid == 0 or bid_px[r, j] < worst_bid:
                    worst_bid = bid_px[r, j]
                mark_bid[bid_px[r, j] - base] = stamp
                n_bid += 1
            if ask_px[r, j] >= 0:
                if n_ask == 0 or ask_px[r, j] > worst_ask:
                    worst_ask = ask_px[r, j]
                mark_ask[ask_px[r, j] - base] = stamp
                n_ask += 1
        # levels inside this snapshot's window that it no longer lists are gone
        bid_lo = max(worst_bid - base if n_bid == depth else 0, st[BID_LO])
        ask_hi = min(worst_ask - base if n_ask == depth else st[N] - 1, st[ASK_HI])
        for side in (BID, ASK):
            levels, mark = (bid, mark_bid) if side == BID else (ask, mark_ask)
            i, top = (bid_lo, st[BB]) if side == BID else (st[BA], ask_hi)
            while i <= top:
                if levels[i] > 0 and mark[i] != stamp:
                    if write:
                        out_row[k] = r
                        out_side[k] = side
                        out_px[k] = base + i
                        out_sz[k] = 0
                    k += 1
                    set_level(bid, ask, st, side, base + i, 0)
                i += 1
        for side in (BID, ASK):
            px = bid_px if side == BID else ask_px
            sz = bid_sz if side == BID else ask_sz
            for j in range(depth):
                p = px[r, j]
                if p >= 0 and level_size(bid, ask, st, side, p) != sz[r, j]:
                    if write:
                        out_row[k] = r
                        out_side[k] = side
                        out_px[k] = p
                        out_sz[k] = sz[r, j]
                    k += 1
                    set_level(bid, ask, st, side, p, sz[r, j])
    return k


class _Reader:
    def __init__(self, path: Path, table: pa.Table, tick: float | None, lot: float | None) -> None:
        self.path = path
        self.table = table
        self.tick = tick
        self.lot = lot
        self.exch, exch_unit = _epoch_ns(path, table, "timestamp")
        self.local, local_unit = _epoch_ns(path, table, "local_timestamp")
        self.report: dict[str, Any] = {
            "rows": table.num_rows,
            "time_units": {"local": local_unit, "exchange": exch_unit},
        }

    def units(self, prices: np.ndarray, sizes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prices and sizes as ticks and lots; the first call fixes (or infers) the tick and lot."""
        ticks, self.tick = _to_units(self.path, prices, self.tick, "price", rows)
        lots, self.lot = _to_units(self.path, sizes, self.lot, "size", rows)
        return ticks, lots

    def events(
        self, rows: np.ndarray, kind: Any, side: Any, price: Any, size: Any, oid: Any = 0
    ) -> np.ndarray:
        ev = np.zeros(len(rows), EVENT_DTYPE)
        ev["exch_ts"] = self.exch[rows]
        ev["local_ts"] = self.local[rows]
        ev["kind"] = kind
        ev["side"] = side
        ev["price"] = price
        ev["size"] = size
        ev["order_id"] = oid
        return ev

    def incremental(self) -> np.ndarray:
        t = self.table
        price = _strings(t, "price")
        keep = np.flatnonzero(price != b"")
        self.report["empty_prices_skipped"] = int(len(price) - len(keep))
        keep, snap = self._from_first_snapshot(keep)
        side_text = _strings(t, "side")[keep]
        side = np.where(side_text == b"bid", BID, np.where(side_text == b"ask", ASK, 0))
        if (side == 0).any():
            line = int(keep[np.argmax(side == 0)]) + 2
            raise DataError(f"{self.path}:{line}: side {side_text[side == 0][0].decode()!r} is not bid/ask")
        ticks, lots = self.units(price[keep], _strings(t, "amount")[keep], keep)
        sets = self.events(keep, SET, side, ticks, lots)
        starts = np.flatnonzero(snap & ~np.concatenate(([False], snap[:-1])))
        self.report["snapshots"] = len(starts)
        clears = self.events(keep[starts], CLEAR, 0, 0, 0)
        return np.insert(sets, starts, clears)

    def _from_first_snapshot(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` from the first snapshot row on, and which of them are snapshot rows."""
        snap = _strings(self.table, "is_snapshot")[rows] == b"true"
        if not snap.any():
            raise DataError(
                f"{self.path}: {len(rows):,} incremental_book_L2 rows but no is_snapshot=true row to build "
                "the book from; use a file that starts with a snapshot (tardis.dev daily files do)"
            )
        first = int(np.argmax(snap))
        self.report["rows_before_first_snapshot"] = first
        if first:
            seconds = (self.local[rows[first]] - self.local[rows[0]]) / 1e9
            add_warning(
                self.report,
                f"{self.path}:{rows[first] + 2}: the book starts at the first is_snapshot row, "
                f"{seconds:.1f} s after the first row; the {first:,} update rows before it were skipped",
            )
        return rows[first:], snap[first:]

    def trades(self) -> np.ndarray:
        t = self.table
        rows = np.arange(t.num_rows)
        ticks, lots = self.units(_strings(t, "price"), _strings(t, "amount"), rows)
        aggressor = _strings(t, "side")
        side = np.where(aggressor == b"buy", ASK, np.where(aggressor == b"sell", BID, 0))
        self.report["trades_unknown_side"] = int(np.count_nonzero(side == 0))
        ids = t.column("id")
        numeric = pc.and_(pc.utf8_is_digit(ids), pc.less_equal(pc.utf8_length(ids), 18))
        self.report["trade_ids_not_numeric"] = int(t.num_rows - pc.sum(numeric).as_py())
        oid = pc.cast(pc.if_else(numeric, ids, "0"), pa.int64()).to_numpy()
        return self.events(rows, TRADE, side, ticks, lots, oid)

    def snapshots(self, columns: list[str]) -> np.ndarray:
        t = self.table
        if "ask_price" in columns:
            names = {("asks", 0): ("ask_price", "ask_amount"), ("bids", 0): ("bid_price", "bid_amount")}
        else:
            found = [m.groups() for m in map(_LEVEL_COLUMN.fullmatch, columns) if m]
            names = {(s, int(i)): (f"{s}[{i}].price", f"{s}[{i}].amount") for s, i, _ in found}
        depth = 1 + max(i for _, i in names)
        n = t.num_rows
        # every filled cell of both sides, converted in one call; then spread into (row, level) grids
        cells_p, cells_s, cells_row, slots = [], [], [], []
        for s_i, sname in enumerate(("bids", "asks")):
            for j in range(depth):
                if (sname, j) in names:
                    pcol, scol = names[(sname, j)]
                    price = _strings(t, pcol)
                    filled = np.flatnonzero(price != b"")
                    cells_p.append(price[filled])
                    cells_s.append(_strings(t, scol)[filled])
                    cells_row.append(filled)
                    slots.append((s_i, j, filled))
        rows = np.concatenate(cells_row)
        ticks, lots = self.units(np.concatenate(cells_p), np.concatenate(cells_s), rows)
        self.report["empty_prices_skipped"] = int(n * len(names) - len(rows))
        self.report["depth"] = depth
        first = self.events(np.zeros(1, np.int64), CLEAR, 0, 0, 0)
        if len(ticks) == 0:
            return first
        px = [np.full((n, depth), -1, np.int64) for _ in range(2)]
        sz = [np.zeros((n, depth), np.int64) for _ in range(2)]
        at = 0
        for s_i, j, filled in slots:
            px[s_i][filled, j] = ticks[at : at + len(filled)]
            sz[s_i][filled, j] = lots[at : at + len(filled)]
            at += len(filled)
        lo, hi = int(ticks.min()), int(ticks.max())
        empty = np.zeros(0, np.int64)
        dry = (empty, empty.astype(np.int8), empty, empty)
        count = _diff_snapshots(px[0], sz[0], px[1], sz[1], *new_book(lo, hi), *dry, False)
        out = (
            np.zeros(count, np.int64),
            np.zeros(count, np.int8),
            np.zeros(count, np.int64),
            np.zeros(count, np.int64),
        )
        _diff_snapshots(px[0], sz[0], px[1], sz[1], *new_book(lo, hi), *out, True)
        return np.concatenate([first, self.events(out[0], SET, out[1], out[2], out[3])])


def read_tardis(
    path: str | Path, *, tick_size: float | None = None, lot_size: float | None = None
) -> EventData:
    """Read one tardis.dev CSV (incremental_book_L2, book_snapshot_N, quotes or trades).

    ``tick_size``/``lot_size`` default to the finest decimals seen in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    columns = _header(path)
    kind = tardis_kind(columns)
    if kind is None:
        raise DataError(
            f"{path}: not a tardis.dev CSV this reader knows (incremental_book_L2, book_snapshot_N, "
            f"quotes, trades); header: {','.join(columns[:8])}"
        )
    types = {c: pa.string() for c in columns}
    types.update(timestamp=pa.int64(), local_timestamp=pa.int64())
    try:
        table = pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
        )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: no rows")
    symbols = pc.unique(table.column("symbol")).to_pylist()
    if len(symbols) != 1:
        raise DataError(f"{path}: several symbols {symbols[:5]}; read one instrument at a time")
    reader = _Reader(path, table, tick_size, lot_size)
    back = np.diff(reader.local) < 0
    if back.any():
        line = int(np.argmax(back)) + 3
        raise DataError(f"{path}:{line}: non-monotonic timestamps: local_timestamp goes backwards")
    if kind == "incremental_book_L2":
        events = reader.incremental()
    elif kind == "trades":
        events = reader.trades()
    else:
        events = reader.snapshots(columns)
    report = reader.report
    report["data_type"] = kind
    normalize_clocks(events, report, str(path))
    instrument = Instrument(
        symbol=str(symbols[0]),
        venue=str(table.column("exchange")[0].as_py()),
        tick_size=reader.tick,
        lot_size=reader.lot,
    )
    return EventData(events=events, instrument=instrument, source=str(path), report=report)
