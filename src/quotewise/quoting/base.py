"""The strategy contract: a strategy states the quotes it wants; it never places or cancels.

A strategy is called on a fixed decision grid (``interval``) with a :class:`MarketView` and returns
a :class:`QuoteSet`. The order manager turns the difference between that set and the working orders
into cancels and new orders, so orders that are still right keep their place in the queue. The same
strategy object runs in a backtest and live.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quotewise.errors import ConfigError
from quotewise.model.instrument import Instrument
from quotewise.parsing import Duration

if TYPE_CHECKING:
    from quotewise.book.view import MarketView
    from quotewise.model.response import Response


@dataclass(frozen=True)
class Quote:
    """One resting order we want: price in ticks, size in lots."""

    price: int
    size: int


@dataclass
class QuoteSet:
    """The orders a strategy wants working, best price first on each side."""

    bids: list[Quote] = field(default_factory=list)
    asks: list[Quote] = field(default_factory=list)

    def __post_init__(self) -> None:
        # plain loops: this runs on every live decision, where generator overhead shows
        top_bid = top_ask = None
        for q in self.bids:
            if q.size <= 0:
                raise ValueError(f"quote size must be positive lots, got {q}")
            if top_bid is None or q.price > top_bid:
                top_bid = q.price
        for q in self.asks:
            if q.size <= 0:
                raise ValueError(f"quote size must be positive lots, got {q}")
            if top_ask is None or q.price < top_ask:
                top_ask = q.price
        if top_bid is not None and top_ask is not None and top_bid >= top_ask:
            raise ValueError(f"quote set crosses itself: bids {self.bids} asks {self.asks}")


class StrategyParams(BaseModel):
    """Parameters every strategy has; subclasses add their own. Names match the CLI's ``--set`` keys."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    interval: Duration = Field("100ms", description="time between quote decisions (a bare number is ms)")
    size: float | None = Field(None, gt=0, description="order size in instrument units (default: minimum)")
    post_only: bool = Field(True, description="reject rather than take liquidity")

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be positive")
        return value


class Strategy(ABC):
    """Base class for strategies. Subclasses set ``name`` and ``Params`` and implement :meth:`quotes`."""

    name: ClassVar[str] = "strategy"
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    # True when the strategy reads its ``model`` setting itself (else only the compiled rule uses it)
    reads_model: ClassVar[bool] = False

    def __init__(self, params: StrategyParams | None = None, **overrides: object) -> None:
        base = params.model_dump() if params is not None else {}
        self.params = self.Params(**{**base, **overrides})
        self.instrument: Instrument | None = None

    @property
    def interval_ns(self) -> int:
        return self.params.interval

    def on_start(self, instrument: Instrument) -> None:
        """Called once before the first decision."""
        self.instrument = instrument

    def size_lots(self) -> int:
        inst = self.instrument
        assert inst is not None, "on_start() sets the instrument"
        if self.params.size is None:
            return inst.min_size_lots
        return max(inst.min_size_lots, round(self.params.size / inst.lot_size))

    @abstractmethod
    def quotes(self, view: MarketView) -> QuoteSet:
        """The quote set wanted now."""

    def on_fill(self, fill: Response, view: MarketView) -> None:  # noqa: B027 - optional hook
        """Called when a fill report reaches the strategy (after the response latency)."""


MIN_NOTIONAL_HEADROOM = 1.1  # a default size is worth 10% more than the venue's minimum at the start price


def resolve_size(strategy: Strategy, instrument: Instrument, price_ticks: float | None) -> None:
    """Check the strategy's order ``size`` against what the venue accepts, or pick the default.

    A given size must be a whole number of lots, at least the minimum size and, where the venue has a
    minimum order value, worth at least that at ``price_ticks`` (the market's price when trading
    starts; None when unknown). Without a size, the smallest size the venue accepts is used, with
    10% to spare over a minimum order value so that a fall in price does not get every order
    rejected. The size chosen is written into the strategy's params, so outputs show it. Raises
    :class:`ConfigError` naming the size and the rule it breaks.
    """
    params = strategy.params
    inst = instrument
    unit = inst.size_currency
    step = inst.order_lots
    if params.size is None:
        lots = inst.min_size_lots
        if inst.min_notional > 0 and price_ticks:
            wanted = inst.min_notional * MIN_NOTIONAL_HEADROOM
            lots = max(lots, math.ceil(wanted / inst.quote_notional(price_ticks, 1) - 1e-9))
        strategy.params = params.model_copy(update={"size": inst.qty(-(-lots // step) * step)})
        return
    lots = inst.to_lots(params.size)
    if not inst.on_lot(params.size) or not inst.on_order_step(lots):
        raise ConfigError(
            f"size {params.size:g} {unit} is not a whole number of the venue's size step {inst.order_step:g}"
        )
    if lots < inst.min_size_lots:
        smallest = inst.qty(inst.min_size_lots)
        raise ConfigError(f"size {params.size:g} {unit} is below the venue's minimum order size {smallest:g}")
    value = inst.quote_notional(price_ticks, lots) if price_ticks else math.nan
    if inst.min_notional > 0 and value < inst.min_notional * (1 - 1e-9):
        least = math.ceil(inst.min_notional / inst.quote_notional(price_ticks, 1) - 1e-9)
        need = inst.qty(-(-least // step) * step)
        raise ConfigError(
            f"size {params.size:g} {unit} is worth {value:.6g} {inst.quote_currency} at the market's price "
            f"{inst.px(price_ticks):g}, below the venue's minimum order value of {inst.min_notional:g} "
            f"{inst.quote_currency}; use a size of at least {need:g}"
        )


def bid_ticks(price_in_ticks: float) -> int:
    """Round a bid down to the tick grid (never pay more than intended)."""
    return math.floor(price_in_ticks + 1e-9)


def ask_ticks(price_in_ticks: float) -> int:
    """Round an ask up to the tick grid (never sell for less than intended)."""
    return math.ceil(price_in_ticks - 1e-9)
