"""Built-in strategies: fixed half-spread around the mid, and the same with linear inventory skew."""

from __future__ import annotations

from pydantic import Field, field_validator

from quotewise.parsing import check_distance, parse_distance
from quotewise.quoting.base import MarketView, Quote, QuoteSet, Strategy, StrategyParams, ask_ticks, bid_ticks


class SymmetricParams(StrategyParams):
    half_spread: str | float = Field(
        "1tick", description="distance from mid to each quote: 2ticks, 5bp or a price"
    )

    @field_validator("half_spread")
    @classmethod
    def _distance(cls, value: str | float) -> str | float:
        return check_distance(value, "half_spread")


class SymmetricStrategy(Strategy):
    """One bid and one ask, ``half_spread`` either side of the mid, never crossing the book."""

    name = "symmetric"
    Params = SymmetricParams
    params: SymmetricParams

    def half_spread_ticks(self, view: MarketView, mid: float) -> float:
        inst = view.instrument
        return parse_distance(self.params.half_spread, inst.tick_size, mid * inst.tick_size) / inst.tick_size

    def centre(self, view: MarketView, mid: float, half_spread: float) -> float:
        """Where the quotes are centred (ticks); the skew strategy moves it with inventory."""
        return mid

    def quotes(self, view: MarketView) -> QuoteSet:
        mid = view.mid
        if mid is None or view.best_bid is None or view.best_ask is None:
            return QuoteSet()
        hs = self.half_spread_ticks(view, mid)
        centre = self.centre(view, mid, hs)
        size = self.size_lots()
        bid = min(bid_ticks(centre - hs), view.best_ask - 1)
        ask = max(ask_ticks(centre + hs), view.best_bid + 1)
        bids = [Quote(bid, size)] if self.wants_bid(view) and bid > 0 else []
        asks = [Quote(ask, size)] if self.wants_ask(view) else []
        return QuoteSet(bids, asks)

    def wants_bid(self, view: MarketView) -> bool:
        return True

    def wants_ask(self, view: MarketView) -> bool:
        return True


class SkewParams(SymmetricParams):
    skew: float = Field(1.0, ge=0, description="centre shift at max inventory, in half-spreads")
    max_inventory: float | None = Field(
        None,
        gt=0,
        description="position (instrument units) at which the adding side stops; default 10 x size",
    )


class SkewStrategy(SymmetricStrategy):
    """Symmetric quotes whose centre moves against inventory: ``mid - skew * hs * q / max_inventory``.

    At ``|q| >= max_inventory`` the side that would add to the position is not quoted.
    """

    name = "skew"
    Params = SkewParams
    params: SkewParams

    def max_inventory_lots(self) -> float:
        inst = self.instrument
        assert inst is not None
        if self.params.max_inventory is None:
            return 10.0 * self.size_lots()
        return self.params.max_inventory / inst.lot_size

    def centre(self, view: MarketView, mid: float, half_spread: float) -> float:
        return mid - self.params.skew * half_spread * view.position / self.max_inventory_lots()

    def wants_bid(self, view: MarketView) -> bool:
        return view.position < self.max_inventory_lots()

    def wants_ask(self, view: MarketView) -> bool:
        return view.position > -self.max_inventory_lots()


BUILTIN: dict[str, type[Strategy]] = {
    SymmetricStrategy.name: SymmetricStrategy,
    SkewStrategy.name: SkewStrategy,
}
