"""Closed-form market-making models: Avellaneda-Stoikov and Gueant-Lehalle-Fernandez-Tapia.

Units are the caller's, as long as they agree: prices (``s``) in one currency unit, ``sigma`` in
price per square-root second, ``k`` in 1/price, ``A`` in market orders per second, ``tau`` in
seconds, and inventory ``q`` in units of the traded quantity ``delta`` (the strategies use one
order size as the unit, so ``delta = 1`` and ``q = position / size``); ``gamma`` is then risk
aversion per (price x unit).

Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book", Quantitative Finance
8(3), with fill intensity ``lambda(delta) = A exp(-k delta)``:

- finite horizon: reservation price ``r = s - q gamma sigma^2 (T - t)`` and optimal
  spread ``gamma sigma^2 (T - t) + (2 / gamma) ln(1 + gamma / k)``, quoted symmetrically around r;
- infinite horizon (their discounted problem): value function ``v = -exp(-gamma x - gamma q s) /
  (omega - gamma^2 q^2 sigma^2 / 2)`` with ``omega = gamma^2 sigma^2 (q_max + 1)^2 / 2``; the
  reservation bid and ask solve ``v(x - r_b, s, q + 1) = v(x, s, q)`` and ``v(x + r_a, s, q - 1) =
  v(x, s, q)``:

      r_b = s + (1/gamma) ln[(2 omega - gamma^2 sigma^2 (q + 1)^2) / (2 omega - gamma^2 sigma^2 q^2)]
      r_a = s - (1/gamma) ln[(2 omega - gamma^2 sigma^2 (q - 1)^2) / (2 omega - gamma^2 sigma^2 q^2)]

  and the quotes are ``r_b - (1/gamma) ln(1 + gamma/k)`` and ``r_a + (1/gamma) ln(1 + gamma/k)``
  (the paper's relation between the indifference prices and the optimal distances).

Gueant, Lehalle & Fernandez-Tapia (2013), "Dealing with the inventory risk: a solution to the
market making problem", Mathematics and Financial Economics 7(4), asymptotic (large horizon)
approximation, in the general form of Gueant (2017), "Optimal market making", Applied Mathematical
Finance 24(2), with trade size ``delta`` and the two model variants indexed by ``xi``:

    delta_b(q) = c1 + (delta / 2) c2 + q c2        delta_a(q) = c1 + (delta / 2) c2 - q c2
    c1 = (1 / (xi delta)) ln(1 + xi delta / k)
    c2 = sqrt( gamma sigma^2 / (2 A delta k) * (1 + xi delta / k)^(k / (xi delta) + 1) )

so the half-spread is ``c1 + (delta / 2) c2`` and the skew ``q c2``. ``xi = gamma`` is the
paper's model A (the original 2013 formulas when ``delta = 1``); ``xi = 0`` is model B, the limit
``c1 = 1 / k`` and ``(1 + xi delta / k)^(k / (xi delta) + 1) -> e``.

The fill intensity is fitted from the depth market orders reach (:func:`fit_intensity`).
"""

from __future__ import annotations

import math

import numpy as np


def as_reservation_price(s: float, q: float, gamma: float, sigma: float, tau: float) -> float:
    """A-S finite-horizon reservation price ``s - q gamma sigma^2 (T - t)``."""
    return s - q * gamma * sigma * sigma * tau


def as_optimal_spread(gamma: float, sigma: float, tau: float, k: float) -> float:
    """A-S total spread ``gamma sigma^2 (T - t) + (2 / gamma) ln(1 + gamma / k)``."""
    return gamma * sigma * sigma * tau + (2.0 / gamma) * math.log1p(gamma / k)


def as_quotes(s: float, q: float, gamma: float, sigma: float, tau: float, k: float) -> tuple[float, float]:
    """A-S finite-horizon (bid, ask): the optimal spread centred on the reservation price."""
    r = as_reservation_price(s, q, gamma, sigma, tau)
    half = as_optimal_spread(gamma, sigma, tau, k) / 2.0
    return r - half, r + half


