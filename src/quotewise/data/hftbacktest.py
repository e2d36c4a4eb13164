"""hftbacktest's ``.npz`` event files (array ``data``), read into and written from normalized events.

hftbacktest (nkaz001/hftbacktest, v2) stores 64-byte records ``ev, exch_ts, local_ts, px, qty,
order_id, ival, fval`` with float prices and sizes and the event in ``ev``: the low byte is the
kind (1 depth level set, 2 trade, 3 depth clear, 4 snapshot level), and flags mark the processors
that see it (``EXCH_EVENT`` 1<<31, ``LOCAL_EVENT`` 1<<30) and the side (``BUY_EVENT`` 1<<29,
``SELL_EVENT`` 1<<28: the bid side for depth, the aggressor for trades).

Reading: depth and snapshot levels become SET, trades TRADE on the resting side (the opposite of the
aggressor). A clear without a side clears the book (CLEAR 0); a side clear removes the levels from
the best price to ``px`` inclusive (the whole side when ``px`` is not finite), so it is resolved by
replaying the book: CLEAR of that side when it covers every level, otherwise one SET 0 per removed
level. hftbacktest's event-order correction can split one event into an exchange-only and a
local-only copy; the local-only copy of such a pair is dropped so trades are not counted twice.
Times are nanoseconds in hftbacktest v2, microseconds in older versions: each column's unit is read
from its magnitudes (reported under ``time_units``), and clocks more than an hour apart are refused.

Writing: every row carries both processor flags. L3 events have no place in this L2 format, so
they are replayed through the book and written as the level's new total size (an EXECUTE also
writes the trade). The files do not store the tick and lot sizes, so reading requires them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numba as nb
import numpy as np

from quotewise.book.core import ASK_HI, BA, BASE, BB, BID_LO, apply_event, apply_events, level_size, new_book
from quotewise.data.store import EventData
from quotewise.data.units import ValueFormatError, check_clock_offset, to_epoch_ns
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import ADD, ASK, BID, CLEAR, EVENT_DTYPE, EXECUTE, SET, TRADE
from quotewise.model.instrument import Instrument

HBT_DTYPE = np.dtype(
    [
        ("ev", "<u8"),
        ("exch_ts", "<i8"),
        ("local_ts", "<i8"),
        ("px", "<f8"),
        ("qty", "<f8"),
        ("order_id", "<u8"),
        ("ival", "<i8"),
        ("fval", "<f8"),
    ],
    align=True,
)

EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28
DEPTH_EVENT = 1
TRADE_EVENT = 2
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4
GRID_TOLERANCE = 1e-6  # in units of the tick (lot): float noise allowed before a value is off-grid


def _on_grid(path: Path, values: np.ndarray, step: float, what: str, check: np.ndarray) -> np.ndarray:
    units = values / step
    rounded = np.round(units)
    bad = check & ~(np.abs(units - rounded) <= GRID_TOLERANCE)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}: row {row}: {what} {float(values[row])!r} is not a multiple of the {what} step {step}"
        )
    return np.where(check, rounded, 0).astype(np.int64)


def _times_to_ns(path: Path, raw: np.ndarray) -> dict[str, str]:
    """Put both time columns in nanoseconds, in place, and check they agree; the units found."""
    units = {}
    for name, clock in (("local_ts", "local"), ("exch_ts", "exchange")):
        try:
            raw[name], units[clock] = to_epoch_ns(raw[name], name)
        except ValueFormatError as exc:
            raise DataError(f"{path}: row {exc.index}: {exc}") from None
    if len(raw):
        check_clock_offset(int((raw["local_ts"] - raw["exch_ts"]).min()), str(path))
    return units


def _drop_split_copies(raw: np.ndarray, report: dict[str, Any]) -> np.ndarray:
    """Rows to keep: all but local-only rows that repeat an exchange-only row."""
    flags = raw["ev"] & np.uint64(EXCH_EVENT | LOCAL_EVENT)
    exch_only = flags == EXCH_EVENT
    local_only = flags == LOCAL_EVENT
    report["exch_only_rows"] = int(exch_only.sum())
    report["local_only_rows"] = int(local_only.sum())
    report["unflagged_rows"] = int((flags == 0).sum())
    keep = np.ones(len(raw), bool)
    if local_only.any() and exch_only.any():
        body = raw.copy()
        body["ev"] &= ~np.uint64(EXCH_EVENT | LOCAL_EVENT)
        exch_rows = set(body[exch_only].tolist())
        idx = np.flatnonzero(local_only)
        dup = np.array([row in exch_rows for row in body[idx].tolist()], bool)
        keep[idx[dup]] = False
    report["local_only_duplicates_dropped"] = int((~keep).sum())
    return keep


def _resolve_side_clears(events: np.ndarray, partial: np.ndarray, report: dict[str, Any]) -> np.ndarray:
    """Turn hftbacktest's ranged side clears into CLEAR or SET 0 events by replaying the book."""
    where = np.flatnonzero(partial)
    report["side_clears"] = len(where)
    if len(where) == 0:
        return events
    prices = events["price"][events["kind"] != CLEAR]
    lo = int(min(prices.min(), events["price"][where].min())) if len(prices) else 0
    hi = int(max(prices.max(), events["price"][where].max())) if len(prices) else 1
    bid, ask, st = new_book(max(lo, 0), max(hi, 1))
    pieces = []
    start = 0
    for i in where:
        apply_events(bid, ask, st, events[start:i])
        pieces.append(events[start:i])
        e = events[i]
        side, upto = int(e["side"]), int(e["price"]) - int(st[BASE])
        if side == BID:
            occupied = np.flatnonzero(bid[: st[BB] + 1] > 0) if st[BB] >= 0 else np.zeros(0, np.int64)
            gone = occupied[occupied >= upto]
        else:
            occupied = np.flatnonzero(ask[: st[ASK_HI] + 1] > 0)
            gone = occupied[occupied <= upto]
        if len(gone) == len(occupied):
            out = np.array([e], EVENT_DTYPE)
            out["price"] = 0
        else:
            out = np.repeat(np.array([e], EVENT_DTYPE), len(gone))
            out["kind"] = SET
            out["price"] = gone + st[BASE]
        apply_events(bid, ask, st, out)
        pieces.append(out)
        start = i + 1
    pieces.append(events[start:])
    return np.concatenate(pieces)


