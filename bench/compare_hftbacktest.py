"""Quotewise vs hftbacktest on the same events and the same market-making strategy, side by side.

The strategy (the reference of ../shared/peers): every 100 ms one bid and one ask of 0.01, post-only,
reservation = mid - 0.5 tick x position / 0.01, half-spread 1 tick, never better than the touch,
no new order on the side that would take |position| past 0.5; 1 ms entry and 1 ms response
latency, risk-averse queue, maker -0.5 bp, taker 7 bp, the file's tick and lot. JIT time is excluded
in both engines (one warm-up run each); the engines alternate run by run and each figure is the
median of ``--runs`` runs in this process. Both decide on the same 100 ms grid (hftbacktest's clock
starts at the first row's exchange time).

    make bench          # installs the `bench` extra (hftbacktest) and runs this on the 10M stream
    .venv/bin/python bench/compare_hftbacktest.py DATA.npz [--runs 5] [--warmup small.npz]

Prints one JSON object: the CPU, events/s of each engine and of a bare numba loop on the same events
(bench/ceiling.py: the machine's ceiling), the engines' ratio, each engine's fills, volume and
final position, and the same figures for a run of ours on hftbacktest's tie rule (a market event
at an order's arrival time goes first), the one rule where the two engines differ
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from ceiling import ceiling
from machine import cpu_name

SYNTHETIC_LISTING = {"symbol": "BTCUSDT", "tick_size": 0.1, "lot_size": 0.001}  # ../shared/peers' stream
PARTIAL = False  # both engines on hftbacktest's no-partial rule, so they model the same thing
ORDER_QTY, MAX_POS, SKEW_TICKS, HALF_SPREAD_TICKS = 0.01, 0.5, 0.5, 1.0
STEP_NS, LATENCY_NS = 100_000_000, 1_000_000
MAKER_FEE, TAKER_FEE = -0.00005, 0.0007


_quote = None


def _hftbacktest_strategy():
    """The reference strategy as one compiled function, made once per process (a function defined
    per run would be compiled anew each run and its JIT time counted)."""
    global _quote
    if _quote is not None:
        return _quote
    from hftbacktest import BUY, GTX, LIMIT
    from numba import njit

    @njit
    def quote(hbt, tick):
        no_bid, no_ask = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        next_id = 1
        while hbt.elapse(STEP_NS) == 0:
            hbt.clear_inactive_orders(0)
            depth = hbt.depth(0)
            best_bid, best_ask = depth.best_bid_tick, depth.best_ask_tick
            if best_bid == no_bid or best_ask == no_ask:
                continue
            position = hbt.position(0)
            centre = (best_bid + best_ask) / 2.0 - SKEW_TICKS * position / ORDER_QTY
            bid = min(int(np.floor(centre - HALF_SPREAD_TICKS)), best_bid)
            ask = max(int(np.ceil(centre + HALF_SPREAD_TICKS)), best_ask)
            want_bid, want_ask = position < MAX_POS, position > -MAX_POS
            kept_bid = kept_ask = False
            values = hbt.orders(0).values()
            while values.has_next():
                order = values.get()
                is_buy = order.side == BUY
                if is_buy and want_bid and order.price_tick == bid and not kept_bid:
                    kept_bid = True
                elif not is_buy and want_ask and order.price_tick == ask and not kept_ask:
                    kept_ask = True
                elif order.cancellable:
                    hbt.cancel(0, order.order_id, False)
            if want_bid and not kept_bid:
                hbt.submit_buy_order(0, next_id, bid * tick, ORDER_QTY, GTX, LIMIT, False)
                next_id += 1
            if want_ask and not kept_ask:
                hbt.submit_sell_order(0, next_id, ask * tick, ORDER_QTY, GTX, LIMIT, False)
                next_id += 1
        return next_id

    _quote = quote
    return quote


def hftbacktest_run(data: np.ndarray | str, roi: tuple[float, float], listing: dict[str, float]) -> dict:
    """One run inside hftbacktest (its Rust engine, a numba strategy); ``roi``: its depth's price range;
    ``listing``: the file's tick and lot."""
    from hftbacktest import BacktestAsset, ROIVectorMarketDepthBacktest

    quote = _hftbacktest_strategy()
    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(LATENCY_NS, LATENCY_NS)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()  # its partial-fill exchange stalls here (docs/performance.md)
        .trading_value_fee_model(MAKER_FEE, TAKER_FEE)
        .tick_size(listing["tick_size"])
        .lot_size(listing["lot_size"])
        .roi_lb(roi[0])
        .roi_ub(roi[1])
    )
    hbt = ROIVectorMarketDepthBacktest([asset])
    t0 = time.perf_counter()
    quote(hbt, listing["tick_size"])
    seconds = time.perf_counter() - t0
    state = hbt.state_values(0)
    result = {
        "seconds": seconds,
        "fills": int(state.num_trades),
        "volume": float(state.trading_volume),
        "position": float(state.position),
    }
    hbt.close()
    return result


