"""Level events as the messages a venue's websocket sends: the shared walk of a book that the capture
writers (:func:`quotewise.data.polymarket.write_capture`, :func:`quotewise.data.kalshi.write_capture`)
turn into each venue's own shapes. Writing a capture lets any market (a backtest's file, the
synthetic binary market) be replayed by the readers and served by the venue emulators."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from quotewise.data.hftbacktest import l2_events
from quotewise.model.events import ASK, BID, CLEAR, SET, TRADE

Level = tuple[int, int]  # (price in ticks, size in lots)


@dataclass
class Batch:
    """What one instant did to the book: ``snapshot`` (the whole book, after a CLEAR or at the start)
    or ``changes`` (side, price, new size, size before the instant: a level once however often it
    moved), and the trades (resting side, price, size)."""

    exch_ts: int
    local_ts: int
    snapshot: dict[int, dict[int, int]] | None = None
    changes: list[tuple[int, int, int, int]] = field(default_factory=list)
    trades: list[tuple[int, int, int]] = field(default_factory=list)
    best: tuple[int, int] = (0, 0)  # best bid and ask after the instant (0: that side is empty)


def level_batches(events: np.ndarray) -> Iterator[Batch]:
    """The book's story by instant (events of one exchange time): a snapshot first (and after each
    CLEAR), then level changes and trades. Order-level events are read as level totals."""
    events = l2_events(events)
    levels: dict[int, dict[int, int]] = {BID: {}, ASK: {}}
    stamps = events["exch_ts"]
    starts = np.flatnonzero(np.r_[True, stamps[1:] != stamps[:-1]])
    ends = np.r_[starts[1:], len(events)]
    first = True
    for start, end in zip(starts, ends, strict=True):
        batch = Batch(int(stamps[start]), int(events["local_ts"][end - 1]))
        resnapshot = first
        before: dict[tuple[int, int], int] = {}  # each level changed this instant: its size before
        for e in events[start:end]:
            kind, side, price, size = int(e["kind"]), int(e["side"]), int(e["price"]), int(e["size"])
            if kind == CLEAR:
                levels = {BID: {}, ASK: {}} if side == 0 else {**levels, side: {}}
                resnapshot = True
            elif kind == SET and side in levels:
                before.setdefault((side, price), levels[side].get(price, 0))
                if size > 0:
                    levels[side][price] = size
                else:
                    levels[side].pop(price, None)
            elif kind == TRADE:
                batch.trades.append((side, price, size))
        batch.changes = [
            (side, price, levels[side].get(price, 0), old)
            for (side, price), old in before.items()
            if levels[side].get(price, 0) != old
        ]
        if resnapshot:
            batch.snapshot = {BID: dict(levels[BID]), ASK: dict(levels[ASK])}
            batch.changes = []
        batch.best = (max(levels[BID], default=0), min(levels[ASK], default=0))
        first = False
        if batch.snapshot is not None or batch.changes or batch.trades:
            yield batch


def open_for_writing(path: Path) -> IO[str]:
    """The capture file, gzip when its name ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return gzip.open(path, "wt") if path.suffix == ".gz" else path.open("w")


def write_lines(path: str | Path, lines: Iterable[tuple[int, Any]]) -> Path:
    """``<receive ts ns> <message JSON>`` per line, the capture format every reader here takes."""
    path = Path(path)
    with open_for_writing(path) as fh:
        for local_ns, message in lines:
            fh.write(f"{local_ns} {json.dumps(message, separators=(',', ':'))}\n")
    return path
