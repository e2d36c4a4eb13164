"""What a strategy would quote for a given book and inventory, before any money is at risk: one
decision of the real strategy on a made-up market (``mm quote`` and the MCP tool ``quote``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quotewise.errors import ConfigError


def touch_ticks(mid: float | None, bid: float | None, ask: float | None, tick: float) -> tuple[int, int]:
    """The best bid and ask in ticks: given, or a two-tick market around a mid on the grid
    (a one-tick market when the mid is halfway between two ticks)."""
    if bid is not None or ask is not None:
        if bid is None or ask is None:
            raise ConfigError("give both --bid and --ask, or --mid alone")
        bb, ba = round(bid / tick), round(ask / tick)
        off_grid = abs(bb * tick - bid) > 1e-9 * max(1.0, bid) or abs(ba * tick - ask) > 1e-9 * max(1.0, ask)
        if off_grid:
            raise ConfigError(f"--bid {bid} and --ask {ask} must be on the tick grid ({tick})")
        if not 0 < bb < ba:
            raise ConfigError(f"--bid {bid} must be positive and below --ask {ask}")
        return bb, ba
    if mid is None:
        raise ConfigError("give --mid, or --bid and --ask")
    half_ticks = 2.0 * mid / tick
    if abs(half_ticks - round(half_ticks)) > 1e-6 or round(half_ticks) < 3:
        raise ConfigError(f"--mid {mid} must be on the tick grid ({tick}) or halfway between two ticks")
    m2 = round(half_ticks)
    return (m2 // 2 - 1, m2 // 2 + 1) if m2 % 2 == 0 else (m2 // 2, m2 // 2 + 1)


def quote_preview(
    strategy: str,
    params: Mapping[str, Any] | None = None,
    *,
    mid: float | None = None,
    bid: float | None = None,
    ask: float | None = None,
    bid_size: float = 1.0,
    ask_size: float = 1.0,
    inventory: float = 0.0,
    tick: float = 0.01,
    lot: float = 1.0,
    maker_fee: str | float = "0",
    taker_fee: str | float = "0",
    missing_hint: str = "give it in params (sigma, A, k, ...)",
) -> dict[str, Any]:
    """The quotes ``strategy`` posts on a market of ``tick`` and ``lot`` with this touch and
    ``inventory`` (instrument units): the strategy built and started on the instrument, one decision.
    A strategy that needs an estimate it has no data for is refused, ``missing_hint`` saying how."""
    from quotewise.book.view import MarketView
    from quotewise.model.catalog import with_overrides
    from quotewise.model.instrument import Instrument
    from quotewise.parsing import parse_fee
    from quotewise.quoting.base import resolve_size
    from quotewise.quoting.loader import make_strategy

    if tick <= 0 or lot <= 0:
        raise ConfigError("--tick and --lot must be positive")
    inst = with_overrides(
        Instrument(symbol="QUOTE", venue="cli", tick_size=tick, lot_size=lot),
        maker_fee=parse_fee(maker_fee, "--maker-fee"),
        taker_fee=parse_fee(taker_fee, "--taker-fee"),
    )
    strat = make_strategy(strategy, dict(params or {}))
    resolve_size(strat, inst, None)
    strat.on_start(inst)
    bb, ba = touch_ticks(mid, bid, ask, tick)
    view = MarketView(
        time=0,
        instrument=inst,
        best_bid=bb,
        best_ask=ba,
        bid_size=round(bid_size),
        ask_size=round(ask_size),
        position=round(inventory / lot),
    )
    wanted = strat.quotes(view)
    state = dict(getattr(strat, "last", {}))
    if state.get("waiting_for"):
        raise ConfigError(
            f"{strategy} needs {state['waiting_for']} and has no market data to estimate it from: "
            + missing_hint
        )

    def px(ticks: float) -> float:
        return round(ticks * tick, 12)  # no binary noise such as 99.99000000000001 in the output

    return {
        "strategy": strat.name,
        "params": strat.params.model_dump(),
        "market": {"bid": px(bb), "ask": px(ba), "mid": px((bb + ba) / 2)},
        "inventory": inventory,
        "bids": [{"price": px(q.price), "size": round(q.size * lot, 12)} for q in wanted.bids],
        "asks": [{"price": px(q.price), "size": round(q.size * lot, 12)} for q in wanted.asks],
        "state": state,
    }
