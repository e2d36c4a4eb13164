"""An order book kept from a diff stream, with the sequence checks that keep it right (Binance rules).

Binance publishes a REST snapshot (``lastUpdateId``) and a stream of diffs, each with the first and
last update id it covers (``U``, ``u``) and, on futures, the last id of the previous diff (``pu``).
The book is right only while the chain is unbroken, so :class:`DepthSync`:

- buffers diffs until a snapshot arrives; drops buffered diffs the snapshot already holds
  (``u < lastUpdateId``); the first diff applied must straddle the snapshot
  (``U <= lastUpdateId <= u``), else the snapshot is stale (older than the first diff kept, or a
  gap sits between them) and a new one is needed;
- then applies a diff only when its ``pu`` is the last applied ``u`` (spot, with no ``pu``: when
  ``U`` is ``u + 1``); a diff already applied (a duplicate, ``u`` at or below the last) is skipped;
  a diff from further ahead is held (at most :data:`MAX_AHEAD` of them, for at most
  :data:`MAX_HOLD_NS`) until the ones before it arrive, so messages swapped on the way cost
  nothing; a diff that cannot be chained is a gap: the book is no longer trusted and a resync is
  asked for.

While it is not trusted nothing is handed out; :meth:`DepthSync.snapshot` starts again. The output
is our own market events (``EVENT_DTYPE``): a snapshot is a ``CLEAR`` and a ``SET`` per level, a
diff a ``SET`` per level it names, so the maker's book is built exactly as a backtest's is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE, SET, TRADE

MAX_BUFFERED = 10_000  # diffs held while waiting for a snapshot; beyond this the oldest are dropped
MAX_AHEAD = 8  # diffs held that arrived before the one they follow; one more is a gap
MAX_HOLD_NS = 500_000_000  # ... and so is a missing diff still missing this long after


class Resync(Exception):
    """The book can no longer be trusted (a gap, a stale snapshot): fetch a new snapshot."""


@dataclass(frozen=True)
class Grid:
    """Prices and sizes to integer ticks and lots (the instrument's grid)."""

    tick_size: float
    lot_size: float

    def ticks(self, price: Any) -> int:
        return round(float(price) / self.tick_size)

    def lots(self, size: Any) -> int:
        return round(float(size) / self.lot_size)


def level_events(
    grid: Grid, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]], exch_ns: int, local_ns: int
) -> list[tuple]:
    """``SET`` rows (as EVENT_DTYPE tuples) for ``[price, size]`` levels of each side."""
    rows = []
    for side, levels in ((BID, bids), (ASK, asks)):
        for level in levels:
            rows.append((exch_ns, local_ns, grid.ticks(level[0]), grid.lots(level[1]), 0, SET, side))
    return rows


