"""What a venue tells the strategy about one of its orders: the one response type of every venue."""

from __future__ import annotations

from typing import NamedTuple


class Response(NamedTuple):
    """What the venue tells the strategy about one order, stamped with both clocks. A named tuple:
    immutable, and built in a fifth of a frozen dataclass's time (0.3 against 1.6 us; the live engine
    builds one for every ack, cancel and fill)."""

    kind: str
    order_id: int
    exch_ts: int
    deliver_ts: int
    side: int
    price: int
    qty: int
    left: int
    maker: bool
    reason: str
    position: int
    cash: float
    fee: float
    mid2: int  # best bid + best ask in ticks at the exchange when this happened; -1 if a side was empty
    trade_id: str = ""  # a fill's trade id at a real venue ('' where the venue numbers fills itself)

    @property
    def terminal(self) -> bool:
        return self.kind in ("rejected", "cancelled") or (self.kind == "fill" and self.left <= 0)
