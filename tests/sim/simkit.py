"""Hand-built event streams and a scripted trader for the fill-rule tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quotewise.model.events import ADD, CLEAR, DELETE, EVENT_DTYPE, EXECUTE, REDUCE, SET, TRADE
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.sim.exchange import SimConfig, SimExchange

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
INST = Instrument(symbol="TEST", tick_size=0.01, lot_size=1.0, maker_fee=-0.0001, taker_fee=0.0005)
KINDS = {
    "add": ADD,
    "reduce": REDUCE,
    "delete": DELETE,
    "exec": EXECUTE,
    "trade": TRADE,
    "set": SET,
    "clear": CLEAR,
}


def events(rows: list[tuple]) -> np.ndarray:
    """Rows of (ms, kind, side, price, size[, order_id[, local_ms]]) -> an event array."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, row in enumerate(rows):
        ms, kind, side, price, size = row[:5]
        out[i]["exch_ts"] = T0 + int(ms * MS)
        out[i]["local_ts"] = T0 + int((row[6] if len(row) > 6 else ms) * MS)
        out[i]["kind"] = KINDS[kind]
        out[i]["side"] = side
        out[i]["price"] = price
        out[i]["size"] = size
        out[i]["order_id"] = row[5] if len(row) > 5 else 0
    return out


def book(bid: int = 100, ask: int = 101, bid_size: int = 10, ask_size: int = 10) -> list[tuple]:
    """A two-sided L2 book at time 0."""
    return [(0, "set", 1, bid, bid_size), (0, "set", -1, ask, ask_size)]


CLOCK_PRICE = 999


def with_clock(rows: list[tuple]) -> list[tuple]:
    """Add an unchanging far-away ask level every millisecond (at k + 0.25 ms) so the scripted
    trader wakes between the test's own events; it never touches prices near the action."""
    end = int(max(r[0] for r in rows)) + 10
    clock = [(k + 0.25, "set", -1, CLOCK_PRICE, 1) for k in range(end)]
    return sorted([*rows, *clock], key=lambda r: r[6] if len(r) > 6 else r[0])


def run(
    rows: list[tuple],
    script: Callable[[SimExchange], None],
    queue: str = "risk-averse",
    entry_ms: float = 1,
    resp_ms: float = 1,
    feed_ms: float = 0,
    instrument: Instrument = INST,
) -> tuple[SimExchange, list[Response]]:
    """Replay ``rows``; ``script(ex)`` runs just before each event becomes visible, at ``ex.now``."""
    config = SimConfig(
        entry_latency_ns=int(entry_ms * MS),
        response_latency_ns=int(resp_ms * MS),
        feed_latency_ns=int(feed_ms * MS),
        queue=queue,  # type: ignore[arg-type]
        interval_ns=1,
    )
    ex = SimExchange(instrument, 0, 1_000, config)
    seen: list[Response] = []
    ex.feed(events(with_clock(rows)))
    while True:
        woke = ex.advance()
        seen.extend(ex.responses())
        if not woke:
            break
        if ex.decision_due:
            script(ex)
            ex.schedule_next_decision()
    seen.extend(ex.pending_responses())
    return ex, seen


def at(ms: float, action: Callable[[SimExchange], object]) -> Callable[[SimExchange], None]:
    """A script that runs ``action`` once, at the first wake-up at or after ``ms``."""
    done = [False]

    def script(ex: SimExchange) -> None:
        if not done[0] and ex.now >= T0 + ms * MS:
            done[0] = True
            action(ex)

    return script


def fills(responses: list[Response]) -> list[tuple[int, int, int, bool]]:
    """(order_id, price, qty, maker) of each fill."""
    return [(r.order_id, r.price, r.qty, r.maker) for r in responses if r.kind == "fill"]


def kinds(responses: list[Response]) -> list[str]:
    return [r.kind for r in responses]