def to_events(rows: list[tuple]) -> np.ndarray:
    """Rows ``(exch_ts, local_ts, price, size, order_id, kind, side)`` as an EVENT_DTYPE array."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (exch, local, price, size, order_id, kind, side) in enumerate(rows):
        out[i]["exch_ts"], out[i]["local_ts"] = exch, local
        out[i]["price"], out[i]["size"], out[i]["order_id"] = price, size, order_id
        out[i]["kind"], out[i]["side"] = kind, side
    return out


def trade_event(grid: Grid, trade: dict[str, Any], local_ns: int) -> np.ndarray:
    """A Binance ``trade``/``aggTrade`` message as one TRADE event (side: the resting side; ``m`` true
    means the buyer was the maker, so the resting order was a bid)."""
    exch_ns = int(trade.get("T") or trade.get("E") or 0) * 1_000_000
    side = BID if trade.get("m") else ASK
    trade_id = int(trade.get("t") or trade.get("a") or 0)
    row = (exch_ns, local_ns, grid.ticks(trade["p"]), grid.lots(trade["q"]), trade_id, TRADE, side)
    return to_events([row])


@dataclass
class DepthSync:
    """See the module docstring. Feed :meth:`snapshot` and :meth:`diff`; each returns the events to
    apply (empty while waiting) or raises :class:`Resync`."""

    grid: Grid
    trusted: bool = False
    last_update: int | None = None  # u of the last diff applied (the snapshot's id before any)
    resyncs: int = 0
    gaps: int = 0
    duplicates: int = 0
    reordered: int = 0
    _buffer: list[dict[str, Any]] = field(default_factory=list)
    _ahead: dict[int, dict[str, Any]] = field(default_factory=dict)  # by the id they follow
    _synced_first: bool = False  # the first diff after the snapshot has been applied
    _held_since: int = 0  # local time the oldest held diff arrived

    def reset(self) -> None:
        """Forget the book (a gap, a reconnect): wait for a new snapshot, keep buffering diffs."""
        if self.trusted or self.last_update is not None:
            self.resyncs += 1
        self.trusted = False
        self.last_update = None
        self._synced_first = False
        self._buffer.clear()
        self._ahead.clear()

    def snapshot(self, snap: dict[str, Any], local_ns: int) -> np.ndarray:
        """A REST depth snapshot: the book becomes it, then the buffered diffs that follow it."""
        last_id = int(snap["lastUpdateId"])
        exch_ns = int(snap.get("T") or snap.get("E") or 0) * 1_000_000 or local_ns
        rows = [(exch_ns, local_ns, 0, 0, 0, CLEAR, 0)]
        rows += level_events(self.grid, snap.get("bids", []), snap.get("asks", []), exch_ns, local_ns)
        self.last_update = last_id
        self._synced_first = False
        kept = sorted((d for d in self._buffer if int(d["u"]) >= last_id), key=lambda d: int(d["u"]))
        self._buffer = []
        if kept and int(kept[0]["U"]) > last_id + 1:  # what lies between was sent before we listened
            self._gap(f"stale snapshot: lastUpdateId {last_id}, the diffs received start at {kept[0]['U']}")
        for message in kept:
            rows += self._rows_of(message, local_ns)
        self.trusted = True
        return to_events(rows)

    def diff(self, message: dict[str, Any], local_ns: int) -> np.ndarray:
        """A ``depthUpdate``: buffered before the snapshot, applied after it when the chain holds."""
        if self.last_update is None:
            self._buffer.append(message)
            del self._buffer[:-MAX_BUFFERED]
            return to_events([])
        return to_events(self._rows_of(message, local_ns))

    def _rows_of(self, message: dict[str, Any], local_ns: int) -> list[tuple]:
        first, last = int(message["U"]), int(message["u"])
        assert self.last_update is not None
        if last < self.last_update or (self._synced_first and last == self.last_update):
            self.duplicates += self._synced_first  # already in the book (before the first: the snapshot)
            return []
        follows = self._follows(message)
        chains = follows == self.last_update if self._synced_first else first <= self.last_update + 1
        if chains:
            rows = self._apply(message, local_ns)
            while self.last_update in self._ahead:  # held diffs that now chain on
                rows += self._apply(self._ahead.pop(self.last_update), local_ns)
            return rows
        if not self._ahead:
            self._held_since = local_ns
        waited = local_ns - self._held_since
        if follows > self.last_update and len(self._ahead) < MAX_AHEAD and waited <= MAX_HOLD_NS:
            self.reordered += follows not in self._ahead
            self._ahead[follows] = message
            return []
        if not self._synced_first:
            self._gap(f"stale snapshot: lastUpdateId {self.last_update}, the diffs start at {first}")
        self._gap(f"sequence gap: diff {first}..{last} follows {follows}, the book is at {self.last_update}")
        return []

    @staticmethod
    def _follows(message: dict[str, Any]) -> int:
        """The id of the diff this one follows (``pu``; spot diffs have none: ``U - 1``)."""
        previous = message.get("pu")
        return int(previous) if previous is not None else int(message["U"]) - 1

    def _apply(self, message: dict[str, Any], local_ns: int) -> list[tuple]:
        self._synced_first = True
        self.last_update = int(message["u"])
        exch_ns = int(message.get("T") or message.get("E") or 0) * 1_000_000
        return level_events(self.grid, message.get("b", []), message.get("a", []), exch_ns, local_ns)

    def _gap(self, why: str) -> None:
        self.gaps += 1
        self.reset()
        raise Resync(why)
