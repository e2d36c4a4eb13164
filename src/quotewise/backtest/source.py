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
from quotewise.model.events import ADD, EXECUTE, TRADE
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
