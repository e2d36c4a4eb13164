"""Black-Scholes (1973, with a continuous dividend yield, Merton 1973) and Black (1976) prices and
closed-form greeks of European calls and puts, and the implied volatility that reproduces a price.

Units: times in years, rates and volatilities per year, continuously compounded. ``vega`` is per 1.00
of volatility, ``rho`` per 1.00 of rate, ``theta`` per year and is dV/dt in calendar time: the change
of value as time passes with everything else fixed (negative for a long option without carry).
Every function broadcasts over numpy arrays; a scalar input gives float outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numba as nb
import numpy as np

from quotewise.errors import ConfigError

OptionKind = Literal["call", "put"]
Model = Literal["bs", "black76"]
KINDS = ("call", "put")
MODELS = ("bs", "black76")
_SQRT_2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)

ArrayLike = float | np.ndarray


@dataclass(frozen=True)
class Greeks:
    """A price and its sensitivities (see the module docstring for units and signs)."""

    price: ArrayLike
    delta: ArrayLike
    gamma: ArrayLike
    vega: ArrayLike
    theta: ArrayLike
    rho: ArrayLike

    def as_dict(self) -> dict[str, ArrayLike]:
        return {k: getattr(self, k) for k in ("price", "delta", "gamma", "vega", "theta", "rho")}


@nb.njit(cache=True)
def _erfc_flat(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = math.erfc(x[i])
    return out


def norm_cdf(x: ArrayLike) -> ArrayLike:
    """Standard normal CDF via erfc, accurate in the far left tail where 1 - N(-x) would cancel."""
    if np.ndim(x) == 0:
        return 0.5 * math.erfc(-float(x) / _SQRT_2)
    arr = np.ascontiguousarray(x, dtype=float)
    return 0.5 * _erfc_flat(-arr.ravel() / _SQRT_2).reshape(arr.shape)


def norm_pdf(x: ArrayLike) -> ArrayLike:
    return np.exp(-0.5 * np.square(x)) / _SQRT_2PI


def option_sign(kind: str) -> float:
    """+1 for a call, -1 for a put: the formulas below are written once for both."""
    if kind not in KINDS:
        raise ConfigError(f"option type must be call or put, got {kind!r}")
    return 1.0 if kind == "call" else -1.0


def _checked(name: str, value: ArrayLike, positive: bool) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr) | (arr <= 0 if positive else False)
    if np.any(bad):
        shown = arr[bad].flat[0] if arr.ndim else float(arr)
        rule = "a finite number > 0" if positive else "a finite number"
        raise ConfigError(f"{name} must be {rule}, got {shown:g}")
    return arr


def _out(x: np.ndarray) -> ArrayLike:
    return float(x) if np.ndim(x) == 0 else x


def black_scholes(
    spot: ArrayLike,
    strike: ArrayLike,
    expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend: ArrayLike = 0.0,
    kind: str = "call",
) -> Greeks:
    """Black-Scholes-Merton price and greeks of a European option on a spot paying a continuous
    dividend yield (or carry) ``dividend``; delta and gamma are with respect to the spot."""
    sign = option_sign(kind)
    s = _checked("spot", spot, True)
    k = _checked("strike", strike, True)
    t = _checked("expiry", expiry, True)
    v = _checked("vol", vol, True)
    r = _checked("rate", rate, False)
    q = _checked("dividend", dividend, False)
    sqrt_t = np.sqrt(t)
    d1 = (np.log(s / k) + (r - q + 0.5 * v * v) * t) / (v * sqrt_t)
    d2 = d1 - v * sqrt_t
    spot_df, strike_df = s * np.exp(-q * t), k * np.exp(-r * t)  # both legs valued today
    n_d1, n_d2 = norm_cdf(sign * d1), norm_cdf(sign * d2)
    pdf = norm_pdf(d1)
    price = sign * (spot_df * n_d1 - strike_df * n_d2)
    return Greeks(
        price=_out(price),
        delta=_out(sign * np.exp(-q * t) * n_d1),
        gamma=_out(np.exp(-q * t) * pdf / (s * v * sqrt_t)),
        vega=_out(spot_df * pdf * sqrt_t),
        theta=_out(-spot_df * pdf * v / (2.0 * sqrt_t) + sign * (q * spot_df * n_d1 - r * strike_df * n_d2)),
        rho=_out(sign * t * strike_df * n_d2),
    )


def black76(
    forward: ArrayLike,
    strike: ArrayLike,
    expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    kind: str = "call",
) -> Greeks:
    """Black (1976) price and greeks of a European option on a forward (or future) ``forward``,
    discounted at ``rate``. Delta and gamma are with respect to the forward; theta and rho hold the
    forward fixed, so rho is ``-expiry * price``.

    It is Black-Scholes with the dividend yield equal to the rate (``S e^{-qT} = F e^{-rT}``), which
    gives the same price, delta, gamma, vega and theta; only rho differs, because moving the rate
    no longer moves the underlying's carry."""
    bs = black_scholes(forward, strike, expiry, vol, rate, rate, kind)
    t = np.asarray(expiry, dtype=float)
    return Greeks(bs.price, bs.delta, bs.gamma, bs.vega, bs.theta, _out(-t * np.asarray(bs.price)))


