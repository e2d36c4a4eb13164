"""The model world of Avellaneda and Stoikov (2008), "High-frequency trading in a limit order book".

Quantitative Finance 8(3), 217-224. The paper's section 3.3 simulates a dealer who quotes a bid and an
ask around a mid-price and compares two ways of placing them. Reproducing it checks that our reading of
the model gives the paper's result: skewing quotes by inventory cuts the spread of outcomes roughly in
half at a small cost in mean profit.

The model, on a grid ``t_i = i*dt`` up to ``T``:

* the mid moves ``+sigma*sqrt(dt)`` or ``-sigma*sqrt(dt)`` with equal probability each step;
* market sells hit our bid, market buys lift our ask, each a Poisson process with intensity
  ``lambda(delta) = A*exp(-k*delta)`` at distance ``delta`` from the mid; per step a side fills (one unit,
  at our quoted price) with probability ``lambda(delta)*dt`` capped at 1, at most once;
* quotes are set at ``t_i`` from the state then, fills and the mid move happen over ``[t_i, t_i + dt)``;
* final profit is ``cash + q_T * S_T``.

The strategies:

* **inventory** (the paper's optimal quotes, eqs. 29-30): reservation price
  ``r = s - q*gamma*sigma^2*(T-t)`` and quotes ``r -/+ spread/2`` with the full spread
  ``gamma*sigma^2*(T-t) + (2/gamma)*ln(1 + gamma/k)`` (independent of ``q``);
* **symmetric** (the paper's benchmark): the inventory strategy's spread averaged over the time grid,
  held constant and centred on the mid (the paper: "uses the average bid/ask spread of the inventory
  strategy over the time period, but centres it around the mid-price").

Both strategies see the same draws: one mid path and, per side and step, one uniform ``U`` that decides
whether that side fills (``U < lambda*dt``). ``U`` is drawn as ``E = -ln U``, an Exp(1) variable, and the
test is ``E > k*delta - ln(A*dt)``: the same event, capped at probability 1, and it cannot overflow when
a quote crosses the mid by a lot.

The paper's parameters: ``s0=100, T=1, sigma=2, dt=0.005, q0=0, A=140, k=1.5``, 1000 simulations.
Its tables, as published (Strategy, average spread, profit, std(profit), final q, std(final q)):

======  ==========  ==============  ======  ===========  =======  =============
gamma   strategy    average spread  profit  std(profit)  final q  std(final q)
======  ==========  ==============  ======  ===========  =======  =============
0.1     inventory   1.49            65.0    6.6          0.08     2.9
0.1     symmetric   1.49            68.4    12.7         0.26     8.4
0.01    inventory   1.35            68.6    8.7          0.12     5.1
0.01    symmetric   1.35            68.8    12.8         0.09     8.7
1       inventory   3.02            31.4    5.0          0.02     1.7
1       symmetric   3.02            44.0    11.0         0.00     5.1
======  ==========  ==============  ======  ===========  =======  =============

The average spread 1.49 at gamma=0.1 is ``(2/gamma)*ln(1 + gamma/k) = 1.29`` plus the time average of
``gamma*sigma^2*(T-t)``, which is ``0.1*4*0.5 = 0.2``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from quotewise.errors import ConfigError

STRATEGIES = ("inventory", "symmetric")


@dataclass(frozen=True)
class AS2008Params:
    """The model's parameters; the defaults are the paper's (section 3.3)."""

    s0: float = 100.0
    T: float = 1.0
    sigma: float = 2.0
    dt: float = 0.005
    A: float = 140.0
    k: float = 1.5
    gamma: float = 0.1
    q0: int = 0
    paths: int = 1000

    def __post_init__(self) -> None:
        for name in ("sigma", "dt", "T", "A", "k", "gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value}")
        if not math.isfinite(self.s0):
            raise ConfigError(f"s0 must be a finite number, got {self.s0}")
        if self.paths < 1:
            raise ConfigError(f"paths must be >= 1, got {self.paths}")
        if self.dt >= self.T:
            raise ConfigError(f"dt must be smaller than T, got dt={self.dt} and T={self.T}")
        steps = round(self.T / self.dt)
        if abs(steps * self.dt - self.T) > 1e-9 * self.T:
            raise ConfigError(
                f"T must be a whole number of dt steps, got T={self.T} and dt={self.dt} "
                f"(T/dt = {self.T / self.dt:.6g})"
            )

    @property
    def steps(self) -> int:
        """Number of quoting steps in ``[0, T)``."""
        return round(self.T / self.dt)


@dataclass(frozen=True)
class AS2008Paths:
    """Per-path outcomes; row ``i`` of ``profit`` and ``final_q`` is strategy ``STRATEGIES[i]``."""

    spread: np.ndarray
    symmetric_spread: float
    profit: np.ndarray
    final_q: np.ndarray


def simulate_paths(params: AS2008Params, seed: int) -> AS2008Paths:
    """Run both strategies on the same draws, all paths advancing together one time step at a time."""
    rng = np.random.default_rng(seed)
    p = params
    tau = p.T - p.dt * np.arange(p.steps)
    spread = p.gamma * p.sigma**2 * tau + (2.0 / p.gamma) * math.log1p(p.gamma / p.k)
    sym_half = float(spread.mean()) / 2.0
    move = p.sigma * math.sqrt(p.dt)
    log_a_dt = math.log(p.A * p.dt)

    mid = np.full(p.paths, float(p.s0))
    q = np.full((len(STRATEGIES), p.paths), float(p.q0))
    cash = np.zeros((len(STRATEGIES), p.paths))
    bid = np.empty_like(q)
    ask = np.empty_like(q)
    for i in range(p.steps):
        reservation = mid - q[0] * p.gamma * p.sigma**2 * tau[i]
        bid[0] = reservation - spread[i] / 2.0
        ask[0] = reservation + spread[i] / 2.0
        bid[1] = mid - sym_half
        ask[1] = mid + sym_half
        bid_draw = rng.standard_exponential(p.paths)
        ask_draw = rng.standard_exponential(p.paths)
        bought = bid_draw > p.k * (mid - bid) - log_a_dt
        sold = ask_draw > p.k * (ask - mid) - log_a_dt
        q += bought
        q -= sold
        cash += np.where(sold, ask, 0.0) - np.where(bought, bid, 0.0)
        mid += np.where(rng.random(p.paths) < 0.5, move, -move)
    return AS2008Paths(spread=spread, symmetric_spread=2.0 * sym_half, profit=cash + q * mid, final_q=q)


def simulate(params: AS2008Params, seed: int) -> dict:
    """Summary per strategy (population mean and std over paths), in the layout of the paper's tables."""
    out = simulate_paths(params, seed)
    spreads = {"inventory": float(out.spread.mean()), "symmetric": out.symmetric_spread}
    return {
        "model": "avellaneda-stoikov-2008",
        "seed": seed,
        "params": asdict(params),
        "steps": params.steps,
        "strategies": {
            name: {
                "mean_spread": spreads[name],
                "profit_mean": float(out.profit[i].mean()),
                "profit_std": float(out.profit[i].std()),
                "final_q_mean": float(out.final_q[i].mean()),
                "final_q_std": float(out.final_q[i].std()),
            }
            for i, name in enumerate(STRATEGIES)
        },
    }