def quotewise_run(data, market_first: bool = False) -> dict:
    """One run in Quotewise: the built-in skew strategy with the same parameters, compiled path.

    ``market_first``: hftbacktest's tie rule (a market event at an order's arrival time goes first)
    instead of ours, to show that this rule is the whole remaining difference.
    """
    from quotewise.backtest.runner import run_backtest
    from quotewise.quoting.loader import make_strategy
    from quotewise.sim.exchange import SimConfig

    strategy = make_strategy(
        "skew",
        {
            "spread": "1tick",
            "size": ORDER_QTY,
            "max_inventory": MAX_POS,
            "improve": False,
            # centre shift at max inventory: 0.5 tick per 0.01 held, in half-spreads of 1 tick
            "skew": SKEW_TICKS * MAX_POS / ORDER_QTY,
        },
    )
    config = SimConfig(
        entry_latency_ns=LATENCY_NS,
        response_latency_ns=LATENCY_NS,
        queue="risk-averse",
        interval_ns=STEP_NS,
        partial_fills=PARTIAL,
        market_first_on_ties=market_first,
        # hftbacktest's clock starts at the first row's exchange time: the same decision grid
        decision_origin_ns=int(next(iter(data.chunks()))["exch_ts"][0]),
    )
    result = run_backtest(data, strategy, config, out_dir=None).summary
    return {
        "seconds": result["wall_seconds"],
        "fills": result["fills"],
        "volume": result["traded_volume"],
        "position": result["final_position"],
        "events": result["events"],
        "compiled": result["compiled"],
    }


def listing_of(path: Path) -> dict:
    """The file's symbol, tick and lot: from ``FILE.json`` beside it (bench/make_bench_data.py writes
    one for a Binance file), else the synthetic stream's."""
    sidecar = path.with_suffix(".json")
    return json.loads(sidecar.read_text()) if sidecar.exists() else dict(SYNTHETIC_LISTING)


def our_source(path: Path):
    from quotewise.backtest.source import from_event_data
    from quotewise.data.hftbacktest import read_hftbacktest_npz

    listing = listing_of(path)
    data = read_hftbacktest_npz(
        path, tick_size=listing["tick_size"], lot_size=listing["lot_size"], symbol=listing["symbol"]
    )
    data.instrument = data.instrument.model_copy(update={"maker_fee": MAKER_FEE, "taker_fee": TAKER_FEE})
    return from_event_data(data, str(path))


def price_range(path: Path) -> tuple[float, float]:
    """The file's lowest and highest price, widened by 1%: the range hftbacktest's depth must hold."""
    px = np.load(path)["data"]["px"]
    px = px[np.isfinite(px) & (px > 0)]
    return float(px.min()) * 0.99, float(px.max()) * 1.01


def median_of(results: list[dict]) -> dict:
    out = dict(results[len(results) // 2])
    out["seconds"] = statistics.median(r["seconds"] for r in results)
    out["all_seconds"] = [round(r["seconds"], 4) for r in results]
    return out


def side_by_side(theirs_fn, theirs_data, mine_fn, mine_data, runs: int) -> tuple[dict, dict]:
    """Alternate the two engines run by run, so a slow spell of a shared machine hits both."""
    theirs, mine = [], []
    for _ in range(runs):
        theirs.append(theirs_fn(theirs_data))
        mine.append(mine_fn(mine_data))
    return median_of(theirs), median_of(mine)


def differences(mine: dict, theirs: dict) -> dict:
    out = {}
    for key in ("fills", "volume"):
        a, b = mine[key], theirs[key]
        out[f"{key}_difference_pct"] = 100.0 * (a - b) / abs(b) if b else (0.0 if a == b else float("inf"))
    # final positions sit near zero, where a percentage says nothing: the gap in units and in orders
    gap = mine["position"] - theirs["position"]
    out["position_difference"] = gap
    out["position_difference_orders"] = round(gap / ORDER_QTY)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "data", type=Path, help="an hftbacktest .npz event file (both engines read the same events)"
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=Path, help="small .npz for the JIT warm-up runs (default: DATA)")
    args = ap.parse_args()
    rows = int(np.load(args.data, mmap_mode="r")["data"].shape[0])
    warm = args.warmup or args.data
    roi, listing = price_range(args.data), listing_of(args.data)
    hftbacktest_run(str(warm), price_range(warm), listing_of(warm))
    quotewise_run(our_source(warm))
    events = np.load(args.data)["data"]
    ours = our_source(args.data)
    quotewise_run(ours)  # a wide book runs windowed: that specialisation of the loop compiles here
    theirs, mine = side_by_side(
        lambda d: hftbacktest_run(d, roi, listing), events, quotewise_run, ours, args.runs
    )
    report = {
        "data": str(args.data),
        "symbol": listing["symbol"],
        "tick_size": listing["tick_size"],
        "cpu": cpu_name(),
        "events": rows,
        "runs": args.runs,
        "hftbacktest": {**theirs, "events_per_second": rows / theirs["seconds"]},
        "quotewise": {**mine, "events_per_second": rows / mine["seconds"]},
        # the same events through a bare numba book + toy maker: what this machine allows
        "numba_ceiling": ceiling(list(ours.chunks()), ours.price_lo, ours.price_hi),
    }
    report["speed_ratio_quotewise_over_hftbacktest"] = theirs["seconds"] / mine["seconds"]
    report.update(differences(mine, theirs))
    same_rules = quotewise_run(ours, market_first=True)
    report["quotewise_on_hftbacktest_tie_rule"] = {
        key: same_rules[key] for key in ("fills", "volume", "position")
    } | differences(same_rules, theirs)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
