"""The normalized market event: one numpy record per book or trade event.

Every reader produces arrays of ``EVENT_DTYPE``; every consumer (book, simulator, analytics)
reads them. Prices are integer ticks and sizes integer lots of the event's instrument
(see :class:`quotewise.model.instrument.Instrument`); times are int64 nanoseconds since the epoch.

Side convention (one rule for every kind): ``side`` is the side of the book the event touches,
+1 bid and -1 ask. For a trade that is the *resting* side, so a buyer-initiated trade (an
aggressive buy lifting the ask) has ``side == -1``; this matches LOBSTER's direction field.

Kinds:

- ``ADD`` (L3): a new resting order ``order_id`` of ``size`` lots at ``price``.
- ``REDUCE`` (L3): ``size`` lots cancelled from order ``order_id`` (partial cancel).
- ``DELETE`` (L3): order ``order_id`` removed; ``size`` is what it still had.
- ``EXECUTE`` (L3): ``size`` lots of resting order ``order_id`` traded at ``price``.
- ``TRADE``: a trade print that does not change the visible book by itself (L2 tapes, hidden
  executions). ``order_id`` is 0 or the venue's trade id.
- ``SET`` (L2): the level (``side``, ``price``) now holds ``size`` lots in total (0 removes it).
- ``CLEAR`` (L2): remove every level on ``side`` (0 = both sides); precedes a snapshot.

L3 events always carry ``side`` and ``price`` so that the aggregate (L2) book can be kept without
an order map; the map is only needed for exact FIFO queue position.
"""

from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import Protocol

import numpy as np


class EventKind(IntEnum):
    ADD = 1
    REDUCE = 2
    DELETE = 3
    EXECUTE = 4
    TRADE = 5
    SET = 6
    CLEAR = 7


# Plain ints for numba code (IntEnum members are not numba constants).
ADD = 1
REDUCE = 2
DELETE = 3
EXECUTE = 4
TRADE = 5
SET = 6
CLEAR = 7

BID = 1
ASK = -1

EVENT_DTYPE = np.dtype(
    [
        ("exch_ts", np.int64),
        ("local_ts", np.int64),
        ("price", np.int64),
        ("size", np.int64),
        ("order_id", np.int64),
        ("kind", np.uint8),
        ("side", np.int8),
    ],
    align=True,
)

EVENT_FIELDS = tuple(EVENT_DTYPE.names)


class EventSource(Protocol):
    """A loaded market as the event passes read it (:class:`quotewise.backtest.source.DataSource` is
    one): its name, the tick range its book must cover and its events chunk by chunk."""

    name: str
    price_lo: int
    price_hi: int
    n_events: int
    chunks: Callable[[], Iterator[np.ndarray]]


def empty_events(n: int) -> np.ndarray:
    """A zeroed event array of length ``n``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def is_l3(events: np.ndarray) -> bool:
    """True when the array carries order-level (L3) events."""
    kinds = events["kind"]
    return bool(np.any((kinds >= ADD) & (kinds <= EXECUTE)))


def price_level(events: np.ndarray) -> float | None:
    """Where the market trades at the start of ``events``, in ticks: the median trade price, else the
    median price of the book levels added (None when there are neither). A reference for sizing
    orders against a minimum order value, not a fair value."""
    kinds = events["kind"]
    trades = events["price"][(kinds == TRADE) | (kinds == EXECUTE)]
    if len(trades):
        return float(np.median(trades))
    levels = events["price"][((kinds == SET) | (kinds == ADD)) & (events["size"] > 0)]
    return float(np.median(levels)) if len(levels) else None
