"""An instrument: how to turn integer ticks and lots into prices, sizes and money.

Three contract kinds are priced, each in its settlement currency (docs/contracts.md):

- ``linear`` (spot, USD-M perpetuals, equities): ``size`` units of the base, worth
  ``contract_size x price`` each in the quote currency, which is also the settlement currency.
- ``inverse`` (COIN-M, Deribit, BitMEX XBTUSD): each unit of size is ``contract_size`` of the quote
  currency (e.g. 10 USD), settled in the base coin; it is worth ``contract_size / price`` coins.
- ``quanto``: linear in price, but each point of price pays ``contract_size`` of a third currency
  (the settlement currency, e.g. BitMEX ETHUSD pays XBT).

One function carries the difference, :meth:`Instrument.unit_value`: what one unit of size held is
worth at a price, in the settlement currency, up to a constant: ``contract_size x price`` (linear,
quanto) or ``-contract_size / price`` (inverse; its coin value rises with the price, from below
zero). Buying ``q`` at ``p`` changes cash by ``-q v(p)``, and a position ``P`` is worth ``P v(m)``
at a mark ``m``; so P&L = cash + P v(m) for every kind, and a flat book's P&L is its cash.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from quotewise.model.fees import ROUNDING, fee_of

ContractKind = Literal["linear", "inverse", "quanto"]
FeeCurve = Literal["notional", "probability"]
MAX_FEE = 0.1  # a fee beyond 10% of notional is a typo, not a fee schedule


def _decimals(step: float) -> int:
    """Decimal places of an increment read from its shortest repr: 0.01 -> 2, 0.5 -> 1, 5 -> 0."""
    exponent = Decimal(repr(float(step))).normalize().as_tuple().exponent
    return max(0, -int(exponent))


class Instrument(BaseModel):
    """Contract specification. Fees are fractions of traded notional (``fee_curve`` notional) or, on
    prediction markets, a rate times shares times p (1 - p) (docs/prediction-markets.md); a negative
    fee is a rebate."""

    model_config = ConfigDict(frozen=True)

    symbol: str = "SYNTH"
    venue: str = "synthetic"
    tick_size: float = Field(0.01, gt=0, description="price increment")
    lot_size: float = Field(1.0, gt=0, description="size increment")
    min_size_lots: int = Field(1, ge=1, description="smallest order, in lots")
    order_lots: int = Field(
        1,
        ge=1,
        description="order sizes are multiples of this many lots: the venue's step where the data's "
        "sizes are finer (partial fills leave book remainders off the step)",
    )
    maker_fee: float = Field(0.0, description="fee rate of a maker fill (see fee_curve); negative = rebate")
    taker_fee: float = Field(0.0, description="fee rate of a taker fill (see fee_curve)")
    fee_curve: FeeCurve = Field(
        "notional",
        description="notional: fee = rate x traded value; probability: fee = rate x shares x "
        "(p (1 - p))^fee_exponent, p the price (prediction markets: Polymarket, Kalshi)",
    )
    fee_exponent: float = Field(1.0, gt=0, le=4, description="the probability curve's exponent")
    fee_step: float = Field(
        0.0, ge=0, description="a fill's fee is charged in whole steps of this (0: exact)"
    )
    fee_rounding: Literal["nearest", "up", "down"] = Field(
        "nearest", description="how a fee is rounded to its step: up (Kalshi), down (Polymarket), nearest"
    )
    min_price: float | None = Field(None, description="lowest valid price (prediction markets: 0)")
    max_price: float | None = Field(None, description="highest valid price (prediction markets: 1)")
    contract: ContractKind = Field("linear", description="linear, inverse or quanto (see the module)")
    contract_size: float = Field(
        1.0,
        gt=0,
        description="linear: base units per unit of size; inverse: quote currency per unit of size "
        "(e.g. 10 USD); quanto: settlement currency per point of price per unit of size",
    )
    base: str = Field("", description="base asset, e.g. BTC ('' when unknown)")
    quote: str = Field("", description="quote currency: the currency prices are in, e.g. USDT")
    settle: str = Field("", description="settlement currency: P&L and fees; '' means the natural one")
    size_unit: str = Field("", description="what one unit of size is, e.g. BTC or contracts")
    min_notional: float = Field(
        0.0, ge=0, description="smallest order value the venue accepts, quote currency (0: none)"
    )
    price_band: tuple[float, float] | None = Field(
        None,
        description="(down, up): the venue rejects a price outside [down x mid, up x mid] (Binance "
        "PERCENT_PRICE)",
    )

    @field_validator("tick_size", "lot_size", "maker_fee", "taker_fee", "contract_size", "min_notional")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        return value

    @field_validator("maker_fee", "taker_fee")
    @classmethod
    def _fee(cls, value: float) -> float:
        if abs(value) > MAX_FEE:
            raise ValueError(
                f"{value:g} is {value * 1e4:g} bp of notional; fees are within +-10% "
                "(write e.g. 2bp or 0.0002)"
            )
        return value

    @field_validator("price_band")
    @classmethod
    def _band(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 < value[0] < 1 < value[1]:
            raise ValueError(f"price band (down, up) must satisfy 0 < down < 1 < up, got {value}")
        return value

    @model_validator(mode="after")
    def _order_step(self) -> Instrument:
        if self.min_size_lots % self.order_lots:
            raise ValueError(
                f"the minimum size ({self.min_size_lots} lots) must be a multiple of the order step "
                f"({self.order_lots} lots)"
            )
        return self

    @model_validator(mode="after")
    def _quanto_minimum(self) -> Instrument:
        if self.contract == "quanto" and self.min_notional > 0:
            raise ValueError(
                "a quanto contract's order value has no quote-currency figure: use a minimum size"
            )
        return self

    # -- the currencies each figure is in -------------------------------------------------------------
    @computed_field  # type: ignore[prop-decorator]
    @property
    def settle_currency(self) -> str:
        """The currency of P&L, cash, fees and notional: ``settle``, else the base coin (inverse) or the
        quote currency; "quote currency" when the data does not name it."""
        natural = self.base if self.contract == "inverse" else self.quote
        return self.settle or natural or "quote currency"

    @property
    def binary(self) -> bool:
        """A binary-outcome market: prices are probabilities, each share pays 1 or 0 at the end."""
        return self.max_price is not None and self.max_price <= 1.0

    @property
    def quote_currency(self) -> str:
        return self.quote or "quote currency"

    @property
    def size_currency(self) -> str:
        """What a unit of size is: ``size_unit``, else contracts (inverse, quanto) or the base."""
        default = "contracts" if self.contract != "linear" else (self.base or "units")
        return self.size_unit or default

    # -- rounding for display -------------------------------------------------------------------------
    @property
    def price_decimals(self) -> int:
        return _decimals(self.tick_size)

    @property
    def size_decimals(self) -> int:
        return _decimals(self.lot_size)

    def px(self, ticks: int | float) -> float:
        """A price in ticks as a number on the tick grid (no binary noise such as 584.8100000000001)."""
        return round(float(ticks) * self.tick_size, self.price_decimals)

    def qty(self, lots: int | float) -> float:
        """A size in lots as a number on the lot grid."""
        return round(float(lots) * self.lot_size, self.size_decimals)

    # -- conversions ------------------------------------------------------------------------------------
    def price(self, ticks: int | float) -> float:
        return float(ticks) * self.tick_size

    def size(self, lots: int | float) -> float:
        return float(lots) * self.lot_size

    def to_ticks(self, price: float) -> int:
        """Nearest tick; use :meth:`on_tick` to check a price is exactly on the grid."""
        return round(price / self.tick_size)

    def to_lots(self, size: float) -> int:
        return round(size / self.lot_size)

    @property
    def order_step(self) -> float:
        """The size increment of an order, instrument units (the lot, or the venue's coarser step)."""
        return self.qty(self.order_lots)

    def on_order_step(self, lots: int) -> bool:
        return lots % self.order_lots == 0

    def on_tick(self, price: float, tol: float = 1e-9) -> bool:
        ticks = price / self.tick_size
        return abs(ticks - round(ticks)) <= tol * max(1.0, abs(ticks))

    def on_lot(self, size: float, tol: float = 1e-9) -> bool:
        lots = size / self.lot_size
        return abs(lots - round(lots)) <= tol * max(1.0, abs(lots))

    # -- money ------------------------------------------------------------------------------------------
    @property
    def inverse(self) -> bool:
        return self.contract == "inverse"

    @property
    def value_per_tick_lot(self) -> float:
        """Linear and quanto: settlement currency per tick of price per lot (the engine's constant)."""
        return self.tick_size * self.lot_size * self.contract_size

    @property
    def inverse_value(self) -> float:
        """Inverse: ``contract_size x lot / tick``, so one lot at ``t`` ticks is worth this / t coins."""
        return self.contract_size * self.lot_size / self.tick_size

    def unit_value(self, price: float | np.ndarray) -> float | np.ndarray:
        """What one unit of size held is worth at ``price``, settlement currency, up to a constant (see
        the module docstring); works on arrays."""
        if self.inverse:
            return -self.contract_size / price
        return self.contract_size * price

    def value(self, price_ticks: float | np.ndarray, lots: float | np.ndarray) -> float | np.ndarray:
        """:meth:`unit_value` of ``lots`` at ``price_ticks``: the engine's arithmetic, operation for
        operation, so live and backtest books agree to the last bit."""
        if self.inverse:
            return -(lots * self.inverse_value) / price_ticks
        return price_ticks * lots * self.value_per_tick_lot

    def notional(self, price_ticks: float | np.ndarray, lots: float | np.ndarray) -> float | np.ndarray:
        """Traded value in the settlement currency (what fees and notional limits use)."""
        return abs(self.value(price_ticks, lots))

    def fee(self, price_ticks: int, lots: int, maker: bool) -> float:
        """The fee of one fill, as the simulator charges it (:func:`quotewise.model.fees.fee_of`)."""
        return float(
            fee_of(
                self.maker_fee if maker else self.taker_fee,
                self.notional(price_ticks, lots),
                lots * self.lot_size * self.contract_size,
                self.fee_curve == "probability",
                price_ticks * self.tick_size,
                self.fee_exponent,
                self.fee_step,
                ROUNDING[self.fee_rounding],
            )
        )

    def cash_flow(self, side: int, price_ticks: float, lots: float, fee: float) -> float:
        """What a fill does to cash: ``-side x value - fee`` (fee positive when paid)."""
        return -side * self.value(price_ticks, lots) - fee

    def quote_notional(self, price_ticks: float, lots: float) -> float:
        """An order's value in the quote currency (what exchange minimums are stated in): price x size
        for linear contracts, size x contract size for inverse ones; NaN for quanto."""
        if self.inverse:
            return lots * self.lot_size * self.contract_size
        if self.contract == "quanto":
            return math.nan
        return price_ticks * lots * self.value_per_tick_lot

    def to_quote(self, amount: float, price_ticks: float) -> float:
        """A settlement-currency amount in the quote currency at ``price_ticks`` (NaN for quanto)."""
        if self.contract == "linear":
            return amount
        if self.inverse:
            return amount * self.price(price_ticks)
        return math.nan
