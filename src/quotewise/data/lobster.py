"""LOBSTER (NASDAQ TotalView-ITCH reconstructions) message + orderbook files to normalized events.

A LOBSTER pair is a message file (one order event per row) and an orderbook file whose row ``k``
is the visible book (``levels`` price levels a side) right after message ``k``. The events we
produce are:

- an initial snapshot at message 0's time: CLEAR, then a SET per level of orderbook row 0 with
  message 0 undone (the book the first message acted on);
- one L3 event per message: 1 -> ADD, 2 -> REDUCE, 3 -> DELETE, 4 -> EXECUTE (order ids kept),
  5 (hidden execution) -> TRADE with the resting side; 6 (auction cross: a summary of executions
  already in the file, with a pseudo order id) and 7 (halt) rows are counted and skipped;
- "reveals": when row ``k-1`` shows a full window on a side, levels of row ``k`` strictly beyond
  its worst price come from outside the window, where LOBSTER records no messages, so they are
  SET from the book file after message ``k``. Levels our replay still holds in that same outer
  range that row ``k`` proves gone (they left the window earlier and were removed unseen) are SET
  to 0. Nothing inside the previous window is ever taken from the book file, so replaying the
  events and comparing with every orderbook row is a real test of the messages.

Times are seconds after midnight New York time on the date in the file name; prices are dollars
x 10000, turned into ticks of ``tick_size`` dollars. Book changes off the tick grid are errors;
hidden executions at half-cent midpoints are rounded toward the aggressor (a resting bid's trade
up, a resting ask's down), which keeps the set of tick prices the trade reached unchanged.

The report counts what was skipped, revealed, cleared, rounded and clamped, and the reader replays
its own events against every orderbook row (``rows_not_matching_book_file``, 0 on sound data).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from quotewise.book.core import (
    ASK_HI,
    BASE,
    BID_LO,
    CROSS_FIXES,
    NEG_CLAMPS,
    OUT_OF_RANGE,
    apply_event,
    clear_side,
    new_book,
    set_level,
)
from quotewise.book.orderbook import EMPTY_ASK, EMPTY_BID, replay_top_levels
from quotewise.data.store import EventData
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import ADD, ASK, BID, CLEAR, DELETE, EVENT_DTYPE, EXECUTE, REDUCE, SET, TRADE
from quotewise.model.instrument import Instrument

NEW_YORK = ZoneInfo("America/New_York")
PRICE_SCALE = 10_000  # LOBSTER prices are dollars x 10000
DEFAULT_TICK = 0.01

_NAME = re.compile(
    r"(?P<ticker>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<kind>message|orderbook)_(?P<levels>\d+)\.csv"
)
# message type -> event kind (index 0 unused); -1 marks a row that is counted and skipped
_KIND_OF_TYPE = np.array([0, ADD, REDUCE, DELETE, EXECUTE, TRADE, -1, -1], np.int64)
_TYPE_NAMES = {
    1: "add",
    2: "reduce",
    3: "delete",
    4: "execute",
    5: "hidden_execution",
    6: "cross_trade",
    7: "halt",
}
_SECOND = 1_000_000_000
_HOUR = 3600 * _SECOND


@dataclass(frozen=True)
class _File:
    """One CSV, on disk or inside a zip; ``label`` is how errors name it."""

    name: str
    label: str
    path: Path
    member: str | None = None

    def read(self) -> bytes:
        try:
            if self.member is None:
                return self.path.read_bytes()
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.member)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.label}: cannot be read ({exc})") from exc


@dataclass(frozen=True)
class _Pair:
    ticker: str
    date: dt.date
    levels: int
    message: _File
    orderbook: _File


@dataclass
class LobsterRead:
    """Events plus what a golden check needs: where each message row ends and the book file.

    ``row_ends[k]`` is the index of the last event of message row ``k`` (its own event and any
    reveals after it), so replaying ``events[: row_ends[k] + 1]`` gives orderbook row ``k``.
    ``book`` is the orderbook file in ticks with LOBSTER's empty-level sentinels kept.
    """

    data: EventData
    row_ends: np.ndarray
    book: np.ndarray


def _candidates(path: Path) -> list[_File]:
    if path.is_dir():
        return [_File(p.name, str(p), p) for p in sorted(path.iterdir()) if p.is_file()]
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if not m.endswith("/")]
        except zipfile.BadZipFile as exc:
            raise DataError(f"{path}: not a readable zip file ({exc})") from exc
        return [_File(PurePosixPath(m).name, f"{path}:{m}", path, m) for m in members]
    if path.is_file():
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise DataError(
                f"{path}: not a LOBSTER file name; expected TICKER_YYYY-MM-DD_START_END_message_LEVELS.csv "
                "(the orderbook file is found by the same name with 'orderbook')"
            )
        other = "orderbook" if match["kind"] == "message" else "message"
        sibling = path.with_name(f"{path.name[: match.start('kind')]}{other}{path.name[match.end('kind') :]}")
        if not sibling.is_file():
            raise DataError(f"{path}: its {other} file {sibling.name} is not beside it")
        return [_File(p.name, str(p), p) for p in (path, sibling)]
    raise DataError(f"{path}: no such file or directory")


def _find_pair(path: Path, ticker: str | None, levels: int | None) -> _Pair:
    files = _candidates(path)
    groups: dict[tuple[str, str, str, str, int], dict[str, _File]] = {}
    for f in files:
        m = _NAME.fullmatch(f.name)
        if m is not None:
            key = (m["ticker"], m["date"], m["start"], m["end"], int(m["levels"]))
            groups.setdefault(key, {})[m["kind"]] = f
    found = ", ".join(f.name for f in files) or "nothing"
    if not groups:
        raise DataError(f"{path}: no LOBSTER message/orderbook files (found: {found})")
    chosen = {
        k: v
        for k, v in groups.items()
        if (ticker is None or k[0].upper() == ticker.upper()) and (levels is None or k[4] == levels)
    }
    if not chosen:
        have = ", ".join(sorted({f"{k[0]} level {k[4]}" for k in groups}))
        raise DataError(f"{path}: no LOBSTER files for ticker={ticker} levels={levels} (there are: {have})")
    if len(chosen) > 1:
        have = ", ".join(sorted(f"{k[0]} {k[1]} level {k[4]}" for k in chosen))
        raise DataError(
            f"{path}: holds several LOBSTER pairs ({have}); choose one with ticker= and/or levels="
        )
    ((key, pair),) = chosen.items()
    for kind in ("message", "orderbook"):
        if kind not in pair:
            present = next(iter(pair.values())).name
            raise DataError(f"{path}: no LOBSTER {kind} file to go with {present} (found: {found})")
    try:
        date = dt.date.fromisoformat(key[1])
    except ValueError as exc:
        raise DataError(f"{pair['message'].label}: bad date in the file name ({exc})") from exc
    if key[4] < 1:
        raise DataError(f"{pair['orderbook'].label}: level count in the file name must be >= 1")
    return _Pair(key[0], date, key[4], pair["message"], pair["orderbook"])


def _diagnose(file: _File, data: bytes, floats: tuple[bool, ...], exc: Exception) -> DataError:
    """Slow path, only for a file the fast parser refused: find and name the first bad line."""
    ncols = len(floats)
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        fields = line.split(",")
        if len(fields) != ncols:
            return DataError(
                f"{file.label}: line {n}: expected {ncols} comma-separated fields, found {len(fields)}"
            )
        for i, (text, is_float) in enumerate(zip(fields, floats, strict=True), 1):
            try:
                float(text) if is_float else int(text)
            except ValueError:
                what = "a number" if is_float else "an integer"
                return DataError(f"{file.label}: line {n}: field {i} is not {what}: {text!r}")
    return DataError(f"{file.label}: not a LOBSTER CSV file ({exc})")


def _parse(file: _File, floats: tuple[bool, ...]) -> list[np.ndarray]:
    """Columns of a header-less numeric CSV (pyarrow, multi-threaded); float64 or int64 each."""
    data = file.read().rstrip(b"\r\n\t ")
    if not data:
        raise DataError(f"{file.label}: line 1: the file is empty")
    names = [f"c{i}" for i in range(len(floats))]
    types = {n: pa.float64() if f else pa.int64() for n, f in zip(names, floats, strict=True)}
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _diagnose(file, data, floats, exc) from None
    return [table.column(n).to_numpy() for n in names]


def _fail(file: _File, bad: np.ndarray, what: str) -> None:
    """Raise naming the first row where ``bad`` holds (rows count from line 1)."""
    if bad.any():
        raise DataError(f"{file.label}: line {int(np.argmax(bad)) + 1}: {what}")


def _tick_divisor(tick_size: float | None) -> int:
    tick = DEFAULT_TICK if tick_size is None else float(tick_size)
    div = round(tick * PRICE_SCALE)
    if div < 1 or abs(tick * PRICE_SCALE - div) > 1e-9 * PRICE_SCALE:
        raise ConfigError(f"tick_size {tick} must be a whole multiple of LOBSTER's price unit 0.0001")
    return div


def _epoch_ns(date: dt.date, seconds: np.ndarray) -> np.ndarray:
    """Seconds after New York midnight -> ns since the epoch (UTC); DST is taken per hour of the
    day, which is exact for New York, whose clock changes happen on the hour."""
    t_ns = np.rint(seconds * _SECOND).astype(np.int64)
    day_ns = (date - dt.date(1970, 1, 1)).days * 86_400 * _SECOND
    hours, inverse = np.unique(t_ns // _HOUR, return_inverse=True)
    midnight = dt.datetime.combine(date, dt.time())
    offsets = np.array(
        [
            (midnight + dt.timedelta(hours=int(h))).replace(tzinfo=NEW_YORK).utcoffset()
            // dt.timedelta(microseconds=1)
            for h in hours
        ],
        np.int64,
    )
    return day_ns + t_ns - offsets[inverse] * 1000


def _book_to_ticks(file: _File, cols: list[np.ndarray], div: int) -> np.ndarray:
    """Validate the orderbook file and convert its prices to ticks (sentinels kept)."""
    raw = np.column_stack(cols)
    ap, asz, bp, bsz = (raw[:, j::4] for j in range(4))
    a_empty, b_empty = ap == EMPTY_ASK, bp == EMPTY_BID
    for empty, sz, name in ((a_empty, asz, "ask"), (b_empty, bsz, "bid")):
        _fail(file, (empty[:, :-1] & ~empty[:, 1:]).any(axis=1), f"an {name} level follows an empty one")
        _fail(file, (empty & (sz != 0)).any(axis=1), f"an empty {name} level has a non-zero size")
        _fail(file, (~empty & (sz <= 0)).any(axis=1), f"an {name} level has a size <= 0")
    _fail(
        file,
        (~a_empty & ((ap <= 0) | (ap % div != 0))).any(axis=1),
        f"an ask price is not on the {div}-unit grid",
    )
    _fail(
        file,
        (~b_empty & ((bp <= 0) | (bp % div != 0))).any(axis=1),
        f"a bid price is not on the {div}-unit grid",
    )
    _fail(
        file,
        (~a_empty[:, 1:] & (ap[:, 1:] <= ap[:, :-1])).any(axis=1),
        "ask prices do not rise level by level",
    )
    _fail(
        file,
        (~b_empty[:, 1:] & (bp[:, 1:] >= bp[:, :-1])).any(axis=1),
        "bid prices do not fall level by level",
    )
    _fail(
        file, ~a_empty[:, 0] & ~b_empty[:, 0] & (ap[:, 0] <= bp[:, 0]), "crossed book: best ask <= best bid"
    )
    book = raw.copy()
    book[:, 0::4] = np.where(a_empty, ap, ap // div)
    book[:, 2::4] = np.where(b_empty, bp, bp // div)
    return book


def _read_book(pair: _Pair, div: int) -> np.ndarray:
    cols = _parse(pair.orderbook, (False,) * (4 * pair.levels))
    return _book_to_ticks(pair.orderbook, cols, div)


def _initial_levels(
    book0: np.ndarray, mtype: int, side: int, price: int, size: int
) -> list[tuple[int, int, int]]:
    """(side, price, size) of orderbook row 0 with message 0 undone: the book it acted on."""
    sides: dict[int, dict[int, int]] = {BID: {}, ASK: {}}
    for j in range(book0.shape[0] // 4):
        if book0[4 * j] != EMPTY_ASK:
            sides[ASK][int(book0[4 * j])] = int(book0[4 * j + 1])
        if book0[4 * j + 2] != EMPTY_BID:
            sides[BID][int(book0[4 * j + 2])] = int(book0[4 * j + 3])
    level = sides.get(side, {})
    if mtype == 1:
        left = level.get(price, 0) - size
        if left > 0:
            level[price] = left
        else:
            level.pop(price, None)
    elif 2 <= mtype <= 4:
        level[price] = level.get(price, 0) + size
    return [(s, p, q) for s in (BID, ASK) for p, q in sorted(sides[s].items(), reverse=s == BID)]


@nb.njit(cache=True)
def _emit(out, j, ts, price, size, oid, kind, side):
    """Write event ``j`` as (ts, price, size, order id, kind, side) when ``out`` has room for it
    (the counting pass gives an empty array); returns the next index."""
    if j < out.shape[0]:
        out[j, 0] = ts
        out[j, 1] = price
        out[j, 2] = size
        out[j, 3] = oid
        out[j, 4] = kind
        out[j, 5] = side
    return j + 1


@nb.njit(cache=True)
def _reveal_side(out, j, ts, prev, row, s, bid, ask, st):
    """Bring side ``s`` of the replay in line with orderbook ``row`` beyond the previous window.

    Applies only when ``prev`` (the row before) showed a full window on ``s``. Levels of ``row``
    strictly beyond its worst price are SET (reveals); levels the replay holds in that outer range,
    up to ``row``'s worst (everything, when ``row`` is not full), that ``row`` lacks are SET to 0.
    Returns (next event index, reveals, levels cleared).
    """
    n_levels = row.shape[0] // 4
    pcol = 0 if s == ASK else 2
    empty = EMPTY_ASK if s == ASK else EMPTY_BID
    worst = prev[4 * (n_levels - 1) + pcol]
    if worst == empty:
        return j, 0, 0
    step = -s  # price step away from the inside: +1 on the ask side, -1 on the bid side
    prices = row[pcol::4]
    sizes = row[pcol + 1 :: 4]
    # distance beyond the old worst price; the empty sentinels lie beyond every real price
    first = 0
    while first < n_levels and (prices[first] - worst) * step <= 0:
        first += 1
    last = prices[n_levels - 1]
    if last == empty:
        last = st[BASE] + (st[ASK_HI] if s == ASK else st[BID_LO])
    held = ask if s == ASK else bid
    cleared = 0
    nxt = first
    for d in range(1, (last - worst) * step + 1):
        p = worst + step * d
        while nxt < n_levels and (prices[nxt] - worst) * step < d:
            nxt += 1
        if held[p - st[BASE]] > 0 and not (nxt < n_levels and prices[nxt] == p):
            j = _emit(out, j, ts, p, 0, 0, SET, s)
            set_level(bid, ask, st, s, p, 0)
            cleared += 1
    reveals = 0
    for lev in range(first, n_levels):
        if prices[lev] != empty:
            j = _emit(out, j, ts, prices[lev], sizes[lev], 0, SET, s)
            set_level(bid, ask, st, s, prices[lev], sizes[lev])
            reveals += 1
    return j, reveals, cleared


@nb.njit(cache=True)
def _assemble(ts, kind, oid, size, price, side, book, snap, bid, ask, st, out):
    """All events in order: snapshot, then per row its message and the reveals it needs.

    Returns (event count, reveals, rows with a reveal, stale levels cleared, row_ends). Run once
    with an empty ``out`` to count and once to write: the replay inside decides which stale
    levels to clear, so both runs make the same decisions.
    """
    n = ts.shape[0]
    row_ends = np.empty(n, np.int64)
    clear_side(bid, ask, st, 0)
    j = _emit(out, 0, ts[0], 0, 0, 0, CLEAR, 0)
    for q in range(snap.shape[0]):
        j = _emit(out, j, ts[0], snap[q, 1], snap[q, 2], 0, SET, snap[q, 0])
        set_level(bid, ask, st, snap[q, 0], snap[q, 1], snap[q, 2])
    reveals = 0
    reveal_rows = 0
    cleared = 0
    for k in range(n):
        if kind[k] > 0:
            j = _emit(out, j, ts[k], price[k], size[k], oid[k], kind[k], side[k])
            apply_event(bid, ask, st, kind[k], side[k], price[k], size[k])
        if k > 0:
            row_reveals = 0
            for s in (BID, ASK):
                j, r, c = _reveal_side(out, j, ts[k], book[k - 1], book[k], s, bid, ask, st)
                row_reveals += r
                cleared += c
            reveals += row_reveals
            reveal_rows += row_reveals > 0
        row_ends[k] = j - 1
    return j, reveals, reveal_rows, cleared, row_ends


def read_lobster_with_rows(
    path: str | Path, *, tick_size: float | None = None, levels: int | None = None, ticker: str | None = None
) -> LobsterRead:
    """Read a LOBSTER pair (directory, sample zip, or either CSV of the pair) into events, with the
    per-row event boundaries and the orderbook file needed to check a replay against it."""
    path = Path(path)
    pair = _find_pair(path, ticker, levels)
    div = _tick_divisor(tick_size)
    msg = pair.message
    t_sec, mtype, oid, size, price, direction = _parse(msg, (True, False, False, False, False, False))
    book = _read_book(pair, div)
    n = t_sec.shape[0]
    if book.shape[0] != n:
        longer, shorter = (pair.orderbook, msg) if book.shape[0] > n else (msg, pair.orderbook)
        raise DataError(
            f"{longer.label}: line {min(n, book.shape[0]) + 1}: no matching row in {shorter.label} "
            f"(message rows {n:,}, orderbook rows {book.shape[0]:,}; they must pair one to one)"
        )

    _fail(msg, ~np.isfinite(t_sec) | (t_sec < 0), "time is not a non-negative number")
    _fail(msg, np.r_[False, np.diff(t_sec) < 0], "time goes backwards")
    _fail(msg, (mtype < 1) | (mtype > 7), "unknown message type (LOBSTER has 1-7)")
    live = mtype <= 5
    _fail(msg, live & (direction != 1) & (direction != -1), "direction must be 1 (buy) or -1 (sell)")
    _fail(msg, live & (size <= 0), "size must be > 0")
    _fail(msg, live & (price <= 0), "price must be > 0")
    booked = mtype <= 4
    _fail(msg, booked & (price % div != 0), f"price is not on the tick grid ({div} x 0.0001 dollars)")

    # hidden executions may print between ticks (midpoint): round toward the aggressor
    off_grid = ~booked & live & (price % div != 0)
    ticks = np.where(off_grid & (direction == BID), -(-price // div), price // div)
    kind = _KIND_OF_TYPE[mtype]
    side = np.where(live, direction, 0)
    ts = _epoch_ns(pair.date, t_sec)

    snap_list = _initial_levels(book[0], int(mtype[0]), int(side[0]), int(ticks[0]), int(size[0]))
    snap = np.array(snap_list, np.int64).reshape(-1, 3)
    priced = np.concatenate(
        [
            ticks[booked],
            snap[:, 1],
            book[:, 0::4][book[:, 0::4] != EMPTY_ASK],
            book[:, 2::4][book[:, 2::4] != EMPTY_BID],
        ]
    )
    lo, hi = (int(priced.min()), int(priced.max())) if priced.size else (0, 0)

    def run(out: np.ndarray) -> tuple[tuple[int, int, int, int, np.ndarray], np.ndarray]:
        bid, ask, st = new_book(lo, hi)
        return _assemble(ts, kind, oid, size, ticks, side, book, snap, bid, ask, st, out), st

    count = run(np.empty((0, 6), np.int64))[0][0]
    out = np.empty((count, 6), np.int64)
    (_, reveals, reveal_rows, cleared, row_ends), st = run(out)
    events = np.empty(count, EVENT_DTYPE)
    for c, name in enumerate(("exch_ts", "price", "size", "order_id", "kind", "side")):
        events[name] = out[:, c]
    events["local_ts"] = events["exch_ts"]

    replay = replay_top_levels(events, row_ends, pair.levels, lo, hi)
    mismatched = np.flatnonzero((replay != book).any(axis=1))
    types, counts = np.unique(mtype, return_counts=True)
    report: dict[str, Any] = {
        "format": "lobster",
        "message_file": msg.label,
        "orderbook_file": pair.orderbook.label,
        "date": pair.date.isoformat(),
        "levels": pair.levels,
        "rows": int(n),
        "events": int(count),
        "messages": {_TYPE_NAMES[int(t)]: int(c) for t, c in zip(types, counts, strict=True)},
        "halts_skipped": int((mtype == 7).sum()),
        "cross_trades_skipped": int((mtype == 6).sum()),
        "snapshot_levels": len(snap_list),
        "reveals": int(reveals),
        "reveal_rows": int(reveal_rows),
        "stale_levels_cleared": int(cleared),
        "off_grid_trades_rounded": int(off_grid.sum()),
        "clamps": int(st[NEG_CLAMPS]),
        "cross_fixes": int(st[CROSS_FIXES]),
        "out_of_range": int(st[OUT_OF_RANGE]),
        "rows_not_matching_book_file": int(mismatched.size),
        "first_mismatch_line": int(mismatched[0]) + 1 if mismatched.size else None,
    }
    instrument = Instrument(symbol=pair.ticker, venue="nasdaq", tick_size=div / PRICE_SCALE, lot_size=1)
    data = EventData(events=events, instrument=instrument, source=str(path), report=report)
    return LobsterRead(data=data, row_ends=row_ends, book=book)


def read_lobster(
    path: str | Path, *, tick_size: float | None = None, levels: int | None = None, ticker: str | None = None
) -> EventData:
    """Read a LOBSTER pair into normalized events (see the module docstring for what is emitted)."""
    return read_lobster_with_rows(path, tick_size=tick_size, levels=levels, ticker=ticker).data


def read_lobster_book(
    path: str | Path, *, tick_size: float | None = None, levels: int | None = None, ticker: str | None = None
) -> np.ndarray:
    """The orderbook file as int64 (rows x 4*levels, LOBSTER column order), validated, prices in
    ticks and empty levels kept as LOBSTER's sentinels, so it compares with
    :func:`quotewise.book.orderbook.replay_top_levels` directly."""
    pair = _find_pair(Path(path), ticker, levels)
    return _read_book(pair, _tick_divisor(tick_size))
