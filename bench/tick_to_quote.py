"""Tick-to-quote latency of the live engine: from a market event arriving at the engine to the quote
decision reaching the venue interface, with 1, 100 and 1,000 instruments.

The real path runs: ``Maker`` objects in one asyncio loop (the same class the engine runs), each with
the built-in ``symmetric`` strategy deciding on every update (interval 1 us), the order manager, and
a store on a SQLite file (order states flushed every 100 ms by the store's writer thread, as the
engine does). Only the venue is a bench venue: it delivers synthetic book updates (Poisson arrivals,
each moving the touch by a tick now and then), stamps the moment its listener is called (the event
reaches the engine), and stamps the first place/cancel of the decision that follows (the decision
reaches the venue); it acks orders and cancels on the next loop turn, off the measured path.

A share of updates (``--touch-moves``, default 8%, as measured on real streams) moves the touch, so
the maker cancels and places both sides. Updates arrive on a Poisson schedule; when the loop is
busy, every update due by then is delivered at once (as a feed handler reads whatever its socket
holds) and a maker applies all it received before one decision (coalescing). Latency runs from the
first touch move a maker has not yet acted on.

Reported per case: p50 / p99 / p99.9 in microseconds of "to venue call" (from the touch move to the
first place/cancel) and "decision" (to the end of the decision), the updates delivered, the
decisions taken (updates that leave the touch alone need none), how late updates were read against
their schedule (a backlog is a delay that keeps growing: its last-second mean is over 10 ms), and
how busy the event loop was (its thread's CPU time over the run's wall time: the headroom left on
this machine, which a slower one eats into). Prints one JSON object.

Every case runs as ``mm engine start`` does by default: idle makers rehearse their decision every
``--keep-warm`` (1ms; 0 turns it off). The 1-instrument case also runs without it, for comparison.
The machine's floor is printed beside: one empty compiled call after idling as long as the gap
between updates (on a shared machine, caches go cold within a millisecond, and no code is faster
than that).

``--workers N`` spreads each case's makers over N processes, one event loop each on the shared
database (each in its row lane), as ``mm engine start --workers N`` does; the latencies are pooled
and the busiest loop is reported (each one's too).

    .venv/bin/python bench/tick_to_quote.py [--seconds 10] [--rate 50] [--touch-moves 0.08]
        [--keep-warm 1ms] [--instruments 1,100,1000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np

from machine import cpu_name
from quotewise.live import KEEP_WARM
from quotewise.live.engine import freeze_long_lived
from quotewise.live.lane import Lane
from quotewise.live.maker import Maker
from quotewise.live.scheduler import Scheduler
from quotewise.live.store import Store, db_url
from quotewise.live.venue import VenueFill, VenueListener, VenueOrder
from quotewise.model.events import EVENT_DTYPE, SET
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.parsing import parse_duration
from quotewise.quoting.loader import make_strategy

MID = 10_000  # ticks
DEPTH = 5  # levels a side in each update
LEVELS = np.arange(DEPTH)
SIZES = np.random.default_rng(7).integers(1, 50, (997, 2 * DEPTH))  # level sizes, cycled
SIDES = np.array([1, -1] + [1] * DEPTH + [-1] * DEPTH)
UPDATE_LEN = 2 + 2 * DEPTH
# share of book updates after which the touch has moved: 8.1% on the Binance spot BTCUSDT stream,
# 7.3% USD-M, 1.5% COIN-M (bench/touch_moves.py on ../shared/data/binance); each move requotes both sides
TOUCH_MOVES = 0.08


@nb.njit(cache=True)
def _empty(a):
    return a[0]


def machine_floor(gap_s: float, samples: int = 200) -> dict:
    """p50/p99 (us) of one empty compiled call made after sleeping ``gap_s``: what any tick-to-quote
    path on this machine pays at least after such a pause."""
    a = np.zeros(1, np.int64)
    _empty(a)
    took = []
    for _ in range(samples):
        time.sleep(gap_s)
        t0 = time.perf_counter_ns()
        _empty(a)
        took.append(time.perf_counter_ns() - t0)
    return {
        "idle_gap_ms": gap_s * 1e3,
        "p50": float(np.percentile(took, 50) / 1e3),
        "p99": float(np.percentile(took, 99) / 1e3),
    }


def _response(kind: str, order_id: int, side: int, price: int, now: int) -> Response:
    return Response(kind, order_id, now, now, side, price, 0, 1, True, "", 0, 0.0, 0.0, -1)


class BenchVenue:
    """A venue that feeds book updates and measures when decisions reach it."""

    def __init__(self, index: int) -> None:
        self.instrument = Instrument(symbol=f"SYM{index}", tick_size=0.01, lot_size=1.0)
        self.listener: VenueListener | None = None
        self.bid, self.ask = MID - 1, MID
        self.next_id = 1
        self.arrived = 0  # perf_counter_ns when the first touch move not yet acted on reached the engine
        self.first_call = 0  # first place/cancel after it
        self.pending = False  # a touch move is waiting for its decision
        self.to_venue: list[int] = []
        self.live: dict[int, tuple[int, int]] = {}
        self.k = index

    @property
    def now(self) -> int:
        return time.time_ns()

    @property
    def price_range(self) -> tuple[int, int]:
        return MID - 5_000, MID + 5_000

    def subscribe(self, listener: VenueListener) -> None:
        self.listener = listener

    def _stamp(self) -> None:
        if self.pending and self.first_call == 0:
            self.first_call = time.perf_counter_ns()
            self.to_venue.append(self.first_call - self.arrived)

    def place(self, side: int, price: int, size: int, post_only: bool = True, reject_reason: int = 0) -> int:
        self._stamp()
        oid = self.next_id
        self.next_id += 1
        self.live[oid] = (side, price)
        asyncio.get_running_loop().call_soon(self._answer, "accepted", oid, side, price)
        return oid

    def cancel(self, order_id: int) -> bool:
        self._stamp()
        side, price = self.live.pop(order_id, (0, 0))
        asyncio.get_running_loop().call_soon(self._answer, "cancelled", order_id, side, price)
        return True

    def amend(self, order_id: int, price: int, size: int) -> bool:
        return False

    def open_orders(self) -> list[VenueOrder]:
        return []

    def position(self) -> tuple[int, float, float]:
        return 0, 0.0, 0.0

    def fills_since(self, seq: int) -> list[VenueFill]:
        return []

    def _answer(self, kind: str, oid: int, side: int, price: int) -> None:
        assert self.listener is not None
        self.listener.on_responses([(_response(kind, oid, side, price, self.now), 0)])

    def walk(self, rng: np.random.Generator, out: np.ndarray, touch_moves: float) -> bool:
        """Write one book update into ``out``: sizes change; with probability ``touch_moves`` the touch
        moves a tick (the level it left is cleared, as a real feed sends a zero-size update).
        Returns whether it moved."""
        moves = bool(rng.random() < touch_moves)
        if moves:
            step = 1 if rng.random() < 0.5 else -1
            self.bid += step
            self.ask += step
        out["kind"] = SET
        out["side"] = SIDES
        out["price"][0], out["price"][1] = self.bid + 1, self.ask - 1
        out["price"][2 : 2 + DEPTH] = self.bid - LEVELS
        out["price"][2 + DEPTH :] = self.ask + LEVELS
        self.k = (self.k + 1) % len(SIZES)
        out["size"][2:] = SIZES[self.k]
        return moves

    def deliver(self, update: np.ndarray, moves: bool) -> None:
        """The update reaches the engine now. Latency runs from the first touch move the maker has not
        yet acted on (an update that leaves the touch alone asks for no new quotes)."""
        if moves and not self.pending:
            self.arrived = time.perf_counter_ns()
            self.first_call = 0
            self.pending = True
        assert self.listener is not None
        self.listener.on_market(update)


@dataclass
class Part:
    """What one event loop measured in a case: the whole case, or one worker's share of it."""

    to_venue: list[int]  # ns
    decided: list[int]  # ns
    lags: np.ndarray  # s, per update
    schedule: np.ndarray  # s from the start, per update
    loop_busy: float


