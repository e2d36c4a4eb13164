"""Scheduled risk windows: ``pause_windows`` stops quoting inside each window (and wakes the engine
at its edges), ``reduce_windows`` lets only the side that reduces the position quote, no larger
than the position; both read ISO times or epoch nanoseconds and refuse what they cannot read."""

from __future__ import annotations

import pytest
from riskkit import SECOND, T0, Desk

from quotewise.errors import ConfigError
from quotewise.risk.config import risk_config

BUY, SELL = 1, -1
ISO_T0 = "2023-11-14T22:13:20"  # T0


def test_a_scheduled_pause_cancels_everything_and_resumes_at_its_end():
    d = Desk(pause_windows=f"{ISO_T0}/1s,{T0 + 3 * SECOND}/500ms").at(0.5)
    assert d.risk.next_wake(T0 + SECOND // 2) == T0 + SECOND  # the end of the first window
    d.decide(bids=[(9_999, 1)], asks=[(10_001, 1)])
    assert d.book(BUY) == [] and d.actions() == [("pause_windows", "pause")]
    d.at(1.0).decide(bids=[(9_999, 1)], asks=[(10_001, 1)])
    assert ("pause_windows", "resume") in d.actions() and d.book(BUY) == [(9_999, 1, "pending_new")]
    d.ack_all()
    assert d.risk.next_wake(T0 + SECOND) == T0 + 3 * SECOND  # the next window's start
    d.at(3.2).decide(bids=[(9_999, 1)], asks=[(10_001, 1)])
    assert d.actions()[-1] == ("pause_windows", "pause")
    assert [s for _, _, s in d.book(BUY) + d.book(SELL)] == ["pending_cancel", "pending_cancel"]


def test_reduce_only_keeps_the_reducing_side_cut_to_the_position():
    d = Desk(reduce_windows=f"{T0 + SECOND}/2s").at(0)
    d.decide(bids=[(9_999, 3)])
    d.ack_all()
    d.fill(BUY, 9_999, 3)  # long 3
    d.at(1.5).decide(bids=[(9_998, 2)], asks=[(10_001, 2), (10_002, 2)])
    assert ("reduce_windows", "reduce_only") in d.actions()
    assert d.book(BUY) == [] and d.book(SELL) == [(10_001, 2, "pending_new"), (10_002, 1, "pending_new")]
    d.at(3.0).decide(bids=[(9_998, 2)], asks=[(10_001, 2)])
    assert d.actions()[-1] == ("reduce_windows", "resume") and d.book(BUY) == [(9_998, 2, "pending_new")]


def test_reduce_only_while_flat_quotes_nothing():
    d = Desk(reduce_windows=f"{T0}/1s").at(0.1)
    d.decide(bids=[(9_999, 1)], asks=[(10_001, 1)])
    assert d.book(BUY) == [] and d.book(SELL) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [("2024-08-08T13:30:00", "START/DURATION"), ("noon/5m", "ISO time"), (f"{T0}/0s", "lasts no time")],
)
def test_windows_it_cannot_read_are_refused_naming_the_field(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        risk_config({"pause_windows": text})  # what the CLI, the API and config files call
    assert "pause_windows" in str(err.value)
