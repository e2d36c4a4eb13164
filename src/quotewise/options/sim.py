"""The model world of ``mm sim options``: what delta hedging at the implied vol earns when the market
realises another vol, and what an option market maker earns quoting in it.

The underlying follows geometric Brownian motion with the realised vol ``sigma_r`` and drift
``drift`` (default: the rate); time runs on ``steps`` equal steps ``dt`` up to the option's expiry.

**Hedging experiment** (per realised vol, all on the same normal draws). Buy one option at its
Black-Scholes price at the implied vol ``sigma_i`` and, at the start of every step, hold
``-delta(sigma_i)`` units of the underlying; cash earns the rate. At expiry take the payoff and close
the hedge. The P&L (valued at expiry) is compared with the gamma-P&L identity (Wilmott, "Paul Wilmott
on Quantitative Finance", ch. 12; Ahmad and Wilmott 2005): hedged continuously at ``sigma_i``,

    P&L = integral over [0, T] of e^{r(T-t)} * 1/2 * Gamma_i * S^2 * (sigma_r^2 - sigma_i^2) dt,

``Gamma_i`` the Black-Scholes gamma at ``sigma_i``. ``theory`` is that integral computed per path
from the path's own ``S`` and ``Gamma_i`` (the same left-point grid the hedge uses) and averaged; the
discrete hedge adds a zero-mean error of order ``sqrt(dt)`` per path. ``closed_form`` is
``e^{rT} * (BS(sigma_r) - BS(sigma_i))``: by Ito's lemma applied to ``e^{-rt} BS(sigma_i)`` under the
realised dynamics with drift ``r``, the expectation of the integral equals it exactly, so the two agree
when ``drift`` is the rate (with another drift only ``theory`` is the mean).

**Market maker.** On the same paths an :class:`~quotewise.options.market_maker.OptionMarketMaker`
quotes the option around its price at ``sigma_i``. Buyers and sellers arrive as Poisson processes of
rate ``flow`` per day each; a side's one-contract quote is hit in a step with probability
``1 - exp(-flow * dt)`` (the first arrival takes it, the quote is renewed next step). Its P&L splits
into ``spread_capture`` (the distance of each fill from the model price, valued at expiry) and
``inventory_pnl`` (everything else: the hedged options and the hedge, marked to expiry).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from quotewise.errors import ConfigError
from quotewise.options.expiry import DAYS_PER_YEAR
from quotewise.options.market_maker import MarketMakerConfig, OptionBook, OptionMarketMaker, OptionSpec
from quotewise.options.pricing import Greeks, black_scholes, option_sign


@dataclass(frozen=True)
class OptionsSimParams:
    """The world's settings; the defaults are a 30-day at-the-money call at 50% implied vol."""

    spot: float = 100.0
    strike: float | None = None  # None: at the money (the spot)
    expiry: float = 30.0 / DAYS_PER_YEAR
    implied: float = 0.5
    realised: tuple[float, ...] = (0.6, 0.5, 0.4)
    rate: float = 0.0
    drift: float | None = None  # None: the rate
    kind: str = "call"
    paths: int = 2000
    steps: int = 720  # hourly over 30 days
    flow: float = 5.0  # option buyers (and sellers) per day
    vol_spread: float = 0.02  # the maker's bid-ask width, vol points
    max_contracts: float = 10.0  # greeks limits: this many times one contract's initial |greeks|
    hedge_band: float = 1.0  # the maker hedges when |delta| exceeds this (underlying units)

    def __post_init__(self) -> None:
        option_sign(self.kind)
        positive = ("spot", "expiry", "implied", "flow", "max_contracts", "hedge_band")
        for name in positive + (("strike",) if self.strike is not None else ()):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value}")
        for name in ("rate", "drift"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value}")
        if not self.realised:
            raise ConfigError("give at least one realised vol")
        for vol in self.realised:
            if not (math.isfinite(vol) and vol > 0):
                raise ConfigError(f"realised vol must be a finite number > 0, got {vol}")
        if self.paths < 2 or self.steps < 1:
            raise ConfigError(f"paths must be >= 2 and steps >= 1, got {self.paths} and {self.steps}")
        if not 0 <= self.vol_spread < 2 * self.implied:
            raise ConfigError(
                f"vol_spread must be >= 0 and below twice the implied vol, got {self.vol_spread}"
            )

    @property
    def option(self) -> OptionSpec:
        return OptionSpec(self.spot if self.strike is None else self.strike, self.expiry, self.kind)

    @property
    def mu(self) -> float:
        return self.rate if self.drift is None else self.drift