async def run_case(
    n: int,
    rate: float,
    seconds: float,
    store: Store,
    seed: int = 0,
    keep_warm_s: float | None = None,
    touch_moves: float = TOUCH_MOVES,
) -> Part:
    rng = np.random.default_rng(seed)
    venues = [BenchVenue(i) for i in range(n)]
    decided: list[int] = []

    def on_decided(maker: Maker) -> None:
        venue = maker.venue
        if venue.pending:  # the first decision after a touch move: its own latency
            venue.pending = False
            decided.append(time.perf_counter_ns() - venue.arrived)

    makers = []
    scheduler = Scheduler(lane=Lane())  # as the engine's
    for i, venue in enumerate(venues):
        strategy = make_strategy("symmetric", {"spread": "1tick", "interval": "1us"})
        maker = Maker(f"bench-{n}-{i}", venue, store, strategy, scheduler=scheduler)
        maker.on_decided = on_decided
        makers.append(maker)
    tasks = [asyncio.create_task(m.run()) for m in makers]
    freeze_long_lived()  # as the engine does when a maker starts

    async def flusher() -> None:
        while True:
            await asyncio.sleep(0.1)
            store.flush_orders_behind()  # as the engine does

    tasks.append(asyncio.create_task(flusher()))
    if keep_warm_s:
        scheduler.keep_warm(lambda: makers, keep_warm_s)
    await asyncio.sleep(0.2)  # every maker waiting
    total_rate = n * rate
    gaps = rng.exponential(1.0 / total_rate, size=int(total_rate * seconds * 1.2) + 10)
    schedule = np.cumsum(gaps)
    schedule = schedule[schedule < seconds]
    who = rng.integers(0, n, size=len(schedule))
    # the updates are made before the clock starts, so the feed costs the loop what a socket read would
    updates = np.zeros(len(schedule) * UPDATE_LEN, dtype=EVENT_DTYPE)
    moves = [
        venues[i].walk(rng, updates[k * UPDATE_LEN : (k + 1) * UPDATE_LEN], touch_moves)
        for k, i in enumerate(who)
    ]
    start = time.perf_counter()
    busy_from = time.thread_time()  # the event loop's own CPU time (the order writer's is its thread's)
    lags = np.zeros(len(schedule))
    k = 0
    while k < len(schedule):
        elapsed = time.perf_counter() - start
        if schedule[k] > elapsed:
            await asyncio.sleep(schedule[k] - elapsed)
            continue
        # every update due by now reaches the engine, as a feed handler reads what its socket holds
        while k < len(schedule) and schedule[k] <= elapsed:
            lags[k] = time.perf_counter() - start - schedule[k]
            venues[who[k]].deliver(updates[k * UPDATE_LEN : (k + 1) * UPDATE_LEN], moves[k])
            k += 1
        await asyncio.sleep(0)
    loop_busy = (time.thread_time() - busy_from) / (time.perf_counter() - start)
    await asyncio.sleep(0.2)
    for m in makers:
        m.state = "stopping"
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await scheduler.close()
    store.flush_orders()
    return Part([x for v in venues for x in v.to_venue], decided, lags, schedule, loop_busy)