def read_hftbacktest_npz(
    path: str | Path, *, tick_size: float, lot_size: float, symbol: str = "UNKNOWN"
) -> EventData:
    """Read an hftbacktest ``.npz`` event file; prices and sizes must lie on ``tick_size``/``lot_size``."""
    path = Path(path)
    for value, name in ((tick_size, "tick_size"), (lot_size, "lot_size")):
        if value is None or not np.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} must be a positive number: hftbacktest files do not store it")
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = npz["data"]
    except (OSError, ValueError, KeyError, EOFError, AttributeError, TypeError) as exc:
        raise DataError(f"{path}: not a readable hftbacktest .npz with a 'data' array ({exc})") from None
    missing = set(HBT_DTYPE.names) - set(raw.dtype.names or ())
    if missing:
        raise DataError(f"{path}: 'data' lacks hftbacktest fields {sorted(missing)}")
    report: dict[str, Any] = {"rows": len(raw), "time_units": _times_to_ns(path, raw)}
    raw = raw[_drop_split_copies(raw, report)]
    ev = raw["ev"]
    kind = (ev & np.uint64(0xFF)).astype(np.int64)
    buy = (ev & np.uint64(BUY_EVENT)) != 0
    sell = (ev & np.uint64(SELL_EVENT)) != 0
    known = np.isin(kind, (DEPTH_EVENT, TRADE_EVENT, DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT))
    if not known.all():
        row = int(np.argmax(~known))
        raise DataError(
            f"{path}: row {row}: event kind {kind[row]} is not supported "
            "(only depth 1, trade 2, depth clear 3 and depth snapshot 4)"
        )
    depth = (kind == DEPTH_EVENT) | (kind == DEPTH_SNAPSHOT_EVENT)
    sideless = depth & ~(buy ^ sell)
    if sideless.any():
        raise DataError(f"{path}: row {int(np.argmax(sideless))}: depth event without exactly one side flag")
    clear = kind == DEPTH_CLEAR_EVENT
    ranged = clear & (buy | sell) & np.isfinite(raw["px"])
    out = np.zeros(len(raw), EVENT_DTYPE)
    out["exch_ts"] = raw["exch_ts"]
    out["local_ts"] = raw["local_ts"]
    out["price"] = _on_grid(path, raw["px"], tick_size, "price", ~clear | ranged)
    out["size"] = _on_grid(path, raw["qty"], lot_size, "size", ~clear)
    out["order_id"] = raw["order_id"].astype(np.int64)
    out["kind"] = np.select([depth, kind == TRADE_EVENT], [SET, TRADE], CLEAR)
    book_side = np.where(buy, BID, np.where(sell, ASK, 0))
    out["side"] = np.where(kind == TRADE_EVENT, -book_side, book_side)
    events = _resolve_side_clears(out, ranged, report)
    report["local_ts_decreases"] = int(np.count_nonzero(np.diff(events["local_ts"]) < 0))
    report["exch_ts_decreases"] = int(np.count_nonzero(np.diff(events["exch_ts"]) < 0))
    instrument = Instrument(symbol=symbol, venue="unknown", tick_size=tick_size, lot_size=lot_size)
    return EventData(events=events, instrument=instrument, source=str(path), report=report)


