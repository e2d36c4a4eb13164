"""Where a backtest's events come from: a Parquet store (streamed), a raw file, or the synthetic market."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quotewise.data import store
from quotewise.data.store import EventData
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import ADD, CLEAR, DELETE, EXECUTE, SET, TRADE
from quotewise.model.instrument import Instrument


@dataclass
class DataSource:
    """A replayable event stream of one instrument, with the price range the book must cover."""

    name: str
    instrument: Instrument
    price_lo: int
    price_hi: int
    n_events: int
    l3: bool
    chunks: Callable[[], Iterator[np.ndarray]]
    report: dict[str, Any] = field(default_factory=dict)


def _has_l3(events: np.ndarray) -> bool:
    kinds = events["kind"]
    return bool(np.any((kinds >= ADD) & (kinds <= EXECUTE)))


def data_paths(data: str) -> str | list[str]:
    """A ``--data`` value as one path, or the list of consecutive files of one stream (``a.gz,b.gz``)."""
    if "," not in data or Path(data).exists():
        return data
    paths = data.split(",")
    if not all(paths):
        raise ConfigError(f"--data {data!r}: an empty file name between commas")
    return paths


def _refuse_without_book(name: str, lowest_kind: int, highest_kind: int) -> None:
    """Quotes need a book to rest in: trades alone would run to a backtest with no orders."""
    if lowest_kind == highest_kind == TRADE:
        raise DataError(
            f"{name}: only trades, no order book events: a market-making backtest needs depth data "
            "(book snapshots and updates)"
        )


def from_event_data(data: EventData, name: str, chunk: int = 1_000_000) -> DataSource:
    events = data.events
    if len(events) == 0:
        raise DataError(f"{name}: holds no events")
    _refuse_without_book(name, int(events["kind"].min()), int(events["kind"].max()))

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(events), chunk):
            yield events[start : start + chunk]

    return DataSource(
        name=name,
        instrument=data.instrument,
        price_lo=int(events["price"].min()),
        price_hi=int(events["price"].max()),
        n_events=len(events),
        l3=_has_l3(events),
        chunks=chunks,
        report=data.report,
    )


def from_parquet(path: str | Path) -> DataSource:
    """Stream a converted file row group by row group: memory does not grow with history."""
    meta = store.read_meta(path)
    _refuse_without_book(str(path), *store.column_range(path, "kind"))
    lo, hi = store.price_range(path)
    first = next(store.iter_event_chunks(path), np.zeros(0, dtype=store.EVENT_DTYPE))
    return DataSource(
        name=str(path),
        instrument=store.stored_instrument(meta),
        price_lo=lo,
        price_hi=hi,
        n_events=store.count_events(path),
        l3=_has_l3(first),
        chunks=lambda: store.iter_event_chunks(path),
        report=meta.get("report", {}),
    )


def from_path(
    path: str | Path | Sequence[str | Path],
    fmt: str | None = None,
    tick_size: float | None = None,
    lot_size: float | None = None,
    symbol: str | None = None,
) -> DataSource:
    """Any supported input: a Quotewise Parquet file is streamed; raw formats are read first.

    Several consecutive files of one Binance stream may be given as a list. ``symbol`` picks the
    market of a file that holds several (a Polymarket token, a Kalshi ticker, a LOBSTER ticker).
    """
    from quotewise.data.convert import load_source

    if isinstance(path, str | Path) and Path(path).suffix == ".parquet" and fmt in (None, "parquet"):
        return from_parquet(path)
    data = load_source(path, fmt, tick_size=tick_size, lot_size=lot_size, symbol=symbol)
    name = str(path) if isinstance(path, str | Path) else ",".join(str(p) for p in path)
    return from_event_data(data, name)


def synthetic(n_events: int, seed: int, chunk: int = 1_000_000) -> DataSource:
    """The embedded synthetic market, generated chunk by chunk as the backtest consumes it.

    Its book covers 1 tick to twice the start price: far beyond any excursion of the default
    parameters; an event outside would be counted in ``summary.json`` under ``book.out_of_range``.
    """
    from quotewise.data.synthetic import SYNTH_INSTRUMENT, iter_synthetic_chunks, make_params

    params = make_params()
    return DataSource(
        name=f"synthetic(seed={seed}, events={n_events:,})",
        instrument=SYNTH_INSTRUMENT,
        price_lo=1,
        price_hi=2 * params.start_price_ticks,
        n_events=n_events,
        l3=True,
        chunks=lambda: iter_synthetic_chunks(n_events, seed, chunk_size=chunk),
        report={"params": params.model_dump(), "seed": seed},
    )


def _time_range(source: DataSource) -> tuple[int, int]:
    first = last = None
    for chunk in source.chunks():
        if len(chunk):
            first = int(chunk["exch_ts"][0]) if first is None else first
            last = int(chunk["exch_ts"][-1])
    if first is None or last is None:
        raise DataError(f"{source.name}: holds no events")
    return first, last


def _l2_snapshot(events: np.ndarray) -> list[np.ndarray]:
    """The SET levels standing at the end of ``events``, per side after that side's last CLEAR."""
    out = []
    for side in (1, -1):
        clears = np.flatnonzero((events["kind"] == CLEAR) & np.isin(events["side"], (0, side)))
        after = events[clears[-1] + 1 :] if len(clears) else events
        sets = after[(after["kind"] == SET) & (after["side"] == side)]
        if not len(sets):
            continue
        _, last_from_end = np.unique(sets["price"][::-1], return_index=True)
        latest = sets[len(sets) - 1 - last_from_end]
        out.append(latest[latest["size"] > 0])
    return out


