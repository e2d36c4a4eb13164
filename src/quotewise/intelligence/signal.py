"""The model's prediction on a backtest's decision grid: what a compiled strategy skews by.

The compiled engine decides on a grid (``origin + k x interval`` on the strategy's clock). Before the
run, one feature pass over the data samples the book at each grid time (the last group of events
received at or before it, :func:`quotewise.intelligence.features.new_state`) and the GBM scores each
sample; the engine then reads, at each decision, the latest prediction whose sample time the strategy
has reached (``sample time + feed latency <= now``). The pass and the scoring cost a feature pass over
the events plus one scoring of the trees per decision (by leaf masks,
:func:`quotewise.intelligence.gbm.score_rows`), not a model call per event.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quotewise.book import core, window
from quotewise.errors import ConfigError
from quotewise.intelligence.features import flow_pass, new_state
from quotewise.intelligence.flow_model import load_model
from quotewise.intelligence.gbm import gbm_arrays, score_rows
from quotewise.model.events import EventSource, empty_events

CLEAR_WHOLE_TICKS = 1 << 16  # a book this narrow (1 MiB a side) is emptied whole, not by marked blocks


def grid_predictions(
    directory: str | Path,
    source: EventSource,
    origin_ns: int,
    interval_ns: int,
    book: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample times (local ns) and P(next mid move up) of the GBM in ``directory`` on ``source``,
    sampled at ``origin_ns + k x interval_ns`` (local time: the strategy's clock less its feed latency).

    ``book``: empty book arrays covering the source's prices to replay on (left empty again), such as
    the backtest's own before its run: their pages are then mapped once for both replays. Without
    one, a book of its own, windowed when wide (as the backtest's is), and dropped after."""
    meta, arrays = load_model(Path(directory))
    if "gbm" not in arrays:
        raise ConfigError(
            f"model directory {directory} holds no GBM: train it with mm model train --model gbm"
        )
    window_ns = int(meta["config"]["window_ns"])
    shared = book is not None
    bid, ask, st = book if shared else core.new_book(source.price_lo, source.price_hi)
    if shared:  # marks what to empty after
        blocks = core.new_blocks(st)
        mark = st[core.N] > CLEAR_WHOLE_TICKS
        if not mark:  # emptied whole: cheaper than marking every event's block
            blocks[:] = core.MARK_BID | core.MARK_ASK
    state, clock, ring_t, ring_x = new_state(origin_ns, interval_ns)
    times, rows = [], []
    far = None  # the far log when the book of its own is windowed (quotewise.book.window)
    for chunk in source.chunks():
        if len(chunk):
            if not shared and not times and window.place(st, chunk):
                far = window.new_log()
            t, _, x, _, _ = flow_pass(
                chunk, bid, ask, st, state, clock, ring_t, ring_x, window_ns, 1, False, False, far
            )
            times.append(t)
            rows.append(x)
            if shared and mark:
                core.mark_blocks(chunk, st, blocks)
    t, _, x, _, _ = flow_pass(
        empty_events(0), bid, ask, st, state, clock, ring_t, ring_x, window_ns, 1, False, True, far
    )
    times.append(t)
    rows.append(x)
    if shared:
        core.empty_blocks(bid, ask, st, blocks)
    x = np.ascontiguousarray(np.concatenate(rows))
    return np.concatenate(times), score_rows(*gbm_arrays(arrays["gbm"]), x)
