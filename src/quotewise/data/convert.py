"""One entry point for every market-data source: detect the format, read it, summarize it.

``load_source`` backs ``mm data convert`` and ``mm data info``: a raw file in one of
:data:`FORMATS` is read by its reader, and a ``.parquet`` file is already normalized events (read
back with :func:`quotewise.data.store.read_events`).
"""

from __future__ import annotations

import gzip
import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quotewise.data import kalshi, polymarket
from quotewise.data.binance import read_binance
from quotewise.data.hftbacktest import read_hftbacktest_npz
from quotewise.data.store import EventData, add_warning, read_events
from quotewise.data.synthetic import generate_synthetic, synthetic_events
from quotewise.data.tardis import read_tardis, tardis_kind
from quotewise.errors import ConfigError, DataError
from quotewise.model.catalog import grid_factor, lookup, with_spec
from quotewise.model.events import EventKind

FORMATS = ("lobster", "binance", "tardis", "hftbacktest", "polymarket", "kalshi")
PARQUET = "parquet"
_ACCEPTED = f"{', '.join(FORMATS)} (or a Quotewise .parquet file)"
_BINANCE_LINE = re.compile(rb"\d+ \{")
_CAPTURE_LINE = re.compile(rb"\d+ ([\[{].*)", re.DOTALL)
_HEAD = 1 << 20  # a capture's first line can hold a whole order book
_LOBSTER_NAME = re.compile(r".+_(message|orderbook)_\d+\.csv")


