"""A model leans the compiled quoting rule: only by predictions the strategy has already seen, by
model_skew half-spreads toward the predicted move, and not at all at model_skew 0."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import quotewise.intelligence.signal as signal
from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import synthetic
from quotewise.errors import ConfigError
from quotewise.quoting.loader import make_strategy
from quotewise.risk import RiskConfig
from quotewise.sim.exchange import SimConfig

pytest.importorskip("lightgbm")
SOURCE = synthetic(40_000, seed=3)
FEED_NS = 2_000_000
PARAMS = {"spread": "1tick", "size": 2, "improve": False}


@pytest.fixture
def model_dir(synthetic_gbm) -> Path:
    return synthetic_gbm


def run(params: dict, risk: RiskConfig | None = None):
    strategy = make_strategy("skew", params)
    return run_backtest(SOURCE, strategy, SimConfig(feed_latency_ns=FEED_NS), risk=risk)


def orders(result) -> np.ndarray:
    table = result.orders.to_pandas()
    sent = table[table["status"] == "submitted"]
    return sent[["ts", "side", "price"]].to_numpy()


@pytest.mark.parametrize("clear_whole_ticks", [signal.CLEAR_WHOLE_TICKS, 0])
def test_a_model_at_zero_skew_changes_nothing(model_dir, monkeypatch, clear_whole_ticks):
    """Also on the book the feature pass emptied by its marked blocks (a wide book's way, forced here)."""
    monkeypatch.setattr(signal, "CLEAR_WHOLE_TICKS", clear_whole_ticks)
    plain = run(PARAMS)
    leaned = run({**PARAMS, "model": str(model_dir), "model_skew": 0.0})
    assert leaned.summary["compiled"]
    assert np.array_equal(orders(plain), orders(leaned))
    assert plain.summary["fills"] == leaned.summary["fills"] > 0


def test_a_prediction_leans_the_quotes_only_once_the_strategy_has_seen_it(model_dir, monkeypatch):
    first = int(next(iter(SOURCE.chunks()))["local_ts"][0])
    seen_at = first + 3_000_000_000  # a certain up move, sampled 3 s in
    monkeypatch.setattr(
        signal, "grid_predictions", lambda *a, **kw: (np.array([seen_at], np.int64), np.array([1.0]))
    )
    plain = orders(run(PARAMS))
    leaned = orders(run({**PARAMS, "model": str(model_dir), "model_skew": 1.0}))
    before = plain[:, 0] < seen_at + FEED_NS  # decisions before the strategy received the sample
    assert before.any() and (~before).any()
    assert np.array_equal(plain[before], leaned[: before.sum()])
    after_plain, after_leaned = plain[~before], leaned[before.sum() :]
    first_ask = lambda rows: rows[rows[:, 1] == -1][0, 2]  # noqa: E731
    # the centre moves up one half-spread (one tick): the ask the up move would run over moves away
    assert first_ask(after_leaned) == pytest.approx(first_ask(after_plain) + 0.01)


def test_predictions_are_sampled_on_the_decision_grid_from_the_past_alone(model_dir):
    chunk = next(iter(SOURCE.chunks()))
    origin, step = int(chunk["local_ts"][0]), 100_000_000
    times, p = signal.grid_predictions(model_dir, SOURCE, origin, step)
    assert len(times) > 100 and np.all((p > 0) & (p < 1)) and np.all(np.diff(times) > 0)
    stamps = np.unique(chunk["local_ts"])
    # each sample is the last group stamped at or before a grid time: the next group comes after it
    nxt = stamps[np.searchsorted(stamps, times, side="right").clip(max=len(stamps) - 1)]
    grid_after = origin + -(-(times - origin) // step) * step  # the first grid time at or after
    assert np.all(np.isin(times, stamps)) and np.all((nxt > grid_after) | (nxt == stamps[-1]))


def test_the_python_path_refuses_a_model_it_would_ignore(model_dir):
    with pytest.raises(ConfigError, match="use strategy adaptive"):
        run({**PARAMS, "model": str(model_dir)}, risk=RiskConfig(max_pos=10))


def test_a_live_maker_refuses_a_model_it_would_ignore(model_dir):
    from quotewise.live.engine import live_strategy

    with pytest.raises(ConfigError, match="backtest only"):
        live_strategy("skew", {**PARAMS, "model": str(model_dir)})
    assert live_strategy("skew", PARAMS).name == "skew"


def test_a_new_prediction_in_a_quiet_market_is_decided_on(model_dir, monkeypatch):
    """A model's signal moves with time alone: the engine, which skips the decision grid while nothing
    changes, must wake for it even when no market event comes (here none for 4 s)."""
    first = int(next(iter(SOURCE.chunks()))["local_ts"][0])
    quiet_from, quiet_to = first + 2_000_000_000, first + 6_000_000_000
    events = np.concatenate(list(SOURCE.chunks()))
    events = events[(events["local_ts"] < quiet_from) | (events["local_ts"] >= quiet_to)]
    quiet = dataclasses.replace(SOURCE, n_events=len(events), chunks=lambda: iter([events]))
    seen_at = first + 3_000_000_000  # sampled inside the silence
    monkeypatch.setattr(
        signal, "grid_predictions", lambda *a, **kw: (np.array([seen_at], np.int64), np.array([1.0]))
    )
    strategy = make_strategy("skew", {**PARAMS, "model": str(model_dir), "model_skew": 1.0})
    sent = orders(run_backtest(quiet, strategy, SimConfig(feed_latency_ns=FEED_NS)))
    in_silence = sent[(sent[:, 0] >= seen_at + FEED_NS) & (sent[:, 0] < quiet_to)]
    # the first decision after the strategy received the sample requotes at once, not at the next event
    assert len(in_silence) > 0 and in_silence[0, 0] < seen_at + FEED_NS + 100_000_000 + 1