def summary(
    parts: list[Part], n: int, rate: float, seconds: float, keep_warm_s: float | None, touch_moves: float
) -> dict:
    """A case's figures over its parts (one per event loop): latencies pooled, the busiest loop."""

    def pct(values: list[int], q: float) -> float:
        return float(np.percentile(np.asarray(values) / 1e3, q)) if values else float("nan")

    to_venue = [x for p in parts for x in p.to_venue]
    decided = [x for p in parts for x in p.decided]
    lags = np.concatenate([p.lags for p in parts])
    last_second = np.concatenate([p.lags[p.schedule > seconds - 1.0] for p in parts])
    return {
        "instruments": n,
        "updates_per_second_each": rate,
        "keep_warm_us": keep_warm_s * 1e6 if keep_warm_s else None,
        "touch_moves": touch_moves,
        "workers": len(parts),
        "updates": len(lags),
        "decisions": len(decided),
        "venue_samples": len(to_venue),
        "to_venue_us": {"p50": pct(to_venue, 50), "p99": pct(to_venue, 99), "p99.9": pct(to_venue, 99.9)},
        "decision_us": {"p50": pct(decided, 50), "p99": pct(decided, 99), "p99.9": pct(decided, 99.9)},
        "loop_lag_ms": {
            "p99": float(np.percentile(lags, 99) * 1e3),
            "max": float(lags.max() * 1e3),
            "last_second_mean": float(last_second.mean() * 1e3) if len(last_second) else 0.0,
        },
        "backlog": bool(len(last_second) and last_second.mean() > 0.010),
        "loop_busy": max(p.loop_busy for p in parts),
        "loop_busy_each": [p.loop_busy for p in parts],
    }


def warm_up(store: Store) -> None:
    """Compiled code loaded (or compiled, on a fresh install), caches filled; a busy case too, since
    only a loaded engine passes updates through the lane (a compile mid-run held the loop for seconds)."""
    asyncio.run(run_case(1, 200.0, 1.0, store))
    asyncio.run(run_case(200, 50.0, 1.0, store))


