"""Every named quoting model on real data: LOBSTER AMZN (L3, one day) and Binance USD-M BTCUSDT (L2).

Each model runs through :func:`quotewise.backtest.runner.run_backtest` with the parameters in
``RUNS`` (printed with the results). The Sharpe ratio is that of the per-minute P&L: the
mark-to-market P&L (``pnl`` in equity.parquet) at the last decision of each minute, differenced,
``mean / std * sqrt(525600)`` (every minute of a year, the 24/7 crypto convention, also applied to
the equity day, so the two are comparable with each other and not with a 252-day equity Sharpe).
Minutes without a decision (no market events) contribute nothing. The BTCUSDT file holds under six
minutes, so its Sharpe rests on a handful of samples.

    .venv/bin/python bench/compare_models.py [--data-dir ../shared/data] [--out runs/compare-models]

Prints a markdown table (the one in docs/models.md).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import DataSource, from_path
from quotewise.parsing import parse_fee
from quotewise.quoting.loader import make_strategy
from quotewise.sim.exchange import SimConfig

MINUTES_PER_YEAR = 525_600

DATASETS: dict[str, dict[str, object]] = {
    "AMZN": {
        "path": ("lobster", "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"),
        "queue": "fifo",
        "fees": ("0bp", "0bp"),
        "common": {"size": 100, "max_inventory": 500},
    },
    "BTCUSDT": {
        "path": ("binance", "usdm", "btcusdt_20240808.gz"),
        "queue": "risk-averse",
        "fees": ("-0.5bp", "7bp"),
        "common": {"size": 0.01, "max_inventory": 0.1},
    },
}

FLOW = {"fv_method": "microprice", "ofi_skew": 1.0, "markout_widen": 1.0}

# Per data set: (label, model, parameters on top of the data set's common ones). Model parameters
# are in price units and q in order sizes (docs/models.md); sigma, A and k are estimated online.
# gamma is set so that one order of inventory moves the quotes about as far in both models: ~1.5
# ticks on AMZN, ~1.5 USD on BTCUSDT (A-S: gamma sigma^2 (T - t); GLFT: c2 with the fitted A, k).
RUNS: dict[str, list[tuple[str, str, dict[str, object]]]] = {
    "AMZN": [
        ("symmetric", "symmetric", {"spread": "3ticks"}),
        ("skew", "skew", {"spread": "3ticks", "skew": 1.0}),
        ("skew + flow", "skew", {"spread": "3ticks", "skew": 1.0, **FLOW}),
        ("ladder", "ladder", {"spread": "3ticks", "skew": 1.0, "max_orders": 3, "level_spacing": "2ticks"}),
        ("avellaneda-stoikov", "avellaneda-stoikov", {"gamma": 0.5, "horizon": "60s"}),
        ("glft", "glft", {"gamma": 40.0}),
    ],
    "BTCUSDT": [
        ("symmetric", "symmetric", {"spread": "0.5ticks"}),
        ("skew", "skew", {"spread": "0.5ticks", "skew": 1.0}),
        ("skew + flow", "skew", {"spread": "0.5ticks", "skew": 1.0, **FLOW}),
        ("ladder", "ladder", {"spread": "0.5ticks", "skew": 1.0, "max_orders": 3, "level_spacing": "1tick"}),
        ("avellaneda-stoikov", "avellaneda-stoikov", {"gamma": 0.0003, "horizon": "60s"}),
        ("glft", "glft", {"gamma": 0.05}),
    ],
}


def minute_sharpe(equity_path: Path) -> tuple[float, int]:
    """Annualised Sharpe of the per-minute P&L, and how many minutes it rests on."""
    eq = pq.read_table(equity_path, columns=["ts", "pnl"]).to_pandas()
    if eq.empty:
        return math.nan, 0
    minute = eq["ts"].to_numpy() // 60_000_000_000
    last = eq.groupby(minute)["pnl"].last().to_numpy()
    per_minute = np.diff(np.concatenate(([0.0], last)))
    sd = per_minute.std(ddof=1) if len(per_minute) > 1 else 0.0
    if sd <= 0:
        return math.nan, len(per_minute)
    return float(per_minute.mean() / sd * math.sqrt(MINUTES_PER_YEAR)), len(per_minute)


def load(name: str, data_dir: Path) -> DataSource:
    spec = DATASETS[name]
    src = from_path(data_dir.joinpath(*spec["path"]))  # type: ignore[arg-type]
    maker, taker = spec["fees"]  # type: ignore[misc]
    src.instrument = src.instrument.model_copy(
        update={"maker_fee": parse_fee(maker, "maker"), "taker_fee": parse_fee(taker, "taker")}
    )
    return src


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
    parser.add_argument("--out", type=Path, default=Path("runs") / "compare-models")
    args = parser.parse_args()

    rows = []
    for data_name, spec in DATASETS.items():
        src = load(data_name, args.data_dir)
        for label, model, extra in RUNS[data_name]:
            params = {**spec["common"], **extra}  # type: ignore[dict-item]
            strategy = make_strategy(model, params)
            config = SimConfig(queue=spec["queue"], interval_ns=strategy.interval_ns)  # type: ignore[arg-type]
            out_dir = args.out / data_name / label.replace(" + ", "-")
            result = run_backtest(src, strategy, config, out_dir, report=False)
            sharpe, minutes = minute_sharpe(out_dir / "equity.parquet")
            rows.append((data_name, label, model, result.summary, sharpe, minutes, params, strategy.last))

    print(
        "| data | run | P&L | fees | fills | max abs position | Sharpe | minutes | strategy and parameters |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for data_name, label, model, s, sharpe, minutes, params, _ in rows:
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        print(
            f"| {data_name} | {label} | {s['total_pnl']:,.2f} | {s['fees']:,.2f} | {s['fills']:,} | "
            f"{s['max_abs_position']:g} | {sharpe:,.1f} | {minutes} | `{model}`: {shown} |"
        )
    print()
    print("Estimated online by the end of each model run (price units):")
    print()
    for data_name, label, _, _, _, _, _, last in rows:
        if last.get("A") is not None:
            print(f"- {data_name} {label}: " + ", ".join(f"{k}={last[k]:.4g}" for k in ("sigma", "A", "k")))


if __name__ == "__main__":
    main()
