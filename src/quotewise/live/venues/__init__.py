"""Real venues: the ccxt venue for live trading and live market data, and local exchange emulators
that speak a venue's own wire protocol (how the venue is proven without the internet)."""


def is_exchange(name: str) -> bool:
    """Whether ``name`` is an exchange ccxt.pro can trade on (ccxt is imported here, when a real
    venue is asked for: it takes a second)."""
    import ccxt.pro

    return name in ccxt.pro.exchanges


def live_market(market: str | None) -> tuple[str, str] | None:
    """``(exchange, symbol)`` for ``binanceusdm:BTC/USDT:USDT`` (an exchange's live market, for the
    paper venue); None for anything else (a data file's market)."""
    if market is None or ":" not in market:
        return None
    exchange, symbol = market.split(":", 1)
    return (exchange, symbol) if symbol and is_exchange(exchange) else None
