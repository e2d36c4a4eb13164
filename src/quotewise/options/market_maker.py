"""An option market maker: bid and ask around the model price, a spread in volatility points, limits
on the book's greeks, and delta hedging in the underlying.

It works on many independent books at once (one per Monte-Carlo path: every argument and state is a
numpy array over books), which is how the model world of ``mm sim options`` drives it; a single book
is an array of one.

- **Quotes.** The model vol comes from a flat vol, a fitted :class:`~quotewise.options.smile.Smile`
  (sticky strike: the smile's vol at the option's strike) or any callable ``(strike, tau) -> vol``.
  The bid is the Black-Scholes price at ``vol - vol_spread/2``, the ask the price at
  ``vol + vol_spread/2``: quoting in vol keeps the width fair across strikes and expiries, and in
  price it is about ``vega * vol_spread``.
- **Greeks limits.** A side is not quoted when a fill on it would leave the book's delta, gamma or
  vega beyond its limit *and* further from zero than now: a book pushed past a limit by the market
  (gamma grows near expiry) may still trade back towards it.
- **Hedging.** When the book's delta (options plus underlying) leaves ``[-hedge_band, hedge_band]``,
  the maker trades the underlying to bring it back to zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from quotewise.errors import ConfigError
from quotewise.options.pricing import Greeks, black_scholes, option_sign
from quotewise.options.smile import Smile

VolSource = float | Smile | Callable[[float, float], float]


@dataclass(frozen=True)
class OptionSpec:
    """The option quoted: a European on the underlying, ``expiry`` years from time 0."""

    strike: float
    expiry: float
    kind: str = "call"

    def __post_init__(self) -> None:
        option_sign(self.kind)
        for name in ("strike", "expiry"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"option {name} must be a finite number > 0, got {value}")

    def payoff(self, spot: np.ndarray) -> np.ndarray:
        return np.maximum(option_sign(self.kind) * (spot - self.strike), 0.0)


@dataclass(frozen=True)
class MarketMakerConfig:
    """Quoting width (in vol), size and risk limits (absolute: underlying units for delta, value per
    1.00 of vol for vega, delta per unit of spot for gamma)."""

    vol_spread: float = 0.02
    size: float = 1.0
    max_delta: float = math.inf
    max_gamma: float = math.inf
    max_vega: float = math.inf
    hedge_band: float = 1.0

    def __post_init__(self) -> None:
        for name in ("vol_spread", "size", "max_delta", "max_gamma", "max_vega", "hedge_band"):
            value = getattr(self, name)
            if math.isnan(value) or value < 0 or (name == "size" and value == 0):
                raise ConfigError(f"market maker {name} must be >= 0 (size > 0), got {value}")


@dataclass
class OptionBook:
    """Per book: option contracts held (+ long), underlying units held, and cash."""

    options: np.ndarray
    shares: np.ndarray
    cash: np.ndarray

    @classmethod
    def empty(cls, books: int) -> OptionBook:
        return cls(np.zeros(books), np.zeros(books), np.zeros(books))


@dataclass(frozen=True)
class OptionQuotes:
    """What the maker shows per book; a side that is off (``bid_on``/``ask_on`` False) is not quoted."""

    mid: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_on: np.ndarray
    ask_on: np.ndarray
    greeks: Greeks  # of one contract, at the model vol


class OptionMarketMaker:
    """Quotes one option (:class:`OptionSpec`) on many books; see the module docstring."""

    def __init__(self, option: OptionSpec, vol: VolSource, config: MarketMakerConfig, rate: float = 0.0):
        self.option, self.config, self.rate = option, config, rate
        self._vol = vol
        if config.vol_spread / 2 >= self.model_vol(option.expiry):
            raise ConfigError(
                f"vol_spread {config.vol_spread:g} is too wide: the bid's vol would be <= 0 "
                f"(model vol {self.model_vol(option.expiry):g})"
            )

    def model_vol(self, tau: float) -> float:
        if isinstance(self._vol, Smile):
            return float(self._vol.vol(self.option.strike))
        if callable(self._vol):
            return float(self._vol(self.option.strike, tau))
        return float(self._vol)

    def book_greeks(
        self, book: OptionBook, per_contract: Greeks
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Delta (options and underlying), gamma and vega of each book."""
        n = book.options
        return n * per_contract.delta + book.shares, n * per_contract.gamma, n * per_contract.vega

    def quote(self, spot: np.ndarray, tau: float, book: OptionBook) -> OptionQuotes:
        """Bid and ask for each book at ``tau`` years to expiry, each side on only if a fill keeps the
        book within its greeks limits (or moves it back towards them)."""
        vol, half = self.model_vol(tau), self.config.vol_spread / 2
        strike, kind, rate = self.option.strike, self.option.kind, self.rate
        at_mid = black_scholes(spot, strike, tau, vol, rate, kind=kind)
        bid = black_scholes(spot, strike, tau, vol - half, rate, kind=kind).price
        ask = black_scholes(spot, strike, tau, vol + half, rate, kind=kind).price
        now = self.book_greeks(book, at_mid)
        per_fill = (at_mid.delta, at_mid.gamma, at_mid.vega)
        limits = (self.config.max_delta, self.config.max_gamma, self.config.max_vega)
        bid_on = np.ones(np.shape(spot), dtype=bool)
        ask_on = bid_on.copy()
        for current, change, limit in zip(now, per_fill, limits, strict=True):
            change = self.config.size * np.asarray(change)
            bid_on &= _within(current, current + change, limit)
            ask_on &= _within(current, current - change, limit)
        return OptionQuotes(
            np.asarray(at_mid.price), np.asarray(bid), np.asarray(ask), bid_on, ask_on, at_mid
        )

    def hedge(self, spot: np.ndarray, book: OptionBook, option_delta: np.ndarray) -> np.ndarray:
        """Trade the underlying where the book's delta is outside the band, back to zero delta; returns
        the units traded (+ bought) per book, the cash side booked at ``spot``."""
        delta = book.options * option_delta + book.shares
        trade = np.where(np.abs(delta) > self.config.hedge_band, -delta, 0.0)
        book.shares += trade
        book.cash -= trade * spot
        return trade


def _within(current: np.ndarray, after: np.ndarray, limit: float) -> np.ndarray:
    return (np.abs(after) <= limit) | (np.abs(after) < np.abs(current))
