"""What a model costs the compiled backtest: the bench's strategy with and without a GBM's skew.

The strategy and settings are bench/compare_hftbacktest.py's (the `skew` rule, 100 ms decisions,
1 ms latencies, risk-averse queue); the model run adds ``model=DIR`` (docs/intelligence.md: a
feature pass over the data samples the book on the decision grid, the GBM scores every sample, the
engine skews by the latest prediction it has received). JIT time is excluded (one warm-up run of
each); the two alternate run by run in this process and each figure is the median of ``--runs``.
Issue 18 asks that the run with a model keep at least half the speed of the run without.

    make bench                                   # writes the data files under runs/bench first
    .venv/bin/python bench/model_skew.py [--model DIR] [--runs 9] [DATA.npz ...]

Without ``--model``, a GBM is trained once (``mm model train --model gbm``, 1 s horizon) on Binance
spot BTCUSDT 2024-08-08 from ../shared/data into runs/bench/model-spot-0808. Prints one JSON object
per data file: the CPU, the medians and every run, the ratio (speed with / speed without) and the
fills of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import compare_hftbacktest as bench
from machine import cpu_name
from quotewise.backtest.runner import run_backtest
from quotewise.quoting.loader import make_strategy
from quotewise.sim.exchange import SimConfig

BENCH_DATA = Path("runs") / "bench"
DEFAULT_DATA = [BENCH_DATA / f for f in ("synth_10m.npz", "btcusdt_usdm.npz", "btcusdt_spot.npz")]
TRAIN_FILE = Path("..") / "shared" / "data" / "binance" / "spot" / "btcusdt_20240808.gz"
DEFAULT_MODEL = BENCH_DATA / "model-spot-0808"


def default_model() -> Path:
    """The bench's GBM, trained on first use."""
    if (DEFAULT_MODEL / "model.json").is_file():
        return DEFAULT_MODEL
    if not TRAIN_FILE.is_file():
        sys.exit(f"{TRAIN_FILE} is missing: pass --model DIR (a `mm model train` directory)")
    command = [sys.executable, "-m", "quotewise.cli", "model", "train", "--data", str(TRAIN_FILE)]
    command += ["--model", "gbm", "--horizon", "1s", "--out", str(DEFAULT_MODEL)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return DEFAULT_MODEL


def one_run(source, model: Path | None) -> tuple[float, int]:
    """Wall seconds (the engine's own, JIT excluded once warm) and fills of one run."""
    params = {
        "spread": "1tick",
        "size": bench.ORDER_QTY,
        "max_inventory": bench.MAX_POS,
        "improve": False,
        "skew": bench.SKEW_TICKS * bench.MAX_POS / bench.ORDER_QTY,
    }
    if model is not None:
        params["model"] = str(model)
    config = SimConfig(
        entry_latency_ns=bench.LATENCY_NS,
        response_latency_ns=bench.LATENCY_NS,
        queue="risk-averse",
        interval_ns=bench.STEP_NS,
        partial_fills=bench.PARTIAL,
        decision_origin_ns=int(next(iter(source.chunks()))["exch_ts"][0]),
    )
    summary = run_backtest(source, make_strategy("skew", params), config, out_dir=None).summary
    return summary["wall_seconds"], summary["fills"]


def measure(path: Path, model: Path, runs: int) -> dict:
    source = bench.our_source(path)
    one_run(source, None)
    one_run(source, model)
    without, with_model, fills = [], [], {}
    for _ in range(runs):
        seconds, fills["without"] = one_run(source, None)
        without.append(seconds)
        seconds, fills["with"] = one_run(source, model)
        with_model.append(seconds)
    plain, skewed = statistics.median(without), statistics.median(with_model)
    return {
        "cpu": cpu_name(),
        "data": path.name,
        "model": str(model),
        "runs": runs,
        "seconds_without_model": round(plain, 5),
        "seconds_with_model": round(skewed, 5),
        "speed_ratio_with_over_without": round(plain / skewed, 3),
        "fills_without_model": fills["without"],
        "fills_with_model": fills["with"],
        "all_seconds_without": [round(s, 5) for s in without],
        "all_seconds_with": [round(s, 5) for s in with_model],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="*", type=Path, help="bench .npz files (default: the three of make bench)")
    ap.add_argument("--model", type=Path, help="a `mm model train` directory (default: one on spot 08-08)")
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    files = args.data or DEFAULT_DATA
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        sys.exit(f"missing data: {', '.join(missing)} (make bench writes them)")
    model = args.model or default_model()
    for path in files:
        print(json.dumps(measure(path, model, args.runs)), flush=True)


if __name__ == "__main__":
    main()
