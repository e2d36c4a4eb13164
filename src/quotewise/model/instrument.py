"""An instrument: how to turn integer ticks and lots into prices, sizes and money."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Instrument(BaseModel):
    """Contract specification. Fees are fractions of traded notional; a negative fee is a rebate.

    P&L is linear: ``price * size`` in the quote currency (inverse contracts are not modelled yet).
    """

    model_config = ConfigDict(frozen=True)

    symbol: str = "SYNTH"
    venue: str = "synthetic"
    tick_size: float = Field(0.01, gt=0, description="price increment")
    lot_size: float = Field(1.0, gt=0, description="size increment")
    min_size_lots: int = Field(1, ge=1, description="smallest order, in lots")
    maker_fee: float = Field(0.0, description="fraction of notional; negative = rebate")
    taker_fee: float = Field(0.0, description="fraction of notional")
    min_price: float | None = Field(None, description="lowest valid price (prediction markets: 0)")
    max_price: float | None = Field(None, description="highest valid price (prediction markets: 1)")

    @field_validator("tick_size", "lot_size", "maker_fee", "taker_fee")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        return value

    def price(self, ticks: int | float) -> float:
        return float(ticks) * self.tick_size

    def size(self, lots: int | float) -> float:
        return float(lots) * self.lot_size

    def to_ticks(self, price: float) -> int:
        """Nearest tick; use :meth:`on_tick` to check a price is exactly on the grid."""
        return round(price / self.tick_size)

    def to_lots(self, size: float) -> int:
        return round(size / self.lot_size)

    def on_tick(self, price: float, tol: float = 1e-9) -> bool:
        ticks = price / self.tick_size
        return abs(ticks - round(ticks)) <= tol * max(1.0, abs(ticks))

    def on_lot(self, size: float, tol: float = 1e-9) -> bool:
        lots = size / self.lot_size
        return abs(lots - round(lots)) <= tol * max(1.0, abs(lots))
