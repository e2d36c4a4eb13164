"""Adaptive quoting: components that move, resize or pull one side of any strategy's quotes, and the
built-in ``adaptive`` strategy (the ``skew`` strategy plus all of them).

Each component says, per side, how far to widen or tighten, whether to pause and how to scale the size
(a :class:`SideAdjust`); :func:`adjust_quotes` applies the combined adjustments to a quote set, so any
strategy can use them after its own pipeline:

- :class:`DirectionSignal` + :func:`direction_adjust`: a predicted next mid move (a ``mm model train``
  GBM, scored on this market's own events) widens, shrinks or pulls the side about to be run over
  and can tighten the other;
- :class:`ToxicityGuard`: sweeps pause, size outliers widen the side they hit; VPIN above its
  threshold widens and shrinks both (:mod:`quotewise.signals.toxicity`);
- :func:`depth_size`: the order size as a share of the queue we join;
- :class:`LimitScaler`: the inventory limit and size shrink with volatility and a streak of adverse
  markouts of our fills (:class:`~quotewise.signals.markouts.MarkoutTracker`);
- :class:`SessionClock`: before a session end, only the side that reduces the position is quoted.

Formulas, thresholds and sources: docs/models.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from quotewise.book import OrderBook, core
from quotewise.book.view import MAX_VIEW_EVENTS, MarketView
from quotewise.errors import ConfigError
from quotewise.model.instrument import Instrument
from quotewise.quoting.base import Quote, QuoteSet
from quotewise.quoting.components import TickDistance
from quotewise.quoting.named import SkewStrategy
from quotewise.quoting.params import AdaptiveParams, parse_clock
from quotewise.signals.flow import TP, TS, TV, trade_rows
from quotewise.signals.markouts import MarkoutTracker
from quotewise.signals.toxicity import SizeOutliers, SweepDetector, Vpin

if TYPE_CHECKING:
    from quotewise.model.response import Response

DAY_NS = 86_400 * 1_000_000_000
BOOK_MARGIN_TICKS = 2_000_000  # the model's private book spans the first mid +- this when no book is given


@dataclass
class SideAdjust:
    """What to do to one side: ticks to widen (negative: tighten), pause it, multiply its size."""

    widen: float = 0.0
    pause: bool = False
    size_mult: float = 1.0

    def add(self, other: SideAdjust) -> None:
        self.widen += other.widen
        self.pause = self.pause or other.pause
        self.size_mult *= other.size_mult


def sides() -> dict[int, SideAdjust]:
    return {1: SideAdjust(), -1: SideAdjust()}


# -- predicted direction -----------------------------------------------------------------------


def direction_adjust(
    p_up: float | None, confidence: float, widen: float, pause_at: float | None, tighten: float
) -> dict[int, SideAdjust]:
    """The response to ``P(next mid move up) = p_up``: nothing unless ``max(p, 1 - p) >= confidence``;
    then the side about to be run over (our ask when up is predicted) is widened by ``widen`` ticks
    times the strength ``s = (max(p, 1-p) - confidence) / (1 - confidence)`` in [0, 1], its size is
    scaled by ``1 - s / 2``, it is paused from ``max(p, 1-p) >= pause_at``, and the other side is
    tightened by ``tighten * s`` ticks (it is the side the move pays)."""
    out = sides()
    if p_up is None:
        return out
    sure = max(p_up, 1.0 - p_up)
    if sure < confidence:
        return out
    strength = min(1.0, (sure - confidence) / max(1.0 - confidence, 1e-12))
    run_over = -1 if p_up > 0.5 else 1
    out[run_over] = SideAdjust(
        widen * strength, pause_at is not None and sure >= pause_at, 1.0 - strength / 2
    )
    out[-run_over] = SideAdjust(-tighten * strength)
    return out


class DirectionSignal:
    """P(next mid move up) from a ``mm model train`` directory's GBM, on this market's own events.

    The features are computed by the same streaming pass the model was trained with
    (:func:`quotewise.intelligence.features.flow_pass`) on a private book, sampled at every group end;
    the probability is that of the latest closed group. When the view's events were cut (more than
    :data:`~quotewise.book.view.MAX_VIEW_EVENTS` since the last decision) or the replay's touch
    disagrees with the live book's, the private book is copied from the live one (``resyncs``
    counts it): a replay with events missing would leave levels on it that are gone, silently."""

    def __init__(self, directory: str | Path) -> None:
        from quotewise.intelligence.features import new_state
        from quotewise.intelligence.flow_model import load_model
        from quotewise.intelligence.gbm import gbm_arrays

        meta, arrays = load_model(Path(directory))
        if "gbm" not in arrays:
            raise ConfigError(f"model directory {directory} holds no GBM (train it with --model gbm)")
        self.gbm = gbm_arrays(arrays["gbm"])
        self.window_ns = int(meta["config"]["window_ns"])
        self.state, self.clock, self.ring_t, self.ring_x = new_state()
        self.book: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.p_up: float | None = None
        self.resyncs = 0

    def update(self, view: MarketView) -> float | None:
        from quotewise.intelligence.features import flow_pass
        from quotewise.intelligence.gbm import gbm_probability

        if self.book is None:
            if view.book is not None:
                self.book = core.new_book(view.book.lo_tick, view.book.hi_tick)
            else:
                mid = int(view.mid or 0)
                self.book = core.new_book(max(1, mid - BOOK_MARGIN_TICKS), mid + BOOK_MARGIN_TICKS)
        if view.events is None or not len(view.events):
            return self.p_up
        if len(view.events) >= MAX_VIEW_EVENTS and view.book is not None:
            self._resync(view)
            return self.p_up
        _, _, rows, _, _ = flow_pass(
            view.events,
            *self.book,
            self.state,
            self.clock,
            self.ring_t,
            self.ring_x,
            self.window_ns,
            1,
            False,
            False,
        )
        live_touch = (view.best_bid, view.bid_size, view.best_ask, view.ask_size)
        if view.book is not None and OrderBook.over(*self.book).touch() != live_touch:
            self._resync(view)
        if len(rows):
            self.p_up = float(gbm_probability(*self.gbm, rows[-1]))
        return self.p_up

    def _resync(self, view: MarketView) -> None:
        self.book = view.book.copy_arrays()
        self.resyncs += 1


# -- toxicity -----------------------------------------------------------------------------------


class ToxicityGuard:
    """Sweeps pause the side they ran over for ``sweep_ns``; a size outlier widens the side it hit by
    ``outlier_widen`` ticks for ``outlier_ns``; VPIN at or above its threshold widens both sides by
    ``vpin_widen`` ticks and scales their size by ``vpin_size``."""

    def __init__(
        self,
        sweep_ns: int | None,
        outlier_widen: float,
        outlier_ns: int,
        vpin: Vpin | None,
        vpin_widen: float,
        vpin_size: float,
    ) -> None:
        self.sweeps = SweepDetector() if sweep_ns else None
        self.sweep_ns = sweep_ns or 0
        self.outliers = SizeOutliers() if outlier_widen > 0 else None
        self.outlier_widen = outlier_widen
        self.outlier_ns = outlier_ns
        self.vpin = vpin
        self.vpin_widen = vpin_widen
        self.vpin_size = vpin_size
        self.paused_until = {1: -1, -1: -1}
        self.widened_until = {1: -1, -1: -1}

    def update(self, now: int, events: np.ndarray | None) -> None:
        if events is None or not len(events):
            return
        if self.sweeps is not None:
            for sign in self.sweeps.update(events)[1].tolist():
                # a buyer sweeping the asks runs over our ask (side -1)
                self.paused_until[-sign] = now + self.sweep_ns
        if self.outliers is None and self.vpin is None:
            return
        _, x = trade_rows(events)
        if self.outliers is not None:
            for sign in x[self.outliers.update(x[:, TV]), TS].tolist():
                self.widened_until[-int(sign)] = now + self.outlier_ns
        if self.vpin is not None:
            self.vpin.update(x[:, TP], x[:, TV])

    def adjust(self, now: int) -> dict[int, SideAdjust]:
        out = sides()
        toxic = self.vpin is not None and self.vpin.toxic
        for s in (1, -1):
            if now < self.paused_until[s]:
                out[s].pause = True
            if now < self.widened_until[s]:
                out[s].widen += self.outlier_widen
            if toxic:
                out[s].widen += self.vpin_widen
                out[s].size_mult *= self.vpin_size
        return out


# -- size and limits ----------------------------------------------------------------------------


def depth_size(touch_lots: int, share: float, base_lots: int, cap_mult: float) -> float:
    """Size multiplier so that an order is ``share`` of the queue it joins: ``share * touch / base``,
    within ``[1 / cap_mult, cap_mult]``: a thin book gets small orders, a deep one larger."""
    if touch_lots <= 0 or base_lots <= 0:
        return 1.0
    return min(cap_mult, max(1.0 / cap_mult, share * touch_lots / base_lots))


class LimitScaler:
    """Scales the inventory limit and the order size by ``min(1, vol_ref / sigma)`` (volatility in
    ticks per sqrt second) and by ``streak_factor`` once ``streak`` fills in a row had an adverse
    markout at ``horizon_ns`` (until one is not adverse)."""

    def __init__(self, vol_ref: float | None, streak: int | None, streak_factor: float, horizon_ns: int):
        self.vol_ref = vol_ref
        self.streak = streak
        self.streak_factor = streak_factor
        self.tracker = MarkoutTracker(horizon_ns)
        self.adverse_run = 0

    def on_fill(self, t: int, side: int, price: int) -> None:
        self.tracker.on_fill(t, side, float(price))

    def update(self, now: int, mid: float) -> None:
        for _, markout in self.tracker.update(now, mid):
            self.adverse_run = self.adverse_run + 1 if markout < 0 else 0

    def factor(self, sigma: float | None) -> float:
        f = 1.0
        if self.vol_ref is not None and sigma is not None and sigma > self.vol_ref:
            f *= self.vol_ref / sigma
        if self.streak is not None and self.adverse_run >= self.streak:
            f *= self.streak_factor
        return f


class SessionClock:
    """True within ``before_ns`` of the daily session end ``end_ns`` (nanoseconds after midnight UTC)."""

    def __init__(self, end_ns: int, before_ns: int) -> None:
        self.end_ns = end_ns % DAY_NS
        self.before_ns = before_ns

    def closing(self, now: int) -> bool:
        to_end = (self.end_ns - now % DAY_NS) % DAY_NS
        return 0 < to_end <= self.before_ns


# -- applying the adjustments --------------------------------------------------------------------


def _resize(q: Quote, mult: float, min_lots: int, step: int) -> Quote:
    if mult == 1.0:
        return q
    return Quote(q.price, max(min_lots, step * round(q.size * mult / step)))


def adjust_quotes(
    quotes: QuoteSet, adjust: dict[int, SideAdjust], view: MarketView, only_side: int | None = None
) -> QuoteSet:
    """Apply per-side adjustments: pause, widen (bids down, asks up; a negative widen tightens, never
    through the opposite touch nor our own other side) and resize to the size step. ``only_side``
    keeps that side alone (0: none)."""
    inst = view.instrument
    lots = (inst.min_size_lots, inst.order_lots)
    bb = view.best_bid if view.best_bid is not None else -math.inf
    ba = view.best_ask if view.best_ask is not None else math.inf
    out: dict[int, list[Quote]] = {}
    for s, levels in ((1, quotes.bids), (-1, quotes.asks)):
        a = adjust[s]
        if a.pause or (only_side is not None and s != only_side):
            out[s] = []
            continue
        shift = round(a.widen)
        if shift < 0 and levels:  # tighten no further than one tick inside the opposite touch
            limit = (ba - 1 - levels[0].price) if s == 1 else (levels[0].price - bb - 1)
            shift = -int(max(0, min(-shift, limit)))
        out[s] = [_resize(Quote(q.price - s * shift, q.size), a.size_mult, *lots) for q in levels]
    bids, asks = out[1], out[-1]
    if bids and asks and bids[0].price >= asks[0].price:  # tightening met our other side: undo it
        return adjust_quotes(
            quotes,
            {s: SideAdjust(max(0.0, a.widen), a.pause, a.size_mult) for s, a in adjust.items()},
            view,
            only_side,
        )
    bids = [q for q in bids if q.price > 0]
    return QuoteSet(bids, asks)


# -- the built-in strategy ---------------------------------------------------------------------


class AdaptiveStrategy(SkewStrategy):
    """The ``skew`` strategy with every adaptive component (``adaptive=false``: none of them).

    Python mode: the skew quotes come from the shared pipeline, then :func:`adjust_quotes` applies
    the predicted direction, toxicity, depth sizing, scaled limits and the session end."""

    name = "adaptive"
    Params = AdaptiveParams
    reads_model = True
    params: AdaptiveParams

    def on_start(self, instrument: Instrument) -> None:
        super().on_start(instrument)
        p = self.params
        tick = instrument.tick_size
        self.enabled = p.adaptive
        self.direction = DirectionSignal(p.model) if p.model is not None and self.enabled else None
        self._dir_widen = TickDistance.of(p.direction_widen, tick)
        self._dir_tighten = TickDistance.of(p.direction_tighten, tick)
        self._outlier = TickDistance.of(p.outlier_widen, tick)
        vpin = (
            None if p.vpin_bucket is None else Vpin(p.vpin_bucket / instrument.lot_size, 50, p.vpin_threshold)
        )
        self.guard = ToxicityGuard(p.sweep_pause, 1.0, p.outlier_for, vpin, 1.0, 0.5)
        vol_ref = None if p.vol_ref is None else p.vol_ref / tick
        self.limits = LimitScaler(vol_ref, p.loss_streak, 0.5, p.markout_horizon)
        self.clock = (
            None if p.session_end is None else SessionClock(parse_clock(p.session_end), p.flatten_before)
        )
        self.limit_factor = 1.0

    def max_inventory_lots(self) -> float:
        return super().max_inventory_lots() * getattr(self, "limit_factor", 1.0)

    def on_fill(self, fill: Response, view: MarketView) -> None:
        super().on_fill(fill, view)
        self.limits.on_fill(fill.exch_ts, fill.side, fill.price)

    def predict(self, view: MarketView) -> float | None:
        """P(next mid move up), or None without a model."""
        return None if self.direction is None else self.direction.update(view)

    def quotes(self, view: MarketView) -> QuoteSet:
        if not self.enabled or view.best_bid is None or view.best_ask is None:
            return super().quotes(view)
        mid = (view.best_bid + view.best_ask) / 2.0
        t = view.time
        self.guard.outlier_widen = self._outlier.at(mid)
        self.guard.update(t, view.events)
        self.limits.update(t, mid)
        self.limit_factor = self.limits.factor(self._vol.sigma)
        p_up = self.predict(view)
        base = super().quotes(view)
        p = self.params
        adjust = self.guard.adjust(t)
        for s, a in direction_adjust(
            p_up, p.confidence, self._dir_widen.at(mid), p.direction_pause, self._dir_tighten.at(mid)
        ).items():
            adjust[s].add(a)
        for s, touch in ((1, view.bid_size), (-1, view.ask_size)):
            adjust[s].size_mult *= self.limit_factor
            if p.depth_share is not None:
                adjust[s].size_mult *= depth_size(touch, p.depth_share, self.size_lots(), 4.0)
        only = None
        if self.clock is not None and self.clock.closing(t):
            only = -1 if view.position > 0 else 1 if view.position < 0 else 0
        self.last.update(
            p_up=p_up, limit_factor=self.limit_factor, vpin=self.guard.vpin and self.guard.vpin.value
        )
        return adjust_quotes(base, adjust, view, only)
