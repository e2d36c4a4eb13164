"""Does the adaptive layer help out of sample? The ``adaptive`` strategy with and without its components.

For each data set the GBM is trained on other data (another day or instrument, ``mm model train``), the
VPIN bucket is set from that training data's trade volume, and the same strategy runs on the evaluation
data three times: ``adaptive=false`` (the plain skew quotes, same Python path), ``adaptive=true`` with its
defaults, widening only (``direction_pause`` 1 and ``sweep_pause`` 0: nothing pulled) and two ablations
(direction only, toxicity only); all settings were chosen before any run. Reported over the evaluation
window: P&L (mark to market, after fees), P&L per fill, mean 5 s markout (bp), the adverse-selection
ratio (share of fills whose 5 s markout is below zero) and the fill count. One JSON object per data set,
with the CPU; files that are missing are skipped.

    .venv/bin/python bench/intelligence.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quotewise as qw
from machine import cpu_name
from quotewise.api import load
from quotewise.signals.toxicity import adverse_ratio, fill_markouts, trades_of

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"
MARKOUT_NS = 5_000_000_000
VPIN_BUCKETS = 250  # buckets per training file
NEVER = 10**9  # a loss streak that never happens

# the same strategy without its components, with its defaults, and widening only (no side is pulled)
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"adaptive": False},
    "adaptive": {},
    "widen_only": {"direction_pause": 1.0, "sweep_pause": 0},
    # ablations: one family of components at a time (None: the setting is not given)
    "direction_only": {"sweep_pause": 0, "outlier_widen": "0", "vpin_bucket": None, "loss_streak": NEVER},
    "toxicity_only": {"model": None, "loss_streak": NEVER},
}

# (name, training data, backtest data, evaluation start or None)
CASES = [
    ("usdm_btcusdt_0808", "spot/btcusdt_20240808.gz", "usdm/btcusdt_20240808.gz", None),
    (
        "spot_btcusdt_0809",
        "spot/btcusdt_20240808.gz",
        "spot/btcusdt_20240808.gz,spot/btcusdt_20240809.gz",
        "2024-08-09",
    ),
    (
        "cm_btcusd_perp_0809",
        "cm/btcusd_perp_20240808.gz",
        "cm/btcusd_perp_20240808.gz,cm/btcusd_perp_20240809.gz",
        "2024-08-09",
    ),
]


def paths(spec: str) -> str:
    return ",".join(str(DATA / p) for p in spec.split(","))


def train(data: str, out: Path) -> None:
    mm = Path(sys.executable).parent / "mm"
    cmd = [str(mm), "model", "train", "--data", data, "--out", str(out), "--model", "gbm", "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True)


def bucket_units(data: str) -> float:
    source = load(data)
    lots = sum(float(trades_of(c)["size"].sum()) for c in source.chunks())
    return lots * source.instrument.lot_size / VPIN_BUCKETS


def sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def measure(run: qw.api.Backtest, start_ns: int) -> dict[str, Any]:
    eq = run.table("equity")
    ts = eq["ts"].astype("int64").to_numpy()
    mid, pnl = eq["mid"].to_numpy(), eq["pnl"].to_numpy()
    keep = ts >= start_ns
    base = pnl[~keep][-1] if (~keep).any() else 0.0
    fills = run.fills
    ft = fills["local_ts"].astype("int64").to_numpy()
    fk = ft >= start_ns
    marks = fill_markouts(
        ft[fk], fills["side"].to_numpy()[fk], fills["price"].to_numpy()[fk], ts, mid, MARKOUT_NS
    )
    ref = fills["price"].to_numpy()[fk]
    n = int(fk.sum())
    total = float(pnl[keep][-1] - base) if keep.any() else 0.0
    matured = ~np.isnan(marks)
    return {
        "pnl": sig(total),
        "pnl_per_fill": sig(total / n) if n else None,
        "markout_5s_bp": sig(float(np.mean(marks[matured] / ref[matured] * 1e4))) if matured.any() else None,
        "adverse_ratio": None if adverse_ratio(marks) is None else round(adverse_ratio(marks), 3),
        "fills": n,
    }


def case(name: str, train_spec: str, run_spec: str, start: str | None, tmp: Path) -> dict[str, Any] | None:
    missing = [p for p in (train_spec + "," + run_spec).split(",") if not (DATA / p).exists()]
    if missing:
        print(f"skip {name}: missing {missing}", file=sys.stderr)
        return None
    model = tmp / name
    t0 = time.perf_counter()
    train(paths(train_spec), model)
    bucket = bucket_units(paths(train_spec))
    start_ns = (
        0 if start is None else int(datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp() * 1e9)
    )
    source = load(paths(run_spec))
    out: dict[str, Any] = {"data_set": name, "train": train_spec, "run": run_spec, "evaluate_from": start}
    for label, settings in VARIANTS.items():
        given = {"model": str(model), "vpin_bucket": bucket, **settings}
        given = {k: v for k, v in given.items() if v is not None}
        run = qw.backtest(data=source, strategy="adaptive", **given)
        out[label] = measure(run, start_ns)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["cpu"] = cpu_name()
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="qw-intel-") as tmp:
        for name, train_spec, run_spec, start in CASES:
            result = case(name, train_spec, run_spec, start, Path(tmp))
            if result is not None:
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
