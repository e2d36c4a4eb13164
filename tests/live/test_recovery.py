"""Kill the engine with SIGKILL mid-run, start it again on the same database: the maker resumes with
fills, position and P&L continuous (no gap, no duplicate) and its orders reconciled with the venue;
SIGTERM cancels every working order before the engine exits."""

from __future__ import annotations

import os
import signal

from livekit import pid_gone

from quotewise.data.synthetic import SYNTH_INSTRUMENT
from quotewise.live.store import Store, db_url


def test_sigkill_then_restart_continues_exactly(mm):
    mm("engine", "start", "--db", mm.db)
    maker = mm(
        "start", "paper", "SYNTH", "--data", "synthetic:2000000", "--speed", "20", "--interval", "50ms"
    ).stdout
    maker = maker.strip()
    store = Store(db_url(mm.db))
    mm.wait(lambda: len(store.fills(maker)) >= 8, what="fills before the kill")

    pid = int(mm.engine_info()["pid"])
    os.kill(pid, signal.SIGKILL)
    mm.wait(lambda: pid_gone(pid), what="the engine to die")
    before = store.fills(maker)
    position_before = store.position(maker)
    assert position_before.position == sum(f.side * f.qty for f in before)
    assert store.maker(maker).status == "running"  # nobody told the store it stopped

    mm("engine", "start", "--db", mm.db)  # the stale engine file is noticed and replaced
    assert int(mm.engine_info()["pid"]) != pid
    mm.wait(lambda: len(store.fills(maker)) >= len(before) + 8, what="fills after the restart")
    status = mm.json("status", maker, "--json")
    assert status["status"] == "running"

    position_after = store.position(maker)  # read first: the engine goes on filling meanwhile
    after = store.fills(maker)
    assert [f.seq for f in after] == list(range(1, len(after) + 1))  # no gap, no duplicate
    assert after[: len(before)] == before  # nothing stored before the kill changed
    booked = [f for f in after if f.seq <= position_after.last_seq]
    assert position_after.position == sum(f.side * f.qty for f in booked)
    cash = position_before.cash  # cash goes on from where it was, fill by fill
    value = SYNTH_INSTRUMENT.tick_size * SYNTH_INSTRUMENT.lot_size
    for f in after[len(before) :]:
        cash -= f.side * f.price * f.qty * value + f.fee
    assert abs(after[-1].cash - cash) < 1e-6
    resume = [r for r in store.audit_rows(maker) if r["action"] == "resume"]
    assert len(resume) == 1 and "fills_recovered" in resume[0]["details"]

    # SIGTERM: graceful, every working order cancelled before the process exits
    pid = int(mm.engine_info()["pid"])
    os.kill(pid, signal.SIGTERM)
    mm.wait(lambda: pid_gone(pid), what="the engine to exit on SIGTERM")
    assert store.orders(maker, open_only=True) == []
    assert any(r["action"] == "shutdown" for r in store.audit_rows())
    store.close()
