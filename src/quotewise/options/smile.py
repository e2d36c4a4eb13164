"""A per-expiry volatility smile: raw SVI (Gatheral 2004) fitted to quotes by least squares.

Raw SVI gives the total implied variance ``w = sigma_iv^2 * T`` at log-moneyness ``k = log(K/F)``:

    w(k) = a + b * (rho * (k - m) + sqrt((k - m)^2 + sigma^2))

with the basic no-arbitrage constraints ``b >= 0``, ``|rho| < 1``, ``sigma > 0`` and
``a + b * sigma * sqrt(1 - rho^2) >= 0`` (the minimum of ``w`` is not negative). The fit searches an
unconstrained space mapped onto those constraints, so every fitted smile satisfies them:
``b = e^u``, ``rho = tanh(v)``, ``sigma = e^s`` and ``a = e^z - b * sigma * sqrt(1 - rho^2)``.
Levenberg-Marquardt from several starting points (each from a linear least-squares fit of
``a, b*rho, b`` at a guessed ``m, sigma``, for which ``w`` is linear) keeps the best fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quotewise.errors import ConfigError
from quotewise.options.pricing import implied_vol

MIN_QUOTES = 5  # raw SVI has five parameters


@dataclass(frozen=True)
class SVIParams:
    """Raw SVI parameters of one expiry's total-variance smile."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def __post_init__(self) -> None:
        values = (self.a, self.b, self.rho, self.m, self.sigma)
        if not all(math.isfinite(x) for x in values):
            raise ConfigError(f"SVI parameters must be finite, got {values}")
        if self.b < 0 or abs(self.rho) >= 1 or self.sigma <= 0:
            raise ConfigError(
                f"SVI needs b >= 0, |rho| < 1 and sigma > 0, "
                f"got b={self.b}, rho={self.rho}, sigma={self.sigma}"
            )
        if self.min_variance < -1e-12:
            raise ConfigError(f"SVI needs a + b*sigma*sqrt(1 - rho^2) >= 0, got {self.min_variance:g}")

    @property
    def min_variance(self) -> float:
        """The smallest total variance of the smile, ``a + b*sigma*sqrt(1 - rho^2)``."""
        return self.a + self.b * self.sigma * math.sqrt(1.0 - self.rho**2)

    def total_variance(self, k: float | np.ndarray) -> float | np.ndarray:
        x = np.asarray(k, dtype=float) - self.m
        w = self.a + self.b * (self.rho * x + np.sqrt(x * x + self.sigma**2))
        return float(w) if np.ndim(w) == 0 else w


@dataclass(frozen=True)
class Smile:
    """A fitted expiry: implied vol at any strike from the SVI total variance."""

    expiry: float
    forward: float
    params: SVIParams
    rmse_vol: float  # root mean square error of the fit, in implied-vol units

    def vol(self, strike: float | np.ndarray) -> float | np.ndarray:
        k = np.log(np.asarray(strike, dtype=float) / self.forward)
        v = np.sqrt(np.maximum(np.asarray(self.params.total_variance(k)), 0.0) / self.expiry)
        return float(v) if np.ndim(v) == 0 else v


def _to_params(theta: np.ndarray) -> tuple[float, float, float, float, float]:
    z, u, v, m, s = theta
    b, rho, sigma = math.exp(u), math.tanh(v), math.exp(s)
    return math.exp(z) - b * sigma * math.sqrt(1.0 - rho * rho), b, rho, float(m), sigma


def _from_params(a: float, b: float, rho: float, m: float, sigma: float) -> np.ndarray:
    min_w = a + b * sigma * math.sqrt(1.0 - rho * rho)
    return np.array([math.log(min_w), math.log(b), math.atanh(rho), m, math.log(sigma)])


_THETA_LIMIT = np.array([50.0, 50.0, 15.0, np.inf, 50.0])  # beyond: overflow, or |rho| rounding to 1


def _in_range(theta: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(theta)) and np.all(np.abs(theta) <= _THETA_LIMIT))


def _model(theta: np.ndarray, k: np.ndarray) -> np.ndarray:
    a, b, rho, m, sigma = _to_params(theta)
    x = k - m
    return a + b * (rho * x + np.sqrt(x * x + sigma * sigma))


def _levenberg_marquardt(theta: np.ndarray, k: np.ndarray, w: np.ndarray, sqrt_wt: np.ndarray) -> np.ndarray:
    """Minimise the weighted squared error of ``_model``; central-difference Jacobian (5 columns)."""

    def residual(t: np.ndarray) -> np.ndarray:
        if not _in_range(t):
            return np.full(k.size, np.inf)
        return sqrt_wt * (_model(t, k) - w)

    r = residual(theta)
    cost = float(r @ r)
    damping = 1e-3
    eye = np.eye(theta.size)
    for _ in range(300):
        jac = np.empty((k.size, theta.size))
        for j in range(theta.size):
            h = 1e-7 * max(1.0, abs(theta[j]))
            step = eye[j] * h
            jac[:, j] = (residual(theta + step) - residual(theta - step)) / (2.0 * h)
        if not np.all(np.isfinite(jac)):  # at the edge of the searched range: stop there
            break
        normal, grad = jac.T @ jac, jac.T @ r
        if np.max(np.abs(grad)) < 1e-18:
            break
        while True:
            try:
                delta = np.linalg.solve(normal + damping * (np.diag(np.diag(normal)) + 1e-12 * eye), -grad)
            except np.linalg.LinAlgError:
                delta = np.zeros_like(theta)
            candidate = theta + delta
            r_new = residual(candidate)
            new_cost = float(r_new @ r_new)
            if np.isfinite(new_cost) and new_cost < cost:
                improved = cost - new_cost
                theta, r, cost, damping = candidate, r_new, new_cost, max(damping / 3.0, 1e-12)
                break
            damping *= 4.0
            if damping > 1e12:
                return theta
        if improved <= 1e-14 * cost + 1e-30 or np.max(np.abs(delta)) < 1e-12:
            break
    return theta