def worker(
    index: int, count: int, url: str, cases: list, args: argparse.Namespace, start: Any, out: Any
) -> None:
    """One engine worker's share of every case (``mm engine start --workers``: its own process and
    loop, on the shared database in its row lane), each case begun with the others (``start``)."""
    store = Store(url, row_lane=(index, count))
    warm_up(store)
    parts: list[Part | None] = []
    for n, rate, keep in cases:
        share = n // count + (index < n % count)
        start.wait()
        if share == 0:  # fewer instruments than workers
            parts.append(None)
            continue
        parts.append(
            asyncio.run(
                run_case(
                    share,
                    rate,
                    args.seconds,
                    store,
                    1 + index,
                    keep_warm_s=keep,
                    touch_moves=args.touch_moves,
                )
            )
        )
    store.close()
    out.send(parts)


def run_cases(cases: list, args: argparse.Namespace, url: str) -> list[list[Part]]:
    """Each case's parts: in this process (``--workers 1``), or one per worker process."""
    if args.workers == 1:
        store = Store(url)
        warm_up(store)
        parts = [
            [
                asyncio.run(
                    run_case(n, rate, args.seconds, store, keep_warm_s=keep, touch_moves=args.touch_moves)
                )
            ]
            for n, rate, keep in cases
        ]
        store.close()
        return parts
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(args.workers)
    pipes = [context.Pipe(duplex=False) for _ in range(args.workers)]
    procs = [
        context.Process(target=worker, args=(k, args.workers, url, cases, args, start, pipes[k][1]))
        for k in range(args.workers)
    ]
    for p in procs:
        p.start()
    for _, writer in pipes:
        writer.close()  # the worker's end: a worker that dies ends its reader with EOFError
    shares = [reader.recv() for reader, _ in pipes]
    for p in procs:
        p.join()
    return [[share[i] for share in shares if share[i] is not None] for i in range(len(cases))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each case")
    ap.add_argument("--rate", type=float, default=50.0, help="updates per second per instrument")
    ap.add_argument(
        "--touch-moves",
        type=float,
        default=TOUCH_MOVES,
        help="share of updates that move the touch (and so requote both sides)",
    )
    ap.add_argument(
        "--instruments",
        default="1,100,1000",
        help="which instrument counts to run, comma-separated (1 runs at --rate and at 1000/s)",
    )
    ap.add_argument(
        "--keep-warm",
        default=KEEP_WARM,
        help="idle makers rehearse their decision this often, as mm engine start --keep-warm (0: off)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="spread each case's makers over this many processes, one event loop each, as mm engine start "
        "--workers does (1: this process)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = db_url(str(Path(tmp) / "bench.db"))
        Store(url).close()  # the schema, before any worker opens it
        warm = parse_duration(args.keep_warm, "--keep-warm") / 1e9 or None
        floor = machine_floor(1.0 / args.rate)
        print(
            f"machine floor: one empty compiled call after {floor['idle_gap_ms']:g} ms idle: "
            f"p50 {floor['p50']:.0f} p99 {floor['p99']:.0f} us",
            flush=True,
        )
        cases = []
        for count in (int(c) for c in args.instruments.split(",")):
            if count == 1:  # also at 1,000 updates a second, and without keep-warm for comparison
                cases += [(1, args.rate, warm)] + ([(1, args.rate, None)] if warm else [])
                cases.append((1, 1000.0, warm))
            else:
                cases.append((count, args.rate, warm))
        results = []
        for (n, rate, keep), parts in zip(cases, run_cases(cases, args, url), strict=True):
            result = summary(parts, n, rate, args.seconds, keep, args.touch_moves)
            results.append(result)
            t, d = result["to_venue_us"], result["decision_us"]
            warmed = f"kept warm every {keep * 1e6:g} us" if keep else "not kept warm"
            print(
                f"{n:>5} instruments x {rate:g}/s, {warmed}: to venue p50 {t['p50']:.0f} p99 {t['p99']:.0f} "
                f"p99.9 {t['p99.9']:.0f} us ({result['venue_samples']} samples); "
                f"decision p99 {d['p99']:.0f} us; "
                f"loop lag p99 {result['loop_lag_ms']['p99']:.1f} ms; backlog {result['backlog']}; "
                f"loop busy {' / '.join(f'{b:.0%}' for b in result['loop_busy_each'])}",
                flush=True,
            )
    print(json.dumps({"cpu": cpu_name(), "machine_floor_us": floor, "cases": results}, indent=2))


if __name__ == "__main__":
    main()
