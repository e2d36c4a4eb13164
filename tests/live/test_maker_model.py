"""A live maker on the ``adaptive`` strategy leans on its model with every update it received: the
model's private book replays all of them (batches that piled up between decisions are joined, not
dropped), and a view whose events were cut resyncs that book from the live one instead of drifting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from venues_for_tests import RecordingVenue

from quotewise.backtest.source import synthetic
from quotewise.book import OrderBook, core
from quotewise.book.view import MarketView
from quotewise.intelligence.features import flow_pass, new_state
from quotewise.intelligence.flow_model import load_model
from quotewise.intelligence.gbm import gbm_arrays, gbm_probability
from quotewise.live.maker import MAX_SEEN_BATCHES, Maker
from quotewise.live.store import Store, db_url
from quotewise.quoting.adaptive import DirectionSignal
from quotewise.quoting.loader import make_strategy

pytest.importorskip("lightgbm")
SOURCE = synthetic(20_000, seed=5)
PARAMS = {"spread": "1tick", "size": 1, "improve": False}


@pytest.fixture
def model_dir(synthetic_gbm) -> Path:
    return synthetic_gbm


def offline_p_up(model_dir: Path, events: np.ndarray, lo: int, hi: int) -> float:
    """The model's probability after ``events``, from one pass over all of them on a fresh book."""
    meta, arrays = load_model(model_dir)
    state, clock, ring_t, ring_x = new_state()
    book = core.new_book(lo, hi)
    window = int(meta["config"]["window_ns"])
    _, _, rows, _, _ = flow_pass(events, *book, state, clock, ring_t, ring_x, window, 1, False, False)
    return float(gbm_probability(*gbm_arrays(arrays["gbm"]), rows[-1]))


def test_a_live_maker_predicts_from_every_update_it_received(model_dir, tmp_path):
    events = next(iter(SOURCE.chunks()))[:6_000]
    batches = np.array_split(events, 3 * MAX_SEEN_BATCHES)  # more than a decision's worth of batches
    store = Store(db_url(str(tmp_path / "m.db")))
    maker = Maker(
        "a1", RecordingVenue(), store, make_strategy("adaptive", {**PARAMS, "model": str(model_dir)})
    )

    async def scenario() -> None:
        for batch in batches:  # all of them before the maker's task takes its first turn
            maker.on_market(batch)
        task = asyncio.create_task(maker.run())
        for _ in range(50):
            await asyncio.sleep(0.01)
            if maker.decisions:
                break
        maker.end("stopped")
        task.cancel()

    asyncio.run(scenario())
    store.close()
    direction = maker.strategy.direction
    assert maker.decisions >= 1 and direction.resyncs == 0
    expected = offline_p_up(model_dir, events, maker.book.lo_tick, maker.book.hi_tick)
    assert 0 < direction.p_up < 1 and direction.p_up == expected


def test_a_view_with_events_missing_resyncs_the_models_book(model_dir):
    events = next(iter(SOURCE.chunks()))[:4_000]
    live = OrderBook(SOURCE.price_lo, SOURCE.price_hi)
    live.apply(events)
    bb, ba = live.best_bid, live.best_ask

    def view(shown: np.ndarray) -> MarketView:
        inst = SOURCE.instrument
        return MarketView(
            0, inst, bb, ba, live.size_at(1, bb), live.size_at(-1, ba), 0, book=live, events=shown
        )

    whole = DirectionSignal(model_dir)
    whole.update(view(events))
    assert whole.resyncs == 0
    cut = DirectionSignal(model_dir)
    cut.update(view(events[len(events) // 2 :]))  # the first half never shown: the replay cannot match
    assert cut.resyncs == 1
    assert OrderBook.over(*cut.book).touch() == live.touch()
