"""The named strategies (``--strategy``), each assembled from :mod:`quotewise.quoting.components`.

Every strategy runs the same decision pipeline (:class:`QuotingStrategy`); a named model only
says where to centre and how wide to quote (:meth:`QuotingStrategy.plan`):

1. signals: the top-of-book tape, recent trades, OFI and the fill intensity are updated from the
   events seen since the last decision, and the mid feeds the volatility estimator;
2. fair value (``fv_method``), moved by market pressure (``pressure_mode=shift``);
3. the model's centre and half-spread (``symmetric``, ``skew``, ``ladder``, ``avellaneda-stoikov``,
   ``glft``) within ``min_spread``/``max_spread``; pressure on the threatened side
   (``pressure_mode=widen``) and the markouts of our fills widen a side;
4. inventory bands: the adding side stops at ``max_inventory``, and beyond ``flatten_band`` times
   it only the reducing side is quoted, one order at the touch (or inside it, where the model's
   own price already is); markouts can pause a side;
5. rounding away from the mid, never crossing the book, the requote ``threshold``, the fee floor;
6. the ladder (``max_orders``, ``level_spacing``, ``level_decay``) and the instrument's price bounds.

Inventory ``q`` in the models is in order sizes (``position / size``), the unit the closed forms
assume each fill to be. Model parameters are in price units: ``sigma`` in price per sqrt second,
``k`` per unit of price, ``A`` per second, ``gamma`` per (price x order size).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from quotewise.book.view import MarketView
from quotewise.model.instrument import Instrument
from quotewise.quoting.base import QuoteSet, Strategy, ask_ticks, bid_ticks
from quotewise.quoting.components import (
    AdverseSelection,
    FairValue,
    IntensityEstimator,
    Pressure,
    RequoteFilter,
    TickDistance,
    Volatility,
    adding_side,
    apply_fee_floor,
    floor_fee,
    half_spread,
    inventory_band,
    ladder,
    skew_shift,
)
from quotewise.quoting.models import as_infinite_quotes, as_quotes, glft_quotes
from quotewise.quoting.params import (
    ASParams,
    GLFTParams,
    LadderParams,
    ModelParams,
    QuoteParams,
    SkewParams,
    SpreadParams,
)
from quotewise.signals.flow import OfiWindow, TopTape, TradeWindow

if TYPE_CHECKING:
    from quotewise.model.response import Response


class QuotingStrategy(Strategy):
    """The decision pipeline shared by the named strategies; subclasses implement :meth:`plan`.

    ``last`` holds what the latest decision was based on, in price units (fair value, centre,
    half-spreads, sigma, fitted A and k, inventory band), or ``waiting_for`` when a model had too
    little data to quote.
    """

    Params = QuoteParams
    params: QuoteParams

    def on_start(self, instrument: Instrument) -> None:
        super().on_start(instrument)
        p = self.params
        tick = instrument.tick_size
        self._min = None if p.min_spread is None else TickDistance.of(p.min_spread, tick)
        self._max = None if p.max_spread is None else TickDistance.of(p.max_spread, tick)
        self._threshold = TickDistance.of(p.threshold, tick)
        self._spacing = TickDistance.of(p.level_spacing, tick)
        self._trades = TradeWindow(p.flow_window) if p.fv_method == "vwap" or p.flow_skew else None
        self._ofi = OfiWindow(p.flow_window) if p.ofi_skew else None
        self._intensity = self.intensity_estimator(instrument)
        self._tape = TopTape() if self._ofi is not None or self._intensity is not None else None
        self._fv = FairValue(p.fv_method, p.alpha, self._trades)
        self._vol = Volatility(p.vol_method, p.vol_window)
        self._pressure = (
            Pressure(p.book_skew, p.flow_skew, p.ofi_skew, self._trades, self._ofi)
            if p.book_skew or p.flow_skew or p.ofi_skew
            else None
        )
        self._adverse = (
            AdverseSelection(
                p.markout_horizon,
                p.markout_widen,
                None if p.markout_pause is None else TickDistance.of(p.markout_pause, tick),
                p.markout_pause_for,
            )
            if p.markout_widen or p.markout_pause is not None
            else None
        )
        self._requote = RequoteFilter()
        self._fee = floor_fee(p.post_only, instrument.maker_fee, instrument.taker_fee)
        self._lo_tick = (
            1 if instrument.min_price is None else max(1, math.ceil(instrument.min_price / tick - 1e-9))
        )
        self._hi_tick = (
            None if instrument.max_price is None else math.floor(instrument.max_price / tick + 1e-9)
        )
        self.last: dict[str, Any] = {}
        self._now = 0

    # -- what subclasses say ----------------------------------------------------------------------

    @abstractmethod
    def plan(self, view: MarketView, fv: float, sigma: float | None, q: float) -> tuple[float, float] | str:
        """``(centre, half-spread)`` in ticks, or the name of what the model still waits for.

        ``fv`` is the fair value in ticks, ``sigma`` the estimated volatility in ticks per sqrt
        second (None before two decisions), ``q`` the position in order sizes.
        """

    def intensity_estimator(self, instrument: Instrument) -> IntensityEstimator | None:
        """The online fill-intensity fit, for models that need ``A`` or ``k`` from the data."""
        return None

    def default_max_inventory_lots(self) -> float:
        """``max_inventory`` when not given: 10 orders, except for symmetric (no limit)."""
        return 10.0 * self.size_lots()

    def skew_band(self) -> float | None:
        """Where the "skew harder" band starts (fraction of max_inventory); only linear skew has one."""
        return None

    # -- helpers --------------------------------------------------------------------------------

    def max_inventory_lots(self) -> float:
        inst = self.instrument
        assert inst is not None, "on_start() sets the instrument"
        if self.params.max_inventory is None:
            return self.default_max_inventory_lots()
        return self.params.max_inventory / inst.lot_size

    def capped(self, half: float, mid: float) -> float:
        """``half`` (ticks) within ``min_spread`` and ``max_spread``."""
        return half_spread(
            half,
            0.0,
            0.0,
            None if self._min is None else self._min.at(mid),
            None if self._max is None else self._max.at(mid),
        )

    # -- the pipeline -----------------------------------------------------------------------------

    def on_fill(self, fill: Response, view: MarketView) -> None:
        if self._adverse is not None:
            self._adverse.on_fill(fill.exch_ts, fill.side, fill.price)

    def quotes(self, view: MarketView) -> QuoteSet:
        bb, ba = view.best_bid, view.best_ask
        if bb is None or ba is None:
            return QuoteSet()
        p = self.params
        t = self._now = view.time
        mid = (bb + ba) / 2.0
        tops = self._tape.update(view) if self._tape is not None else None
        if self._trades is not None:
            self._trades.update(t, view.events)
        if tops is not None:
            if self._ofi is not None:
                self._ofi.update(t, tops)
            if self._intensity is not None:
                self._intensity.update(t, tops, view.events)
        sigma = self._vol.update(t, mid)
        fv = self._fv.update(view)
        if self._adverse is not None:
            self._adverse.update(t, mid)
        shift = self._pressure.shift(view, ba - bb) if self._pressure is not None else 0.0
        press_bid = press_ask = 0.0
        if p.pressure_mode == "shift":
            fv += shift
        elif shift > 0:
            press_ask = shift  # an expected rise threatens our ask
        else:
            press_bid = -shift
        lots = view.position
        size = self.size_lots()
        tick = view.instrument.tick_size
        self.last = {
            "fair_value": fv * tick,
            "sigma": None if sigma is None else sigma * tick,
            "regime": self._vol.regime,
            "pressure": shift * tick,
            "q": lots / size,
        }
        planned = self.plan(view, fv, sigma, lots / size)
        if isinstance(planned, str):
            self.last["waiting_for"] = planned
            return QuoteSet()
        centre, half = planned
        half_bid = half + press_bid
        half_ask = half + press_ask
        if self._adverse is not None:
            half_bid += self._adverse.extra(1)
            half_ask += self._adverse.extra(-1)
        max_lots = self.max_inventory_lots()
        band = (
            "normal"
            if math.isinf(max_lots)
            else inventory_band(lots, max_lots, self.skew_band(), p.flatten_band)
        )
        self.last.update(centre=centre * tick, half_bid=half_bid * tick, half_ask=half_ask * tick, band=band)
        adding = adding_side(lots)
        sides = {
            s
            for s in (1, -1)
            if not (band in ("stop", "flatten") and s == adding)
            and not (self._adverse is not None and self._adverse.paused(s, t))
        }
        levels = p.max_orders
        bid = min(bid_ticks(centre - half_bid), ba - 1 if p.improve else bb)
        ask = max(ask_ticks(centre + half_ask), bb + 1 if p.improve else ba)
        if band == "flatten":  # only the reducing side is left in ``sides``: at the touch or better
            bid, ask, levels = max(bid, bb), min(ask, ba), 1
        threshold = self._threshold.at(mid)
        for s in (1, -1):
            if s not in sides:
                self._requote.clear(s)
        if threshold > 0:
            if 1 in sides:
                bid = self._requote.apply(1, bid, threshold, 1, ba - 1)
            if -1 in sides:
                ask = self._requote.apply(-1, ask, threshold, bb + 1, math.inf)
        if len(sides) == 2:
            bid, ask = apply_fee_floor(bid, ask, self._fee)
        spacing = max(1, round(self._spacing.at(mid)))
        lots = (view.instrument.min_size_lots, view.instrument.order_lots)
        bids = ladder(bid, 1, levels, spacing, size, p.level_decay, *lots) if 1 in sides else []
        asks = ladder(ask, -1, levels, spacing, size, p.level_decay, *lots) if -1 in sides else []
        bids = [b for b in bids if b.price >= self._lo_tick]
        if self._hi_tick is not None:
            asks = [a for a in asks if a.price <= self._hi_tick]
        return QuoteSet(bids, asks)


# -- spread-based strategies ----------------------------------------------------------------------


class SymmetricStrategy(QuotingStrategy):
    """Quotes ``spread`` (+ ``vol_mult`` x sigma) either side of the fair value, never crossing the
    book; with ``skew`` the centre moves against the position: ``fv - skew * half * q / max_inventory``.

    Symmetric with a skew is the skew strategy: the two differ only in their defaults (skew 0 and no
    inventory limit here, unless a skew is given).
    """

    name = "symmetric"
    Params = SpreadParams
    params: SpreadParams

    def on_start(self, instrument: Instrument) -> None:
        super().on_start(instrument)
        self._spread = TickDistance.of(self.params.spread, instrument.tick_size)

    def default_max_inventory_lots(self) -> float:
        """No limit unless the quotes skew: a skew is stated against the inventory limit."""
        return math.inf if self.params.skew == 0 else 10.0 * self.size_lots()

    def skew_band(self) -> float | None:
        return self.params.skew_band

    def half(self, mid: float, sigma: float | None) -> float:
        """The half-spread in ticks: base + volatility multiple, within the caps."""
        return half_spread(
            self._spread.at(mid),
            0.0 if sigma is None else sigma,
            self.params.vol_mult,
            None if self._min is None else self._min.at(mid),
            None if self._max is None else self._max.at(mid),
        )

    def plan(self, view: MarketView, fv: float, sigma: float | None, q: float) -> tuple[float, float] | str:
        assert view.mid is not None
        half = self.half(view.mid, sigma)
        p = self.params
        if p.skew == 0:
            return fv, half
        shift = skew_shift(
            view.position, self.max_inventory_lots(), p.skew, half, p.skew_band, p.skew_band_factor
        )
        return fv + shift, half


class SkewStrategy(SymmetricStrategy):
    """The symmetric quotes skewed by default (``skew`` 1), with an inventory limit of 10 orders.

    At ``|q| >= max_inventory`` the side that would add to the position is not quoted.
    """

    name = "skew"
    Params = SkewParams
    params: SkewParams

    def default_max_inventory_lots(self) -> float:
        return 10.0 * self.size_lots()


class LadderStrategy(SkewStrategy):
    """The skew strategy with several levels per side, each smaller than the one before."""

    name = "ladder"
    Params = LadderParams
    params: LadderParams


# -- model-based strategies -----------------------------------------------------------------------


class ModelStrategy(QuotingStrategy):
    """Shared by the closed-form models: sigma and the intensity from parameters or from the data."""

    Params = ModelParams
    params: ModelParams

    def needs_fit(self) -> bool:
        return self.params.k is None

    def intensity_estimator(self, instrument: Instrument) -> IntensityEstimator | None:
        if not self.needs_fit():
            return None
        return IntensityEstimator(instrument.tick_size, self.params.fit_window)

    def inputs(self, sigma_ticks: float | None) -> dict[str, float] | str:
        """sigma, A and k in price units, or what is still missing."""
        inst = self.instrument
        assert inst is not None, "on_start() sets the instrument"
        p = self.params
        sigma = (
            p.sigma if p.sigma is not None else None if sigma_ticks is None else sigma_ticks * inst.tick_size
        )
        if sigma is None:
            return "sigma"
        out = {"sigma": sigma}
        if self._intensity is not None:
            fitted = self._intensity.fit(self._now)
            if fitted is None:
                return "fill intensity fit"
            out["A"], out["k"] = fitted
        if p.k is not None:
            out["k"] = p.k
        self.last.update(out)
        return out

    def result(self, view: MarketView, bid: float, ask: float) -> tuple[float, float]:
        """Model (bid, ask) in price -> (centre, capped half-spread) in ticks."""
        assert view.mid is not None
        tick = view.instrument.tick_size
        return (bid + ask) / 2.0 / tick, self.capped((ask - bid) / 2.0 / tick, view.mid)


class AvellanedaStoikovStrategy(ModelStrategy):
    """Avellaneda-Stoikov (2008): reservation price and optimal spread.

    ``horizon`` a duration: the finite-horizon formulas with ``T - t`` held at that value (a rolling
    horizon, for a market maker that runs continuously); ``inf``: the infinite-horizon reservation
    bid/ask with ``q_max = max_inventory / size``.
    """

    name = "avellaneda-stoikov"
    Params = ASParams
    params: ASParams

    def on_start(self, instrument: Instrument) -> None:
        super().on_start(instrument)
        h = self.params.horizon
        self._tau = math.inf if h == "inf" else h / 1e9

    def plan(self, view: MarketView, fv: float, sigma: float | None, q: float) -> tuple[float, float] | str:
        x = self.inputs(sigma)
        if isinstance(x, str):
            return x
        gamma = self.params.gamma
        s = fv * view.instrument.tick_size
        if math.isinf(self._tau):
            q_max = self.max_inventory_lots() / self.size_lots()
            qc = max(-q_max, min(q_max, q))
            bid, ask = as_infinite_quotes(s, qc, gamma, x["sigma"], x["k"], q_max)
        else:
            bid, ask = as_quotes(s, q, gamma, x["sigma"], self._tau, x["k"])
        return self.result(view, bid, ask)


class GLFTStrategy(ModelStrategy):
    """Gueant-Lehalle-Fernandez-Tapia (2013) closed-form asymptotic quotes, ``delta = 1`` order."""

    name = "glft"
    Params = GLFTParams
    params: GLFTParams

    def needs_fit(self) -> bool:
        return self.params.k is None or self.params.A is None

    def plan(self, view: MarketView, fv: float, sigma: float | None, q: float) -> tuple[float, float] | str:
        x = self.inputs(sigma)
        if isinstance(x, str):
            return x
        p = self.params
        A = p.A if p.A is not None else x["A"]
        self.last.update(A=A)
        bid, ask = glft_quotes(fv * view.instrument.tick_size, q, p.gamma, x["sigma"], A, x["k"], p.xi)
        return self.result(view, bid, ask)


NAMED: tuple[type[QuotingStrategy], ...] = (
    SymmetricStrategy,
    SkewStrategy,
    LadderStrategy,
    AvellanedaStoikovStrategy,
    GLFTStrategy,
)