def _starts(k: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
    """Starting points: for a few guesses of ``m, sigma``, the linear least-squares ``a, b*rho, b``
    nudged inside the constraints."""
    width = max(float(np.ptp(k)), 1e-3)
    starts = []
    for m in {float(k[np.argmin(w)]), float(np.median(k))}:
        for sigma in (0.05 * width, 0.2 * width, 0.6 * width):
            root = np.sqrt((k - m) ** 2 + sigma**2)
            design = np.column_stack([np.ones_like(k), k - m, root])
            (a, b_rho, b), *_ = np.linalg.lstsq(design, w, rcond=None)
            b = max(float(b), 1e-3 * float(np.mean(w)) / width + 1e-8)
            rho = float(np.clip(b_rho / b, -0.95, 0.95))
            min_w = max(a + b * sigma * math.sqrt(1 - rho * rho), 1e-3 * float(np.mean(w)) + 1e-12)
            starts.append(_from_params(min_w - b * sigma * math.sqrt(1 - rho * rho), b, rho, m, sigma))
    return starts


def _validated(name: str, values: Sequence[float] | np.ndarray, size: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if size is not None and arr.size != size:
        raise ConfigError(f"{name}: {arr.size} values for {size} strikes")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be finite numbers")
    return arr


def fit_svi(
    log_moneyness: Sequence[float] | np.ndarray,
    total_variance: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
) -> SVIParams:
    """Raw SVI parameters that best fit ``total_variance`` at ``log_moneyness`` in weighted least
    squares, within the no-arbitrage constraints (module docstring)."""
    k = _validated("log_moneyness", log_moneyness)
    w = _validated("total_variance", total_variance, k.size)
    wt = np.ones_like(k) if weights is None else _validated("weights", weights, k.size)
    if np.unique(k).size < MIN_QUOTES:
        raise ConfigError(f"an SVI fit needs quotes at {MIN_QUOTES} or more strikes, got {np.unique(k).size}")
    if np.any(w <= 0):
        raise ConfigError("total variances (implied vol^2 * T) must be > 0")
    if np.any(wt < 0) or not np.any(wt > 0):
        raise ConfigError("weights must be >= 0 and not all 0")
    sqrt_wt = np.sqrt(wt)
    best, best_cost = None, math.inf
    for start in _starts(k, w):
        theta = _levenberg_marquardt(start, k, w, sqrt_wt)
        err = sqrt_wt * (_model(theta, k) - w)
        cost = float(err @ err)
        if cost < best_cost:
            best, best_cost = theta, cost
    return SVIParams(*_to_params(best))


def fit_smile(
    strikes: Sequence[float] | np.ndarray,
    forward: float,
    expiry: float,
    *,
    vols: Sequence[float] | np.ndarray | None = None,
    prices: Sequence[float] | np.ndarray | None = None,
    rate: float = 0.0,
    kind: str | Sequence[str] = "call",
) -> Smile:
    """Fit one expiry's smile to quotes given as implied vols or as option prices (Black-76 on the
    forward, discounted at ``rate``; ``kind`` per quote or for all). Out-of-the-money quotes are the
    usual choice: their prices carry the most information about volatility."""
    if (vols is None) == (prices is None):
        raise ConfigError("give the quotes as vols or as prices (one of the two)")
    if not (math.isfinite(forward) and forward > 0 and math.isfinite(expiry) and expiry > 0):
        raise ConfigError(f"forward and expiry must be finite and > 0, got {forward} and {expiry}")
    k_strikes = _validated("strikes", strikes)
    if np.any(k_strikes <= 0):
        raise ConfigError("strikes must be > 0")
    if vols is not None:
        iv = _validated("vols", vols, k_strikes.size)
        if np.any(iv <= 0):
            raise ConfigError("implied vols must be > 0")
    else:
        px = _validated("prices", prices, k_strikes.size)
        kinds = [kind] * px.size if isinstance(kind, str) else list(kind)
        if len(kinds) != px.size:
            raise ConfigError(f"kind: {len(kinds)} values for {px.size} prices")
        iv = np.array(
            [
                implied_vol(p, forward, strike, expiry, rate, kind=c, model="black76")
                for p, strike, c in zip(px, k_strikes, kinds, strict=True)
            ]
        )
    params = fit_svi(np.log(k_strikes / forward), iv * iv * expiry)
    fitted = np.sqrt(np.maximum(params.total_variance(np.log(k_strikes / forward)), 0.0) / expiry)
    rmse = float(np.sqrt(np.mean((fitted - iv) ** 2)))
    return Smile(expiry=expiry, forward=forward, params=params, rmse_vol=rmse)