def as_infinite_reservation(
    s: float, q: float, gamma: float, sigma: float, q_max: float
) -> tuple[float, float]:
    """A-S infinite-horizon reservation (bid, ask), ``omega = gamma^2 sigma^2 (q_max + 1)^2 / 2``.

    Needs ``|q| <= q_max`` (then every log argument is positive); a zero ``sigma`` gives ``(s, s)``.
    """
    if abs(q) > q_max:
        raise ValueError(f"|q| = {abs(q)} exceeds q_max = {q_max}")
    g2s2 = gamma * gamma * sigma * sigma
    if g2s2 == 0:
        return s, s
    two_omega = g2s2 * (q_max + 1.0) ** 2
    base = two_omega - g2s2 * q * q
    r_bid = s + math.log((two_omega - g2s2 * (q + 1.0) ** 2) / base) / gamma
    r_ask = s - math.log((two_omega - g2s2 * (q - 1.0) ** 2) / base) / gamma
    return r_bid, r_ask


def as_infinite_quotes(
    s: float, q: float, gamma: float, sigma: float, k: float, q_max: float
) -> tuple[float, float]:
    """A-S infinite-horizon (bid, ask)."""
    r_bid, r_ask = as_infinite_reservation(s, q, gamma, sigma, q_max)
    d = math.log1p(gamma / k) / gamma
    return r_bid - d, r_ask + d


def glft_coefficients(
    gamma: float, sigma: float, A: float, k: float, xi: float | None = None, delta: float = 1.0
) -> tuple[float, float]:
    """GLFT ``(c1, c2)``: ``c1 = ln(1 + xi delta / k) / (xi delta)`` and the square-root term ``c2``."""
    xi = gamma if xi is None else xi
    if xi == 0:
        c1 = 1.0 / k
        power = math.e
    else:
        x = xi * delta / k
        c1 = math.log1p(x) / (xi * delta)
        power = math.exp((1.0 / x + 1.0) * math.log1p(x))
    c2 = math.sqrt(gamma * sigma * sigma / (2.0 * A * delta * k) * power)
    return c1, c2


def glft_quotes(
    s: float,
    q: float,
    gamma: float,
    sigma: float,
    A: float,
    k: float,
    xi: float | None = None,
    delta: float = 1.0,
) -> tuple[float, float]:
    """GLFT (bid, ask) = ``(s - delta_b(q), s + delta_a(q))``."""
    c1, c2 = glft_coefficients(gamma, sigma, A, k, xi, delta)
    half = c1 + delta / 2.0 * c2
    return s - (half + q * c2), s + (half - q * c2)


def tail_counts(depths: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """For each grid depth, how many of ``depths`` reach at least it (a quote there would be hit)."""
    d = np.sort(np.asarray(depths, np.float64))
    return (len(d) - np.searchsorted(d, grid, side="left")).astype(np.float64)


def fit_intensity(
    grid: np.ndarray, rates: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float] | None:
    """Fit ``lambda(delta) = A exp(-k delta)`` to arrival rates at depths ``grid``.

    Weighted least squares of ``ln rate = ln A - k delta`` over the points with a positive rate
    (``weights`` default to 1; pass the counts, whose log has variance ~ 1 / count). Returns
    ``(A, k)``, or None with fewer than two points or a non-decaying fit (``k <= 0``).
    """
    grid = np.asarray(grid, np.float64)
    rates = np.asarray(rates, np.float64)
    w = np.ones_like(rates) if weights is None else np.asarray(weights, np.float64)
    use = (rates > 0) & (w > 0)
    if int(use.sum()) < 2:
        return None
    x, y, w = grid[use], np.log(rates[use]), w[use]
    xm = float(np.dot(w, x) / w.sum())
    ym = float(np.dot(w, y) / w.sum())
    sxx = float(np.dot(w, (x - xm) ** 2))
    if sxx <= 0:
        return None
    slope = float(np.dot(w, (x - xm) * (y - ym))) / sxx
    k = -slope
    if k <= 0:
        return None
    return math.exp(ym + k * xm), k