@nb.njit(cache=True, _nrt=False)  # see quotewise.book.core.apply_events
def _replay_l2(events, bid, ask, st, level_after, clear_upto):
    """Level size after each event, and for side clears the farthest occupied price they remove."""
    for k in range(events.shape[0]):
        e = events[k]
        kind, side = e["kind"], e["side"]
        if kind == CLEAR and side == BID:
            i = st[BID_LO]
            while i <= st[BB] and bid[i] <= 0:
                i += 1
            clear_upto[k] = st[BASE] + i if i <= st[BB] else 0
        elif kind == CLEAR and side == ASK:
            i = st[ASK_HI]
            while i >= st[BA] and ask[i] <= 0:
                i -= 1
            clear_upto[k] = st[BASE] + i if i >= st[BA] else 0
        apply_event(bid, ask, st, kind, side, e["price"], e["size"])
        if kind == SET or (kind >= ADD and kind <= EXECUTE):
            level_after[k] = level_size(bid, ask, st, side, e["price"])


def l2_events(events: np.ndarray) -> np.ndarray:
    """Order-level events as level events: each ADD/REDUCE/DELETE/EXECUTE becomes a SET of its
    level's new total, and an EXECUTE also a TRADE (before it) on the resting side; SET, TRADE and
    CLEAR pass as they are. How an L3 market is written in a format that has only levels."""
    kind = events["kind"]
    l3 = (kind >= ADD) & (kind <= EXECUTE)
    if not l3.any():
        return events.copy()
    prices = events["price"][kind != CLEAR]
    bid, ask, st = new_book(int(prices.min()), int(prices.max()))
    level_after = np.zeros(len(events), np.int64)
    _replay_l2(events, bid, ask, st, level_after, np.zeros(len(events), np.int64))
    rows = np.repeat(np.arange(len(events)), np.where(kind == EXECUTE, 2, 1))
    trade_copy = np.zeros(len(rows), bool)
    trade_copy[np.flatnonzero(kind[rows] == EXECUTE)[::2]] = True
    out = events[rows].copy()
    out["size"] = np.where(l3[rows] & ~trade_copy, level_after[rows], out["size"])
    out["kind"] = np.where(trade_copy, TRADE, np.where(l3[rows], SET, out["kind"]))
    return out


def write_hftbacktest_npz(data: EventData, path: str | Path) -> Path:
    """Write ``data`` as an hftbacktest ``.npz`` (uncompressed, as hftbacktest's own tools do)."""
    path = Path(path)
    ev = data.events
    kind = ev["kind"].astype(np.int64)
    side = ev["side"].astype(np.int64)
    l3 = (kind >= ADD) & (kind <= EXECUTE)
    side_clear = (kind == CLEAR) & (side != 0)
    size = ev["size"].copy()
    clear_upto = np.zeros(len(ev), np.int64)
    if l3.any() or side_clear.any():
        prices = ev["price"][kind != CLEAR]
        bid, ask, st = new_book(int(prices.min()), int(prices.max())) if len(prices) else new_book(0, 1)
        level_after = np.zeros(len(ev), np.int64)
        _replay_l2(ev, bid, ask, st, level_after, clear_upto)
        size = np.where(l3, level_after, size)
    # an EXECUTE writes its trade first, then the level it leaves
    rows = np.repeat(np.arange(len(ev)), np.where(kind == EXECUTE, 2, 1))
    is_trade_copy = np.zeros(len(rows), bool)
    is_trade_copy[np.flatnonzero(kind[rows] == EXECUTE)[::2]] = True
    as_trade = (kind[rows] == TRADE) | is_trade_copy
    is_clear = kind[rows] == CLEAR
    row_side = side[rows]
    # trades flag the aggressor, the opposite of the resting side we store
    flag_side = np.where(as_trade, -row_side, row_side)
    flags = np.where(flag_side > 0, BUY_EVENT, np.where(flag_side < 0, SELL_EVENT, 0))
    code = np.where(as_trade, TRADE_EVENT, np.where(is_clear, DEPTH_CLEAR_EVENT, DEPTH_EVENT))
    tick, lot = data.instrument.tick_size, data.instrument.lot_size
    out = np.zeros(len(rows), HBT_DTYPE)
    out["ev"] = (code | flags | EXCH_EVENT | LOCAL_EVENT).astype(np.uint64)
    out["exch_ts"] = ev["exch_ts"][rows]
    out["local_ts"] = ev["local_ts"][rows]
    price = np.where(is_clear, clear_upto[rows], ev["price"][rows])
    out["px"] = price * tick
    out["qty"] = np.where(as_trade, ev["size"][rows], np.where(is_clear, 0, size[rows])) * lot
    out["order_id"] = ev["order_id"][rows].astype(np.uint64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.savez(fh, data=out)
    return path