def _stats(x: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error."""
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def _paths(p: OptionsSimParams, sigma_r: float, normals: np.ndarray) -> np.ndarray:
    """Spot at the start of each step and at expiry: shape (steps + 1, paths)."""
    dt = p.expiry / p.steps
    log_steps = (p.mu - 0.5 * sigma_r**2) * dt + sigma_r * math.sqrt(dt) * normals
    log_path = np.vstack([np.zeros((1, p.paths)), np.cumsum(log_steps, axis=0)])
    return p.spot * np.exp(log_path)


def hedge_long_option(
    p: OptionsSimParams, sigma_r: float, spots: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per path: the P&L at expiry of one option bought at the implied vol and delta-hedged at it
    every step, and the gamma-P&L integral along the same path."""
    option, dt, r = p.option, p.expiry / p.steps, p.rate
    held = np.zeros(p.paths)  # units of the underlying held (negative: short)
    cash = np.zeros(p.paths)
    theory = np.zeros(p.paths)
    for i in range(p.steps):
        t = i * dt
        spot = spots[i]
        g = black_scholes(spot, option.strike, p.expiry - t, p.implied, r, kind=option.kind)
        if i == 0:
            cash -= g.price  # the option's premium
        cash -= (-g.delta - held) * spot
        held = -np.asarray(g.delta)
        growth = math.exp(r * (p.expiry - t))
        theory += growth * 0.5 * g.gamma * spot**2 * (sigma_r**2 - p.implied**2) * dt
        cash *= math.exp(r * dt)
    final = spots[-1]
    return option.payoff(final) + held * final + cash, theory


def default_maker(p: OptionsSimParams) -> MarketMakerConfig:
    """Limits at ``max_contracts`` times one contract's greeks at the start (delta: that many
    underlying units), hedge band as set."""
    g = black_scholes(p.spot, p.option.strike, p.expiry, p.implied, p.rate, kind=p.kind)
    n = p.max_contracts
    return MarketMakerConfig(
        vol_spread=p.vol_spread,
        size=1.0,
        max_delta=n,
        max_gamma=n * abs(g.gamma),
        max_vega=n * abs(g.vega),
        hedge_band=p.hedge_band,
    )


def run_market_maker(
    p: OptionsSimParams, spots: np.ndarray, fills: np.ndarray, config: MarketMakerConfig
) -> dict[str, np.ndarray]:
    """Per path: the maker's total P&L, its spread capture, fills, hedge trades and steps with a side
    withheld. ``fills[0]``/``fills[1]`` are uniforms deciding whether a seller/buyer arrives."""
    option, dt, r = p.option, p.expiry / p.steps, p.rate
    maker = OptionMarketMaker(option, p.implied, config, rate=r)
    book = OptionBook.empty(p.paths)
    spread = np.zeros(p.paths)
    counts = {name: np.zeros(p.paths) for name in ("fills", "hedges", "withheld")}
    hit = 1.0 - math.exp(-p.flow * DAYS_PER_YEAR * dt)  # at least one arrival in the step
    for i in range(p.steps):
        t, spot = i * dt, spots[i]
        q = maker.quote(spot, p.expiry - t, book)
        bought = (fills[0, i] < hit) & q.bid_on  # a seller hits our bid
        sold = (fills[1, i] < hit) & q.ask_on  # a buyer lifts our ask
        size = config.size
        book.options += size * (bought.astype(float) - sold)
        book.cash += size * (np.where(sold, q.ask, 0.0) - np.where(bought, q.bid, 0.0))
        edge = np.where(sold, q.ask - q.mid, 0.0) + np.where(bought, q.mid - q.bid, 0.0)
        spread += size * edge * math.exp(r * (p.expiry - t))
        trade = maker.hedge(spot, book, np.asarray(q.greeks.delta))
        counts["fills"] += bought.astype(float) + sold
        counts["hedges"] += trade != 0
        counts["withheld"] += ~(q.bid_on & q.ask_on)
        book.cash *= math.exp(r * dt)
    final = spots[-1]
    total = book.cash + book.options * option.payoff(final) + book.shares * final
    return {"total": total, "spread": spread, "final_contracts": book.options, **counts}


def simulate(p: OptionsSimParams, seed: int) -> dict:
    """Every realised vol on the same draws: the hedging experiment and the market maker."""
    rng = np.random.default_rng(seed)
    normals = rng.standard_normal((p.steps, p.paths))
    arrivals = rng.random((2, p.steps, p.paths))
    option, growth = p.option, math.exp(p.rate * p.expiry)
    at_implied = black_scholes(p.spot, option.strike, p.expiry, p.implied, p.rate, kind=p.kind)
    maker = default_maker(p)
    gaps, makers = [], []
    for sigma_r in p.realised:
        spots = _paths(p, sigma_r, normals)
        pnl, theory = hedge_long_option(p, sigma_r, spots)
        at_realised = black_scholes(p.spot, option.strike, p.expiry, sigma_r, p.rate, kind=p.kind)
        mean_pnl, stderr = _stats(pnl)
        theory_mean, theory_stderr = _stats(theory)
        gaps.append(
            {
                "realised": sigma_r,
                "implied": p.implied,
                "mean_pnl": mean_pnl,
                "stderr": stderr,
                "theory": theory_mean,
                "theory_stderr": theory_stderr,
                "closed_form": growth * (float(at_realised.price) - float(at_implied.price)),
                "gap_stderr": _stats(pnl - theory)[1],
                "pnl_std": float(pnl.std(ddof=1)),
            }
        )
        mm = run_market_maker(p, spots, arrivals, maker)
        total, total_err = _stats(mm["total"])
        spread, spread_err = _stats(mm["spread"])
        inventory, inventory_err = _stats(mm["total"] - mm["spread"])
        makers.append(
            {
                "realised": sigma_r,
                "mean_pnl": total,
                "stderr": total_err,
                "spread_capture": spread,
                "spread_capture_stderr": spread_err,
                "inventory_pnl": inventory,
                "inventory_stderr": inventory_err,
                "fills_per_path": float(mm["fills"].mean()),
                "hedges_per_path": float(mm["hedges"].mean()),
                "steps_with_a_side_withheld": float(mm["withheld"].mean()),
                "mean_abs_final_contracts": float(np.abs(mm["final_contracts"]).mean()),
            }
        )
    settings = asdict(p)
    settings.update(strike=option.strike, drift=p.mu, realised=list(p.realised))
    return {
        "model": "delta-hedged-option-gbm",
        "seed": seed,
        "settings": settings,
        "option": {"price_at_implied": float(at_implied.price), **_greeks(at_implied)},
        "gaps": gaps,
        "market_maker": {
            "config": asdict(maker),
            "flow_per_day": p.flow,
            "fill_probability_per_step": 1.0 - math.exp(-p.flow * DAYS_PER_YEAR * p.expiry / p.steps),
            "results": makers,
        },
    }


def _greeks(g: Greeks) -> dict[str, float]:
    return {k: float(v) for k, v in g.as_dict().items() if k != "price"}


def parse_vols(values: list[str], what: str = "--realised") -> tuple[float, ...]:
    """Volatilities from repeated flags and/or comma lists: ``["0.6,0.5", "0.4"]`` -> (0.6, 0.5, 0.4)."""
    vols = []
    for text in (part.strip() for value in values for part in str(value).split(",")):
        try:
            vol = float(text)
        except ValueError as exc:
            raise ConfigError(f"{what}: {text!r} is not a number") from exc
        if not (math.isfinite(vol) and vol > 0):
            raise ConfigError(f"{what}: a vol must be a finite number > 0, got {text!r}")
        vols.append(vol)
    return tuple(vols)
