"""Backtest throughput and peak memory on the shared real data and the synthetic market.

Each case runs in a fresh child process (so peak RSS is its own) after a small warm-up run that
compiles the engine; the figures exclude reading/converting the raw file, which is timed apart.

    .venv/bin/python bench/backtest_speed.py            # every case, one JSON line each
    .venv/bin/python bench/backtest_speed.py --case synthetic-10m
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CASES = {
    "lobster-amzn-l5": ("lobster/LOBSTER_SampleFile_AMZN_2012-06-21_5.zip", {}),
    "lobster-goog-l10": ("lobster/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip", {}),
    "binance-usdm-btcusdt": ("binance/usdm/btcusdt_20240808.gz", {"size": 0.01}),
    "binance-coinm-btcusd-2files": (
        "binance/cm/btcusd_perp_20240808.gz,binance/cm/btcusd_perp_20240809.gz",
        {},
    ),
    "binance-spot-btcusdt-2files": (
        "binance/spot/btcusdt_20240808.gz,binance/spot/btcusdt_20240809.gz",
        {"size": 0.001},
    ),
    "synthetic-10m": (None, {}),
}


def run_case(name: str) -> dict:
    from quotewise.backtest import source as sources
    from quotewise.backtest.runner import run_backtest
    from quotewise.data.convert import load_source
    from quotewise.quoting.loader import make_strategy
    from quotewise.sim.exchange import SimConfig

    def backtest(src, params):
        strat = make_strategy("skew", params)
        queue = "fifo" if src.l3 else "risk-averse"
        return run_backtest(src, strat, SimConfig(queue=queue, interval_ns=strat.interval_ns), out_dir=None)

    backtest(sources.synthetic(50_000, seed=1), {})  # compile everything first
    rel, params = CASES[name]
    t0 = time.perf_counter()
    if rel is None:
        src = sources.synthetic(10_000_000, seed=1)
    else:
        paths = [SHARED / p for p in rel.split(",")]
        fmt = "binance" if paths[0].suffix == ".gz" else None
        data = load_source(paths if len(paths) > 1 else paths[0], fmt)
        src = sources.from_event_data(data, name)
    read_s = time.perf_counter() - t0
    result = backtest(src, params).summary
    return {
        "case": name,
        "events": result["events"],
        "read_seconds": round(read_s, 3),
        "backtest_seconds": round(result["wall_seconds"], 3),
        "events_per_second": round(result["events_per_second"]),
        "fills": result["fills"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "note": "synthetic: generation is inside the backtest time (streamed in 1M-event chunks)"
        if rel is None
        else "raw file read into memory first (read_seconds), then replayed",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES))
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)), flush=True)
        return
    for name, (rel, _) in CASES.items():
        if rel is not None and not all((SHARED / p).exists() for p in rel.split(",")):
            print(json.dumps({"case": name, "skipped": f"{SHARED} data missing"}), flush=True)
            continue
        proc = subprocess.run(
            [sys.executable, __file__, "--case", name], capture_output=True, text=True, check=False
        )
        print(
            proc.stdout.strip() or json.dumps({"case": name, "error": proc.stderr.strip()[-500:]}), flush=True
        )


if __name__ == "__main__":
    main()
