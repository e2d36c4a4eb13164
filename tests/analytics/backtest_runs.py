"""A real backtest run directory for the analytics tests: what the engine actually writes."""

from __future__ import annotations

from pathlib import Path

from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import synthetic
from quotewise.quoting.loader import make_strategy
from quotewise.sim.exchange import SimConfig


def synthetic_run(run_dir: Path) -> Path:
    """A real backtest of the skew strategy on the synthetic market (about 3 minutes, ~120 fills)."""
    strategy = make_strategy("skew", {"size": 2})
    run_backtest(
        synthetic(300_000, seed=1),
        strategy,
        SimConfig(queue="fifo", interval_ns=strategy.interval_ns),
        run_dir,
    )
    return run_dir