def _head(path: Path) -> bytes:
    """The first line of a file and, when it opens a JSON array, what follows it; gunzipped when it is
    gzip; what could be read (empty when nothing could)."""
    parts: list[bytes] = []
    try:
        with path.open("rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gz else path.open("rb") as fh:
            parts.append(fh.readline(_HEAD))
            if parts[0].lstrip()[:1] == b"[":
                parts.append(fh.read(1 << 16))
    except (OSError, EOFError):
        pass
    return b"".join(parts)


def _capture_format(head: bytes) -> str | None:
    """``polymarket`` or ``kalshi`` for a websocket capture, told by the first message's keys (Binance
    lines share the ``<time> <JSON>`` form but have ``stream``/``data`` or ``e`` keys instead); a file
    that is one JSON array of Polymarket messages is told by the keys its start holds."""
    first = head.partition(b"\n")[0]
    if head.lstrip()[:1] == b"[":
        return "polymarket" if re.search(rb'"(event_type|asset_id)"\s*:', head) else None
    line = _CAPTURE_LINE.fullmatch(first.rstrip(b"\r"))
    if line is None:
        return None
    try:
        obj = json.loads(line.group(1))
    except ValueError:
        return None
    if polymarket.is_message(obj):
        return "polymarket"
    return "kalshi" if kalshi.is_message(obj) else None


def detect_format(path: str | Path | Sequence[str | Path]) -> str:
    """Guess the format from the name and the first line; ``parquet`` for our own event files.

    Several paths (consecutive Binance captures) must all have the same format.
    """
    if not isinstance(path, str | Path):
        found = {detect_format(p) for p in path}
        if len(found) != 1:
            raise DataError(f"the files given have different or no formats: {sorted(found)}")
        return found.pop()
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    name = path.name.lower()
    if path.is_dir():
        if any(_LOBSTER_NAME.fullmatch(p.name) for p in path.iterdir()):
            return "lobster"
    elif name.endswith(".parquet"):
        return PARQUET
    elif name.endswith(".npz"):
        return "hftbacktest"
    elif zipfile.is_zipfile(path) or _LOBSTER_NAME.fullmatch(path.name):
        return "lobster"
    else:
        head = _head(path)
        first = head.partition(b"\n")[0]
        capture = _capture_format(head)
        if capture is not None:
            return capture
        if _BINANCE_LINE.match(first):
            return "binance"
        if tardis_kind(first.decode(errors="replace").strip().split(",")) is not None:
            return "tardis"
    raise DataError(f"{path}: cannot tell its format; accepted formats: {_ACCEPTED}")


def load_source(
    path: str | Path | Sequence[str | Path],
    fmt: str | None = None,
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    symbol: str | None = None,
) -> EventData:
    """Read ``path`` in format ``fmt`` (None: :func:`detect_format`) into normalized events.

    ``symbol`` names the instrument where the file does not (hftbacktest), picks the ticker of a
    LOBSTER folder or zip holding several, the token of a Polymarket capture or the market of a Kalshi
    one, and otherwise renames the instrument.
    Binance accepts several consecutive files as one stream.
    """
    n_synthetic = synthetic_events(path) if isinstance(path, str) else None
    if n_synthetic is not None:
        return generate_synthetic(n_synthetic)
    fmt = detect_format(path) if fmt is None else fmt.lower()
    if fmt not in (*FORMATS, PARQUET):
        raise ConfigError(f"unknown data format {fmt!r}; accepted formats: {_ACCEPTED}")
    many = not isinstance(path, str | Path)
    if many and fmt != "binance":
        raise ConfigError(f"several files are read as one stream only for binance, not {fmt}")
    if fmt == "binance":
        data = read_binance(path, tick_size=tick_size, lot_size=lot_size)
    elif fmt == "tardis":
        data = read_tardis(path, tick_size=tick_size, lot_size=lot_size)
    elif fmt == "lobster":
        from quotewise.data.lobster import read_lobster

        data = read_lobster(path, tick_size=tick_size, ticker=symbol)
    elif fmt == "polymarket":
        data = polymarket.read_polymarket(path, asset=symbol, tick_size=tick_size)
    elif fmt == "kalshi":
        data = kalshi.read_kalshi(path, ticker=symbol)
    elif fmt == "hftbacktest":
        if tick_size is None or lot_size is None:
            raise ConfigError(
                "hftbacktest files do not store the tick and lot sizes: give tick_size and lot_size"
            )
        data = read_hftbacktest_npz(path, tick_size=tick_size, lot_size=lot_size, symbol=symbol or "UNKNOWN")
    else:
        data = read_events(path)
    for given, stored, what in (
        (tick_size, data.instrument.tick_size, "tick"),
        (lot_size, data.instrument.lot_size, "lot"),
    ):
        if given is not None and given != stored:
            raise ConfigError(
                f"{path}: this {fmt} data fixes the {what} size at {stored}; {given} cannot apply"
            )
    if symbol is not None and data.instrument.symbol != symbol:
        data.instrument = data.instrument.model_copy(update={"symbol": symbol})
    if fmt == PARQUET:
        return data  # converted with its listing already
    return with_listing(data, keep_tick=tick_size is not None, keep_lot=lot_size is not None)


def with_listing(data: EventData, keep_tick: bool = False, keep_lot: bool = False) -> EventData:
    """The events priced as the venue lists the instrument (:mod:`quotewise.model.catalog`): contract
    kind and size, currencies, minimums, and the listed tick and lot where the data's grid allows
    (``keep_*``: the user gave that step). What was applied, and from which source, is in the report.
    """
    inst = data.instrument
    spec = lookup(inst.venue, inst.symbol)
    report = data.report
    if spec is None:
        report["listing"] = f"{inst.venue} {inst.symbol} is not listed: a linear contract of size 1"
        return data
    events = data.events.copy()
    update: dict[str, Any] = {}
    if spec.tick_size is not None and not keep_tick:
        update["tick_size"] = _regrid(events, "price", inst.tick_size, spec.tick_size, report)[0]
    if spec.lot_size is not None and not keep_lot:
        lot, step = _regrid(events, "size", inst.lot_size, spec.lot_size, report)
        update.update(lot_size=lot, order_lots=step)
    report["listing"] = spec.source
    listed = with_spec(inst.model_copy(update=update), spec)
    return EventData(events=events, instrument=listed, source=data.source, report=report)


def _regrid(
    events: np.ndarray, field: str, step: float, listed: float, report: dict[str, Any]
) -> tuple[float, int]:
    """Put ``events[field]`` (in units of ``step``) on the listed grid where the data allows; returns
    the step used and how many of them the listed step is. A listed step finer than the data's
    multiplies (the data never showed the finer values); a coarser one divides when no value is off
    it. Book sizes finer than the listed size step are normal (partial fills leave remainders off
    it): the data's lot is kept and orders step by the listed one. Prices off the listed tick mean
    the listing is of another date: the data's tick is kept, with a warning."""
    finer = grid_factor(step, listed)
    if finer is not None:
        events[field] *= finer
        return listed, 1
    coarser = grid_factor(listed, step)
    if coarser is not None and not np.any(events[field] % coarser):
        events[field] //= coarser
        return listed, 1
    if field == "size" and coarser is not None:
        report["order_size_step"] = f"{listed:g}: book sizes are finer ({step:g}), orders step by {listed:g}"
        return step, coarser
    what = "tick" if field == "price" else "lot"
    add_warning(
        report,
        f"the data has {field}s off the venue's listed {what} of {listed:g}: kept the data's {what} of "
        f"{step:g} (the listing is of another date; give --{what} to choose)",
    )
    return step, 1


def _iso(ns: int) -> str:
    return f"{np.datetime_as_string(np.datetime64(ns, 'ns'), unit='ns')}Z"


def _kind_name(kind: int) -> str:
    try:
        return EventKind(kind).name
    except ValueError:
        return f"unknown_kind_{kind}"


def info(data: EventData) -> dict[str, Any]:
    """What a data file holds: instrument, UTC time span, event counts by kind, the reader's report."""
    ev = data.events
    kinds, counts = np.unique(ev["kind"], return_counts=True)
    first = int(ev["exch_ts"].min()) if len(ev) else None
    last = int(ev["exch_ts"].max()) if len(ev) else None
    return {
        "source": data.source,
        "instrument": data.instrument.model_dump(),
        "events": len(ev),
        "first_exch_time": None if first is None else _iso(first),
        "last_exch_time": None if last is None else _iso(last),
        "duration_s": 0.0 if first is None or last is None else (last - first) / 1e9,
        "events_by_kind": {_kind_name(int(k)): int(c) for k, c in zip(kinds, counts, strict=True)},
        "report": data.report,
    }