def _l3_snapshot(events: np.ndarray) -> np.ndarray:
    """The orders resting at the end of ``events`` (as ADDs of their remaining size, in the order
    they were added, so queue priority is kept); an order id reused counts from its last ADD."""
    l3 = events[(events["kind"] >= ADD) & (events["kind"] <= EXECUTE)]
    if not len(l3):
        return l3
    index = np.arange(len(l3))
    is_add = l3["kind"] == ADD
    ids, inverse = np.unique(l3["order_id"], return_inverse=True)
    last_add = np.full(len(ids), -1)
    np.maximum.at(last_add, inverse[is_add], index[is_add])
    live = index >= last_add[inverse]  # events of each order's current life
    removed = np.zeros(len(ids), dtype=bool)
    removed[inverse[live & (l3["kind"] == DELETE)]] = True
    taken = np.zeros(len(ids), dtype=np.int64)
    np.add.at(taken, inverse[live & ~is_add], l3["size"][live & ~is_add])
    adds = last_add[(last_add >= 0) & ~removed]
    resting = l3[np.sort(adds)].copy()
    resting["size"] -= taken[inverse[np.sort(adds)]]
    return resting[resting["size"] > 0]


def book_snapshot(events: np.ndarray, ts: int) -> np.ndarray:
    """Events that rebuild, at ``ts``, the book that ``events`` leave: a window of the data that starts
    later then opens on the book it would have had instead of an empty one."""
    snapshot = np.concatenate([_l3_snapshot(events), *_l2_snapshot(events)])
    snapshot["exch_ts"] = ts
    snapshot["local_ts"] = ts
    return snapshot


def time_window(source: DataSource, start: float, end: float) -> DataSource:
    """The events of ``source`` whose exchange time lies in the fractions [start, end) of its time span
    (end 1 includes the last event). A window that does not start at the beginning opens with the book
    as the events before it left it (:func:`book_snapshot`), so the strategy quotes into a full book."""
    if not 0 <= start < end <= 1:
        raise ConfigError(f"a time window is 0 <= start < end <= 1, got [{start}, {end})")
    first, last = _time_range(source)
    lo = first + round(start * (last - first))
    hi = last + 1 if end == 1 else first + round(end * (last - first))
    before = [c[c["exch_ts"] < lo] for c in source.chunks()] if start > 0 else []
    opening = book_snapshot(np.concatenate(before), lo) if before else None
    count = sum(int(((c["exch_ts"] >= lo) & (c["exch_ts"] < hi)).sum()) for c in source.chunks())
    if count == 0:
        raise DataError(f"{source.name}: no events in the window [{start:g}, {end:g}) of its time span")

    def chunks() -> Iterator[np.ndarray]:
        if opening is not None and len(opening):
            yield opening
        for chunk in source.chunks():
            kept = chunk[(chunk["exch_ts"] >= lo) & (chunk["exch_ts"] < hi)]
            if len(kept):
                yield kept

    return DataSource(
        name=f"{source.name}[{start:g}:{end:g}]",
        instrument=source.instrument,
        price_lo=source.price_lo,
        price_hi=source.price_hi,
        n_events=count + (0 if opening is None else len(opening)),
        l3=source.l3,
        chunks=chunks,
        report=source.report,
    )