def greeks(
    model: str,
    underlying: ArrayLike,
    strike: ArrayLike,
    expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend: ArrayLike = 0.0,
    kind: str = "call",
) -> Greeks:
    """``black_scholes`` (underlying = spot) or ``black76`` (underlying = forward, no dividend)."""
    if model == "bs":
        return black_scholes(underlying, strike, expiry, vol, rate, dividend, kind)
    if model == "black76":
        if np.any(np.asarray(dividend) != 0):
            raise ConfigError("black76 prices an option on a forward: a dividend yield does not apply")
        return black76(underlying, strike, expiry, vol, rate, kind)
    raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {model!r}")


def price_bounds(
    underlying: float,
    strike: float,
    expiry: float,
    rate: float = 0.0,
    dividend: float = 0.0,
    kind: str = "call",
    model: str = "bs",
) -> tuple[float, float]:
    """The no-arbitrage range of a European option's price: its discounted intrinsic value (the
    price at zero volatility) and its value at infinite volatility (the discounted underlying for a
    call, the discounted strike for a put)."""
    sign = option_sign(kind)
    carry = rate if model == "black76" else dividend
    underlying_df = underlying * math.exp(-carry * expiry)
    strike_df = strike * math.exp(-rate * expiry)
    lower = max(sign * (underlying_df - strike_df), 0.0)
    upper = underlying_df if sign > 0 else strike_df
    return lower, upper


def implied_vol(
    price: float,
    underlying: float,
    strike: float,
    expiry: float,
    rate: float = 0.0,
    dividend: float = 0.0,
    kind: str = "call",
    model: str = "bs",
    tol: float = 1e-12,
) -> float:
    """The volatility at which ``model`` gives ``price``.

    The price is increasing in volatility from the lower no-arbitrage bound (vol 0) to the upper one
    (vol infinite), so a price strictly between them has exactly one implied vol. Newton steps
    converge fast near the answer; every step also narrows a bracket, and a Newton step that would
    leave it (far from the answer, or where vega vanishes deep out of the money) is replaced by
    bisection, so the solver cannot diverge. A price outside the bounds is refused."""
    greeks(model, underlying, strike, expiry, 0.2, rate, dividend, kind)  # checks every input
    if not math.isfinite(price):
        raise ConfigError(f"price must be a finite number, got {price}")
    lower, upper = price_bounds(underlying, strike, expiry, rate, dividend, kind, model)
    if not lower < price < upper:
        raise ConfigError(
            f"price {price:g} is outside the no-arbitrage bounds of this {kind}: it must lie strictly "
            f"between {lower:.10g} (discounted intrinsic value, vol 0) and {upper:.10g} (vol infinite)"
        )

    def value(vol: float) -> Greeks:
        return greeks(model, underlying, strike, expiry, vol, rate, dividend, kind)

    lo, hi = 0.0, 1.0
    while value(hi).price < price:
        lo, hi = hi, 2.0 * hi
        if hi > 1e6:
            raise ConfigError(f"price {price:g} is too close to its upper bound {upper:.10g} to imply a vol")
    carry = rate if model == "black76" else dividend
    underlying_df = underlying * math.exp(-carry * expiry)
    guess = math.sqrt(2.0 * math.pi / expiry) * price / max(underlying_df, 1e-300)  # Brenner-Subrahmanyam
    vol = guess if lo < guess < hi else 0.5 * (lo + hi)
    target_tol = tol * price  # relative: a price of 1e-30 still has a vol to find
    for _ in range(200):
        g = value(vol)
        diff = float(g.price) - price
        if abs(diff) <= target_tol:
            return vol
        if diff > 0:
            hi = vol
        else:
            lo = vol
        vega = float(g.vega)
        step = vol - diff / vega if vega > 0 else math.nan
        vol = step if lo < step < hi else 0.5 * (lo + hi)
        if hi - lo <= 1e-15 * hi:
            return vol
    return vol
