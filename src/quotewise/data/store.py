"""The on-disk event store: normalized events in Parquet, instrument and provenance in metadata.

One file holds one instrument. Columns are the fields of ``EVENT_DTYPE``; the schema metadata key
``quotewise`` holds JSON with the instrument and what the reader reported (skips, gaps, fixes).
Files are written in row groups so a backtest can stream them without loading the whole history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from quotewise.errors import DataError
from quotewise.model.catalog import lookup, with_spec
from quotewise.model.events import EVENT_DTYPE
from quotewise.model.instrument import Instrument

META_KEY = b"quotewise"
ROW_GROUP = 1_000_000


@dataclass
class EventData:
    """Events of one instrument plus what the reader found while making them."""

    events: np.ndarray
    instrument: Instrument
    source: str = ""
    report: dict[str, Any] = field(default_factory=dict)


def add_warning(report: dict[str, Any], text: str) -> None:
    """Note in a reader's report what a user must know before trusting a run on the data (the CLI
    prints every one): what was skipped or assumed beyond the routine counts."""
    report.setdefault("warnings", []).append(text)


def _schema(meta: dict[str, Any]) -> pa.Schema:
    fields = [pa.field(name, pa.from_numpy_dtype(EVENT_DTYPE[name])) for name in EVENT_DTYPE.names]
    return pa.schema(fields, metadata={META_KEY: json.dumps(meta).encode()})


def _meta(data: EventData) -> dict[str, Any]:
    return {"instrument": data.instrument.model_dump(), "source": data.source, "report": data.report}


def write_events(path: str | Path, data: EventData, row_group: int = ROW_GROUP) -> Path:
    """Write ``data`` to a Parquet file (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = _schema(_meta(data))
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, max(len(data.events), 1), row_group):
            chunk = data.events[start : start + row_group]
            arrays = [pa.array(chunk[name]) for name in EVENT_DTYPE.names]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return path


def _open(path: str | Path) -> pq.ParquetFile:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def read_meta(path: str | Path) -> dict[str, Any]:
    """The metadata stored with the events (instrument, source, reader report)."""
    pf = _open(path)
    raw = (pf.schema_arrow.metadata or {}).get(META_KEY)
    if raw is None:
        raise DataError(f"{path}: Parquet file has no Quotewise metadata; convert it with `mm data convert`")
    meta = json.loads(raw)
    missing = set(EVENT_DTYPE.names) - set(pf.schema_arrow.names)
    if missing:
        raise DataError(f"{path}: missing event columns {sorted(missing)}")
    return meta


def stored_instrument(meta: dict[str, Any]) -> Instrument:
    """The instrument a file's metadata holds. Files written before instruments knew their contract
    have no ``contract`` field: the venue's listing supplies it (contract, currencies, minimums), so
    an old COIN-M file is not priced as linear."""
    spec = meta["instrument"]
    inst = Instrument(**spec)
    if "contract" in spec:
        return inst
    listing = lookup(inst.venue, inst.symbol)
    return inst if listing is None else with_spec(inst, listing)


def read_instrument(path: str | Path) -> Instrument:
    return stored_instrument(read_meta(path))


def _to_records(table: pa.Table) -> np.ndarray:
    out = np.empty(table.num_rows, dtype=EVENT_DTYPE)
    for name in EVENT_DTYPE.names:
        out[name] = table.column(name).to_numpy()
    return out


def iter_event_chunks(path: str | Path) -> Iterator[np.ndarray]:
    """Stream the file one row group at a time (bounded memory for long histories)."""
    pf = _open(path)
    read_meta(path)
    for i in range(pf.num_row_groups):
        yield _to_records(pf.read_row_group(i, columns=list(EVENT_DTYPE.names)))


def read_events(path: str | Path) -> EventData:
    """Load a whole file into memory."""
    meta = read_meta(path)
    table = _open(path).read(columns=list(EVENT_DTYPE.names))
    return EventData(
        events=_to_records(table),
        instrument=stored_instrument(meta),
        source=meta.get("source", ""),
        report=meta.get("report", {}),
    )


def count_events(path: str | Path) -> int:
    return _open(path).metadata.num_rows


def price_range(path: str | Path) -> tuple[int, int]:
    """Lowest and highest price tick in the file, from the Parquet statistics (no data read)."""
    return column_range(path, "price")


def column_range(path: str | Path, column: str) -> tuple[int, int]:
    """Lowest and highest value of an integer event column, from the statistics where they are."""
    pf = _open(path)
    col = pf.schema_arrow.get_field_index(column)
    lo, hi = None, None
    for i in range(pf.num_row_groups):
        stats = pf.metadata.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max:
            values = pf.read_row_group(i, columns=[column]).column(column).to_numpy()
            gmin, gmax = int(values.min()), int(values.max())
        else:
            gmin, gmax = int(stats.min), int(stats.max)
        lo = gmin if lo is None else min(lo, gmin)
        hi = gmax if hi is None else max(hi, gmax)
    if lo is None:
        raise DataError(f"{path}: holds no events")
    return lo, hi
