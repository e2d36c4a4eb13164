"""The engine's loop load: a loop held computing reads busy, one held waiting reads late, and the
engine says when its loop turns saturated and when it recovers."""

from __future__ import annotations

import asyncio
import logging
import time

from quotewise.live.loopload import LoopLoad


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def measured(load: LoopLoad, hold, seconds: float) -> None:
    """Run ``load`` while ``hold`` blocks the loop every 10 ms, for ``seconds``."""
    task = asyncio.create_task(load.run())
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        hold()
        await asyncio.sleep(0.01)
    task.cancel()


def test_a_loop_that_computes_reads_busy_and_one_held_waiting_reads_late():
    computing, waiting, idle = LoopLoad(0.05, 4), LoopLoad(0.05, 4), LoopLoad(0.05, 4)
    asyncio.run(measured(computing, lambda: spin(0.09), 0.6))  # 90 ms computing of every 100
    asyncio.run(measured(waiting, lambda: time.sleep(0.08), 0.5))  # blocked, but not computing
    asyncio.run(measured(idle, lambda: None, 0.5))

    assert computing.busy > 0.6 and computing.saturated
    assert waiting.busy < 0.3 and waiting.lag_s >= 0.03 and waiting.saturated
    assert idle.busy < 0.3 and idle.lag_s < 0.02 and not idle.saturated
    assert idle.figures() == {
        "loop_busy": idle.busy,
        "loop_lag_ms": idle.lag_s * 1e3,
        "loop_saturated": False,
    }


def test_saturation_is_logged_once_when_it_starts_and_once_when_it_ends(caplog):
    load = LoopLoad(1.0, 2)
    with caplog.at_level(logging.INFO, logger="quotewise.live.loopload"):
        load.add(0.5, 0.001)
        load.add(0.95, 0.001)  # mean 0.725: not yet
        load.add(0.95, 0.001)
        load.add(0.9, 0.05)
        load.add(0.1, 0.001)  # still the last window's lag of 50 ms
        load.add(0.1, 0.001)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("WARNING", "event loop saturated: quotes follow the market late"),
        ("INFO", "event loop no longer saturated"),
    ]
    assert caplog.records[0].kv == {"busy": 0.95, "lag_ms": 1.0}
    assert not load.saturated and load.busy == 0.1
