"""Chunk boundaries change nothing: the engine holds back what the next chunk could come before."""

from __future__ import annotations

import pandas as pd
import pytest

from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import synthetic
from quotewise.quoting.loader import make_strategy
from quotewise.sim.exchange import SimConfig

MS = 1_000_000


def run(chunk: int, compiled: bool, feed_ms: int):
    strat = make_strategy("skew", {"spread": "1tick", "size": 2, "interval": "20ms"})
    config = SimConfig(
        queue="fifo",
        interval_ns=strat.interval_ns,
        entry_latency_ns=2 * MS,
        response_latency_ns=1 * MS,
        feed_latency_ns=feed_ms * MS,
    )
    return run_backtest(synthetic(120_000, seed=3, chunk=chunk), strat, config, compiled=compiled)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("feed_ms", [0, 7])
def test_any_chunking_gives_the_same_run(compiled, feed_ms):
    whole = run(1_000_000, compiled, feed_ms)
    assert whole.fills.num_rows > 50
    for chunk in (997, 10_000):
        part = run(chunk, compiled, feed_ms)
        for table in ("fills", "orders", "equity"):
            pd.testing.assert_frame_equal(
                getattr(whole, table).to_pandas(), getattr(part, table).to_pandas(), check_exact=True
            )
        assert part.summary["events"] == whole.summary["events"] == 120_000


@pytest.mark.parametrize("compiled", [False, True])
def test_a_long_tail_crosses_several_short_bridges(monkeypatch, compiled):
    """A feed latency of 2 s keeps thousands of events between the two clocks; with 16-event bridges
    the engine must extend the bridge many times before it can go on in the chunk itself."""
    from quotewise.sim import exchange

    whole = run(1_000_000, compiled, 2_000)
    monkeypatch.setattr(exchange, "BRIDGE_EVENTS", 16)
    part = run(7_919, compiled, 2_000)
    assert whole.fills.num_rows > 20
    for table in ("fills", "orders", "equity"):
        pd.testing.assert_frame_equal(
            getattr(whole, table).to_pandas(), getattr(part, table).to_pandas(), check_exact=True
        )
