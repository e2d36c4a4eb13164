"""A tiny fabricated run small enough to work every metric out by hand (the tests show the arithmetic).

Equity every 5 s from T0 (seconds: position, mid, our bid / ask quote):

    t   pos  mid    bid_q  ask_q
    0   0    100.0  99.9   100.1
    5   0    100.0  99.9   100.1
    10  2    100.0  99.9   100.1
    15  2    99.8   99.7   99.9
    20  1    100.1  99.9   100.3
    25  1    100.2  100.1  100.3
    30  2    NaN    100.1  NaN      (one side of the book empty; we quote one-sided)
    35  2    100.3  100.2  100.4
    40  2    100.3  100.2  100.4

Fills (side, size @ price, mid at fill, fee):

    t=10  buy  2 @ 99.9   mid 100.0  fee +0.02 (paid)
    t=20  sell 1 @ 100.2  mid 100.1  fee -0.01 (rebate)
    t=30  buy  1 @ 100.0  mid NaN    fee 0

Final position 2, final mid 100.3; cash = -2*99.9 + 100.2 - 100.0 - (0.02 - 0.01) = -199.61,
so total P&L = -199.61 + 2*100.3 = 0.99. Five orders were placed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

T0 = 1_709_251_200_000_000_000  # 2024-03-01 00:00:00 UTC in ns
SECOND = 1_000_000_000
NAN = float("nan")


def equity() -> pd.DataFrame:
    ts = T0 + np.arange(0, 45, 5, dtype=np.int64) * SECOND
    position = [0.0, 0, 2, 2, 1, 1, 2, 2, 2]
    mid = [100.0, 100.0, 100.0, 99.8, 100.1, 100.2, NAN, 100.3, 100.3]
    bid_quote = [99.9, 99.9, 99.9, 99.7, 99.9, 100.1, 100.1, 100.2, 100.2]
    ask_quote = [100.1, 100.1, 100.1, 99.9, 100.3, 100.3, NAN, 100.4, 100.4]
    cash = [0.0, 0, -199.82, -199.82, -99.61, -99.61, -199.61, -199.61, -199.61]
    frame = pd.DataFrame(
        {
            "ts": ts,
            "position": position,
            "cash": cash,
            "mid": mid,
            "best_bid": np.array(mid) - 0.05,
            "best_ask": np.array(mid) + 0.05,
            "bid_quote": bid_quote,
            "ask_quote": ask_quote,
        }
    )
    marks = frame["mid"].ffill()
    frame.insert(4, "pnl", frame["cash"] + frame["position"] * marks)
    return frame


def fills() -> pd.DataFrame:
    side = np.array([1, -1, 1], dtype=np.int8)
    size = np.array([2.0, 1.0, 1.0])
    price = np.array([99.9, 100.2, 100.0])
    fee = np.array([0.02, -0.01, 0.0])
    return pd.DataFrame(
        {
            "exch_ts": T0 + np.array([10, 20, 30], dtype=np.int64) * SECOND,
            "local_ts": T0 + np.array([10, 20, 30], dtype=np.int64) * SECOND + 1_000_000,
            "order_id": np.array([1, 4, 5], dtype=np.int64),
            "side": side,
            "price": price,
            "size": size,
            "fee": fee,
            "liquidity": ["maker", "maker", "taker"],
            "position": np.cumsum(side * size),
            "cash": np.cumsum(-side * size * price - fee),
            "mid": [100.0, 100.1, NAN],
        }
    )


def orders() -> pd.DataFrame:
    rows = [
        (0, 1, 1, "submitted"),
        (0, 2, -1, "submitted"),
        (5, 2, -1, "cancel_requested"),
        (5, 3, 1, "submitted"),
        (6, 3, 1, "rejected"),
        (15, 4, -1, "submitted"),
        (25, 5, 1, "submitted"),
    ]
    return pd.DataFrame(
        {
            "ts": [T0 + t * SECOND for t, *_ in rows],
            "order_id": np.array([r[1] for r in rows], dtype=np.int64),
            "side": np.array([r[2] for r in rows], dtype=np.int8),
            "price": 100.0,
            "size": 1.0,
            "filled": 0.0,
            "status": [r[3] for r in rows],
            "reason": "",
        }
    )


def summary() -> dict[str, Any]:
    return {
        "strategy": "tiny",
        "params": {},
        "data": "fabricated",
        "instrument": {"symbol": "TINY", "venue": "test", "tick_size": 0.1, "lot_size": 1.0},
        "total_pnl": 0.99,
        "fees": 0.01,
        "fills": 3,
        "cash": -199.61,
        "final_position": 2.0,
        "final_mid": 100.3,
        "orders_placed": 5,
        "start": "2024-03-01T00:00:00+00:00",
        "end": "2024-03-01T00:00:40+00:00",
    }


def write_tiny_run(run_dir: Path) -> Path:
    """The tiny run as a run directory (no risk log)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary()))
    fills().to_parquet(run_dir / "fills.parquet", index=False)
    orders().to_parquet(run_dir / "orders.parquet", index=False)
    equity().to_parquet(run_dir / "equity.parquet", index=False)
    return run_dir
