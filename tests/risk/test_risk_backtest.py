"""The risk engine inside whole backtests, on real LOBSTER AMZN data and on the synthetic market.

Every claim is checked in the files a user gets: fills.parquet, orders.parquet, risk_events.parquet.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from riskkit import INST, SECOND, backtest, outputs, with_gap

from backtest.runcheck import check_run
from conftest import shared_path
from quotewise.backtest.source import from_event_data, synthetic
from quotewise.data.lobster import read_lobster
from quotewise.data.synthetic import generate_synthetic
from quotewise.model.events import EVENT_DTYPE, SET
from quotewise.risk import RiskConfig
from quotewise.sim.exchange import SimConfig, SimExchange

SYNTH_EVENTS = 1_000_000
SYNTH_SEED = 1
TERMINAL = {"filled", "cancelled", "rejected"}
HALT_LOSS = {"amzn": 2.0, "synthetic": 1.0}  # quote currency; each market's P&L falls this low


@pytest.fixture(scope="module")
def amzn_data():
    return read_lobster(shared_path("lobster", "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip"))


@pytest.fixture(params=["amzn", "synthetic"])
def market(request):
    """(name, source): each end-to-end test runs on both markets."""
    if request.param == "amzn":
        return "amzn", from_event_data(request.getfixturevalue("amzn_data"), "amzn")
    return "synthetic", synthetic(SYNTH_EVENTS, SYNTH_SEED)


def test_position_never_exceeds_max_pos(market, tmp_path):
    name, source = market
    result = backtest(source, tmp_path, RiskConfig(max_pos=3), lots=2, depth=2)
    summary = check_run(tmp_path)
    fills, _, events = outputs(tmp_path)
    assert len(fills) > 100, name
    assert np.abs(fills["position"]).max() <= 3
    assert summary["max_abs_position"] <= 3
    actions = summary["risk"]["actions"]
    assert actions["trim"] > 0 and actions["reduce_only"] > 0  # the limit did bind
    assert summary["risk"]["config"]["max_pos"] == 3
    assert (
        actions["trim"]
        == int((events["action"] == "trim").sum())
        == result.summary["risk"]["actions"]["trim"]
    )


def test_no_order_is_submitted_after_a_halt(market, tmp_path):
    name, source = market
    backtest(source, tmp_path, RiskConfig(max_loss=HALT_LOSS[name]))
    _, orders, events = outputs(tmp_path)
    halts = events[events["action"] == "halt"]
    assert len(halts) == 1, name
    halt = halts.iloc[0]
    assert halt["rule"] == "max_loss" and halt["value"] >= HALT_LOSS[name] == halt["limit"]
    submitted = orders[orders["status"] == "submitted"]
    assert len(submitted) > 0 and submitted["ts"].max() < halt["ts"]
    # every order sent before the halt was finished: cancelled by it, or filled before its cancel arrived
    finished = set(orders.loc[orders["status"].isin(TERMINAL), "order_id"])
    assert set(submitted["order_id"]) <= finished
    assert (orders.loc[orders["ts"] >= halt["ts"], "reason"] != "wanted by strategy").all()
    assert "risk halt: max_loss" in set(orders["reason"])


def test_window_loss_pauses_then_quoting_resumes(market, tmp_path):
    name, source = market
    cfg = RiskConfig(max_loss=2, max_loss_window="60s", pause_for="30s")
    backtest(source, tmp_path, cfg)
    summary = json.loads((tmp_path / "summary.json").read_text())
    _, orders, events = outputs(tmp_path)
    pauses = events[events["action"] == "pause"].reset_index(drop=True)
    resumes = events[events["action"] == "resume"].reset_index(drop=True)
    assert len(pauses) >= 1, name
    assert summary["risk"]["actions"]["pause"] == len(pauses)
    assert len(resumes) in (len(pauses), len(pauses) - 1)  # the data may end during the last pause
    submitted = orders.loc[orders["status"] == "submitted", "ts"].to_numpy()
    for i, r in resumes.iterrows():
        start = pauses.loc[i, "ts"]
        assert r["ts"] >= start + 30 * SECOND
        assert not ((submitted >= start) & (submitted < r["ts"])).any()  # nothing sent while paused
    assert (submitted > resumes.loc[0, "ts"]).any()  # quoting resumed


GAP = 120 * SECOND
STALE = 5 * SECOND


def test_the_venue_timer_wakes_inside_a_gap_between_decisions():
    """What the stale rule relies on: events at 0 and 500 ms, decisions every 10 ms, a timer at 100 ms."""
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["exch_ts"] = events["local_ts"] = [0, 0, 500_000_000]
    events["kind"], events["side"], events["price"], events["size"] = SET, [1, -1, 1], [99, 101, 98], 1
    ex = SimExchange(INST, 0, 1_000, SimConfig(interval_ns=10_000_000))
    ex.feed(events)
    ex.set_timer(100_000_000)
    wakes = []
    while ex.advance():
        wakes.append(ex.now)
        if ex.timer_due:
            ex.set_timer(None)
        if ex.decision_due:
            ex.schedule_next_decision()
    assert 100_000_000 in wakes


@pytest.mark.parametrize("name", ["amzn", "synthetic"])
def test_quotes_are_pulled_during_a_data_gap(name, request, tmp_path):
    data = request.getfixturevalue("amzn_data") if name == "amzn" else generate_synthetic(300_000, SYNTH_SEED)
    at = len(data.events) // 4
    gapped = with_gap(data, at, GAP)
    gap_start = int(gapped.events["local_ts"][at - 1])
    gap_end = int(gapped.events["local_ts"][at])
    backtest(from_event_data(gapped, name), tmp_path, RiskConfig(stale_after="5s"))
    _, orders, events = outputs(tmp_path)
    stale = events[(events["action"] == "stale") & (events["ts"] > gap_start) & (events["ts"] < gap_end)]
    assert len(stale) == 1 and stale.iloc[0]["ts"] == gap_start + STALE
    fresh = events[(events["action"] == "fresh") & (events["ts"] >= gap_end)]
    assert len(fresh) >= 1
    deadline = gap_start + STALE + 1_000_000 + 1_000_000  # + entry and response latency
    before = orders[orders["ts"] < gap_start + STALE]
    sent = set(before.loc[before["status"] == "submitted", "order_id"])
    ended = orders[orders["order_id"].isin(sent) & orders["status"].isin(TERMINAL)]
    last_end = ended.groupby("order_id")["ts"].max()
    assert set(last_end.index) == sent and (last_end <= deadline).all()  # none working in the gap
    in_gap = orders[(orders["status"] == "submitted") & orders["ts"].between(gap_start + STALE, gap_end - 1)]
    assert in_gap.empty
    assert (orders.loc[orders["status"] == "submitted", "ts"] >= gap_end).any()  # quoting after the gap
