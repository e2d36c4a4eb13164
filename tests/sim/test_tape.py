"""The engine's own containers: the FIFO model's table of live tape orders behaves as a dict of order
id -> (sequence, size left), however often it fills and grows; the row log gives back what it took."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import synthetic
from quotewise.quoting.loader import make_strategy
from quotewise.sim import records as E
from quotewise.sim import tape
from quotewise.sim.exchange import RowLog, SimConfig

MS = 1_000_000
IDS = st.one_of(st.integers(0, 40), st.integers(-(2**62), 2**62))
OPS = st.lists(st.tuples(st.sampled_from(["add", "reduce", "delete"]), IDS, st.integers(1, 5)), max_size=300)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_the_table_answers_as_a_dict_would(ops):
    table, reg = tape.new_table(4), np.zeros(E.REG_LEN, np.int64)
    model: dict[int, list[int]] = {}
    for seq, (op, oid, size) in enumerate(ops):
        if op == "add":
            if tape.is_full(table, reg):  # the engine stops here and grows the table
                table = tape.grown(table, reg)
            tape.add(table, reg, oid, seq, size)
            model[oid] = [seq, size]
            continue
        got = tape.change(table, oid, size, op == "delete")
        want = model[oid][0] if oid in model else -1
        assert got == want
        if oid in model:
            model[oid][1] -= size
            if model[oid][1] <= 0 or op == "delete":
                del model[oid]
    assert 2 * reg[E.R_TAPE_USED] <= table.shape[0] + 2
    for oid, (seq, _) in model.items():
        assert tape.change(table, oid, 0, False) == seq


def fifo_run(monkeypatch, capacity: int):
    """A compiled FIFO backtest whose tape table starts with ``capacity`` slots."""
    monkeypatch.setattr(tape, "INITIAL_CAPACITY", capacity)
    strat = make_strategy("skew", {"spread": "1tick", "size": 2, "interval": "20ms"})
    config = SimConfig(
        queue="fifo", interval_ns=strat.interval_ns, entry_latency_ns=2 * MS, response_latency_ns=MS
    )
    return run_backtest(synthetic(60_000, seed=5), strat, config, compiled=True)


def test_a_table_that_grows_all_run_long_gives_the_same_fills(monkeypatch):
    grows_often = fifo_run(monkeypatch, 4)
    roomy = fifo_run(monkeypatch, 1 << 20)
    assert grows_often.summary["fills"] == roomy.summary["fills"] > 0
    assert grows_often.fills.equals(roomy.fills)
    assert grows_often.orders.equals(roomy.orders)


def test_the_row_log_returns_each_batch_of_rows_as_appended():
    """Compiled rows are copied out as raw bytes into one growing array (sim.exchange.RowLog)."""
    log = RowLog(E.RESPONSE_DTYPE)
    rng = np.random.default_rng(1)
    for batches in ([3], [1, 5, 40], [0, 2]):  # growth within a take, and reuse after one
        parts = []
        for n in batches:
            part = np.zeros(n, E.RESPONSE_DTYPE)
            part["order_id"] = rng.integers(0, 1 << 40, n)
            part["cash"] = rng.normal(size=n)
            parts.append(part)
            log.append(part[::-1][::-1])  # a view: copied, not kept
        assert np.array_equal(log.take(), np.concatenate(parts))
    assert len(log.take()) == 0
