"""What the live engine needs from a venue, paper or real.

Calls that change orders are synchronous and return at once (the request is on its way); what the
venue answers comes back through the :class:`VenueListener` the maker subscribed, as the same
:class:`~quotewise.sim.exchange.Response` objects the backtest delivers, each fill with its sequence
number. Market data comes through the
same listener as arrays of :data:`~quotewise.model.events.EVENT_DTYPE` events, so a maker keeps its
own book exactly as a backtest does.

Fills carry a venue sequence number (``seq``, 1, 2, ... per maker) so that after a crash the maker
can ask for every fill after the last one it stored: none lost, none counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from quotewise.errors import QuotewiseError

if TYPE_CHECKING:
    from quotewise.model.instrument import Instrument
    from quotewise.model.response import Response


class NotSupported(QuotewiseError):
    """The venue does not offer this call (e.g. amend on the paper venue)."""


@dataclass(frozen=True)
class VenueOrder:
    """One of our orders as the venue knows it: alive (in flight or resting) at the venue."""

    order_id: int
    side: int
    price: int
    size: int
    left: int


@dataclass(frozen=True)
class VenueFill:
    """One fill as the venue recorded it; ``seq`` orders a maker's fills without gaps."""

    seq: int
    order_id: int
    exch_ts: int
    side: int
    price: int
    qty: int
    left: int
    fee: float
    maker: bool
    trade_id: str = ""  # the venue's id of the trade ('' for the paper venue: ``seq`` names it)


class VenueListener(Protocol):
    """Where a venue sends what happens. Implementations must not block: they queue work, or do
    only a bounded few microseconds of it (the maker's inline decision)."""

    def on_market(self, events: np.ndarray) -> None: ...

    def on_responses(self, responses: list[tuple[Response, int]]) -> None:
        """Responses in delivery order, each with its fill sequence number (0 for anything else)."""
        ...


class Venue(Protocol):
    """Order entry, account queries and the two streams, for one instrument."""

    instrument: Instrument

    @property
    def now(self) -> int:
        """The venue's clock in ns (the replay clock for a paper venue)."""
        ...

    @property
    def price_range(self) -> tuple[int, int]:
        """Lowest and highest price in ticks a book of this market needs (for a dense book)."""
        ...

    def place(
        self, side: int, price: int, size: int, post_only: bool = True, reject_reason: int = 0
    ) -> int: ...

    def cancel(self, order_id: int) -> bool: ...

    def amend(self, order_id: int, price: int, size: int) -> bool:
        """Change an order in place where the venue supports it; otherwise raise NotSupported."""
        ...

    def open_orders(self) -> list[VenueOrder]: ...

    def position(self) -> tuple[int, float, float]:
        """Position in lots, cash and fees paid, as the venue counts them."""
        ...

    def fills_since(self, seq: int) -> list[VenueFill]:
        """Every fill with a sequence number above ``seq``, in order."""
        ...

    def subscribe(self, listener: VenueListener) -> None: ...

    async def run(self) -> None:
        """Drive the venue (the replay clock, the connection) until it ends or is cancelled."""
        ...

    def close(self) -> None: ...
