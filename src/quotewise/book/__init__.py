"""Order books: a dense tick-indexed L2 core (numba) and an L3 view by order id."""

from quotewise.book.orderbook import (
    EMPTY_ASK,
    EMPTY_BID,
    L3Book,
    L3Counters,
    OrderBook,
    event_price_range,
    replay_top_levels,
)

__all__ = [
    "EMPTY_ASK",
    "EMPTY_BID",
    "L3Book",
    "L3Counters",
    "OrderBook",
    "event_price_range",
    "replay_top_levels",
]
