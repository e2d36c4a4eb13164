"""Engine workers (``mm engine start --workers N``): makers spread over processes answer as one engine
(status, list, halt, config, stop, the dashboard's snapshots, metrics), resume across a restart, keep
a book in one worker (its limits act there), write one database without taking each other's order
row ids; a worker that dies is started again with its makers (past its restarts, only the calls
about its makers fail, in one line)."""

from __future__ import annotations

import asyncio
import math
import os
import pickle
import re
import signal
import sqlite3
import threading

import pytest
from prometheus_client.core import GaugeMetricFamily

from live.test_engine import spec, until
from quotewise.errors import ConfigError
from quotewise.live.engine import UnknownMaker
from quotewise.live.metrics import merge_families, metrics_text
from quotewise.live.store import OrderRecord, Store, db_url
from quotewise.live.workers import ShardedEngine, WorkerGone


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "shared.db")))
    yield s
    s.close()


def owner_pid(engine: ShardedEngine, maker_id: str) -> int:
    return next(link.process.pid for link in engine.links if maker_id in link.makers)


def order_row_ids(path: str) -> dict[str, list[int]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT maker_id, id FROM orders").fetchall()
    out: dict[str, list[int]] = {}
    for maker_id, row_id in rows:
        out.setdefault(maker_id, []).append(row_id)
    return out


def test_makers_over_two_workers_answer_as_one_engine_and_resume_after_a_restart(store, tmp_path):
    async def scenario():
        engine = ShardedEngine(store, 2)
        await engine.start()
        ids = [await engine.start_maker(spec(name=f"m{i}"), actor="test") for i in range(4)]
        pids = {maker_id: owner_pid(engine, maker_id) for maker_id in ids}
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
        assert [len(link.makers) for link in engine.links] == [2, 2]
        await until(lambda: all(engine.status(m)["fills"] >= 2 for m in ids), what="fills in both workers")

        listed = {m["id"]: m for m in engine.list_makers()}
        assert set(listed) == set(ids) and all(listed[m]["status"] == "running" for m in ids)
        assert all(listed[m]["fills"] >= 2 for m in ids)
        health = engine.health()
        assert health["makers"] == 4 and [w["makers"] for w in health["workers"]] == [2, 2]
        assert {w["pid"] for w in health["workers"]} == set(pids.values())

        halted = await engine.halt("m1", actor="test")
        assert halted["halted"] == "halted"
        config = await engine.configure("m2", {"spread": "3ticks"}, actor="test")
        assert config["version"] == 2 and engine.status("m2")["config"]["params"]["spread"] == "3ticks"
        stopped = await engine.stop_maker("m3", actor="test")
        assert stopped["status"] == "stopped" and store.orders("m3", open_only=True) == []
        with pytest.raises(ConfigError, match="m3 is not running"):
            await engine.halt("m3")
        # m3's worker runs one maker now (m1), the other two: a new maker goes where fewer run
        m4 = await engine.start_maker(spec(name="m4"), actor="test")
        assert owner_pid(engine, m4) == pids["m3"] == pids["m1"] != pids["m0"]
        await engine.stop_maker(m4, actor="test")

        listed = engine.statuses(["m2", "m0", "m3"])  # one question to each worker, in the list's order
        assert [m["id"] for m in listed] == ["m2", "m0", "m3"] and listed[2]["status"] == "stopped"
        assert listed[1]["decisions"] > 0 and listed[0]["config"]["version"] == 2
        results = engine.performances(["m3", "m1"])
        assert [r["id"] for r in results] == ["m3", "m1"] and all(r["orders_placed"] > 0 for r in results)
        with pytest.raises(UnknownMaker, match="nobody"):
            engine.statuses(["m0", "nobody"])
        shots = engine.snapshots({"m0": True, "m3": False})
        assert set(shots) == {"m0", "m3"} and "book" in shots["m0"] and shots["m3"]["status"] == "stopped"
        text = metrics_text(engine).decode()
        for maker_id in ids:
            assert f'quotewise_maker_decisions_total{{maker="{maker_id}"' in text
        assert "quotewise_engine_makers_running 3.0" in text  # m0, m1 (halted, still running), m2
        for worker in ("0", "1"):  # the merged loop figures are the worst worker's; these, each one's
            assert f'quotewise_engine_worker_loop_busy_ratio{{worker="{worker}"}}' in text
            assert f'quotewise_engine_worker_loop_lag_seconds{{worker="{worker}"}}' in text
        links = list(engine.links)
        await engine.shutdown(actor="test")
        assert len(links) == 2 and not any(link.process.is_alive() for link in links)

        rows = order_row_ids(str(tmp_path / "shared.db"))
        lanes = {m: {r % 2 for r in rows[m]} for m in ids}
        first = {m for m in ids if pids[m] == pids["m0"]}
        assert all(lanes[m] == lanes["m0"] for m in first)  # a worker's rows share its lane
        assert all(lanes[m] != lanes["m0"] and len(lanes[m]) == 1 for m in set(ids) - first)

        again = ShardedEngine(store, 2)
        resumed = await again.start()
        assert sorted(resumed) == ["m0", "m1", "m2"]  # m3 was stopped
        assert sorted(len(link.makers) for link in again.links) == [1, 2]
        assert again.status("m1")["halted"] == "halted"  # an operator's halt outlives the engine
        before = again.status("m0")["decisions"]
        await until(lambda: again.status("m0")["decisions"] > before, what="m0 deciding again")
        await again.shutdown(actor="test")

    asyncio.run(scenario())


def test_a_worker_that_dies_is_started_again_and_resumes_its_makers(store):
    async def scenario():
        engine = ShardedEngine(store, 2)
        await engine.start()
        a = await engine.start_maker(spec(name="a"), actor="test")
        b = await engine.start_maker(spec(name="b"), actor="test")
        await until(lambda: engine.status(a)["decisions"] > 0 and engine.status(b)["decisions"] > 0)
        dead_pid, other_pid = owner_pid(engine, a), owner_pid(engine, b)
        os.kill(dead_pid, signal.SIGKILL)
        await until(lambda: owner_pid(engine, a) != dead_pid, what="a new worker for a")
        assert owner_pid(engine, b) == other_pid  # the other worker was left alone
        assert engine.status(a)["status"] == "running"
        decided = engine.status(a)["decisions"]
        await until(lambda: engine.status(a)["decisions"] > decided, what="a deciding in its new worker")
        assert (await engine.halt(a, actor="test"))["halted"] == "halted"
        restarts = [r for r in store.audit_rows() if r["action"] == "worker_restart"]
        assert [r["details"]["resumed"] for r in restarts] == [[a]]
        assert [w["alive"] for w in engine.health()["workers"]] == [True, True]
        await engine.shutdown(actor="test")

    asyncio.run(scenario())


def test_a_worker_past_its_restarts_stays_down_and_fails_only_its_makers_calls_in_one_line(store):
    async def scenario():
        engine = ShardedEngine(store, 2, restarts=0)
        await engine.start()
        a = await engine.start_maker(spec(name="a"), actor="test")
        b = await engine.start_maker(spec(name="b"), actor="test")
        await until(lambda: engine.status(a)["decisions"] > 0 and engine.status(b)["decisions"] > 0)
        os.kill(owner_pid(engine, a), signal.SIGKILL)
        dead = next(link for link in engine.links if a in link.makers)
        await until(lambda: dead.gone, what="the dead worker noticed")
        with pytest.raises(
            WorkerGone, match=r"engine worker \d \(pid \d+\) has exited: its makers resume at"
        ):
            await engine.halt(a)
        assert engine.status(a)["status"] == "running"  # the store's: resumed at the next start
        before = engine.status(b)["decisions"]
        await until(lambda: engine.status(b)["decisions"] > before, what="the other worker's maker deciding")
        health = engine.health()
        assert [w["alive"] for w in health["workers"]] == [link is not dead for link in engine.links]
        assert health["makers"] == 1
        c = await engine.start_maker(spec(name="c"), actor="test")  # new makers go to the live worker
        assert owner_pid(engine, c) == owner_pid(engine, b)
        with pytest.raises(ConfigError, match="BTCUSDT"):  # refused in the worker: owned by none
            await engine.start_maker(spec(name="refused", market="BTCUSDT"), actor="test")
        assert all("refused" not in link.makers for link in engine.links)
        unnamed = await engine.start_maker(spec(), actor="test")  # named by the engine process
        assert re.fullmatch(r"mm-[0-9a-f]{6}", unnamed) and engine.status(unnamed)["status"] == "running"
        with pytest.raises(UnknownMaker):
            engine.status("refused")
        await engine.shutdown(actor="test")

    asyncio.run(scenario())


def test_workers_need_a_database_more_than_one_process_opens():
    memory = Store("sqlite://")
    with pytest.raises(ConfigError, match="in-memory database lives in one process"):
        ShardedEngine(memory, 2)
    with pytest.raises(ConfigError, match="--workers 0: give 1 to 64"):
        ShardedEngine(memory, 0)
    memory.close()


def test_two_stores_in_row_lanes_write_one_table_without_a_shared_id(tmp_path):
    url = db_url(str(tmp_path / "lanes.db"))
    Store(url).close()  # the schema, once
    stores = [Store(url, row_lane=(k, 3)) for k in range(3)]

    def write(k: int) -> None:
        for batch in range(20):
            rows = [OrderRecord(n, 1, 100 + n, 1, 1, "working", 0) for n in range(50)]
            stores[k].upsert_orders(f"maker{k}-{batch}", rows)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = order_row_ids(str(tmp_path / "lanes.db"))
    assert sum(len(v) for v in rows.values()) == 3 * 20 * 50
    for maker_id, row_ids in rows.items():
        assert {r % 3 for r in row_ids} == {int(maker_id[5])}
    for s in stores:
        s.close()
    with pytest.raises(ValueError, match="row lane"):
        Store(url, row_lane=(3, 3))


def test_worker_metrics_merge_makers_sum_counts_and_keep_the_busiest_loop():
    def share(busy: float, running: float, maker: str) -> list:
        loop = GaugeMetricFamily("quotewise_engine_loop_busy_ratio", "busy")
        loop.add_metric([], busy)
        makers = GaugeMetricFamily("quotewise_engine_makers_running", "running")
        makers.add_metric([], running)
        position = GaugeMetricFamily("quotewise_maker_position", "pos", labels=["maker"])
        position.add_metric([maker], 1.5)
        return [loop, makers, position]

    merged = {
        f.name: f for f in merge_families([share(0.3, 2, "a"), share(math.nan, 3, "b"), share(0.7, 1, "c")])
    }
    assert [s.value for s in merged["quotewise_engine_loop_busy_ratio"].samples] == [0.7]
    assert [s.value for s in merged["quotewise_engine_makers_running"].samples] == [6]
    assert sorted(s.labels["maker"] for s in merged["quotewise_maker_position"].samples) == ["a", "b", "c"]


def test_mm_engine_with_workers_end_to_end_and_no_worker_outlives_a_killed_engine(mm):
    from live.livekit import pid_gone

    paper = ("paper", "--data", "synthetic:3000000", "--speed", "5", "--strategy", "symmetric")
    bad = mm("engine", "start", "--workers", "0", check=False)
    assert bad.returncode == 2 and "--workers" in bad.stderr
    memory = mm("engine", "start", "--db", "sqlite://", "--workers", "2", check=False)
    assert memory.returncode == 2 and "in-memory database lives in one process" in memory.stderr
    mm("engine", "start", "--db", mm.db, "--workers", "2", "--keep-warm", "0")
    a = mm("start", *paper, "--name", "a").stdout.strip()
    b = mm("start", *paper, "--name", "b").stdout.strip()
    mm.wait(lambda: all(mm.json("status", m, "--json")["decisions"] > 0 for m in (a, b)), what="decisions")
    mm.wait(lambda: mm.json("engine", "status", "--json")["loop_busy"] is not None, what="a loop sample")
    health = mm.json("engine", "status", "--json")
    workers = health["workers"]
    assert [w["makers"] for w in workers] == [1, 1] and all(w["alive"] for w in workers)
    assert health["makers"] == 2 and health["loop_busy"] == max(w["loop_busy"] for w in workers)
    shown = mm("engine", "status").stdout
    assert "2 makers over 2 worker processes" in shown and "worker 1 (1 makers): event loop" in shown
    assert {m["id"]: m["status"] for m in mm.json("status", "--json")} == {a: "running", b: "running"}

    mm.kill_engine()  # SIGKILL: no shutdown reaches the workers; each sees its pipe close
    mm.wait(lambda: all(pid_gone(w["pid"]) for w in workers), timeout=30, what="the workers to exit")
    store = Store(db_url(mm.db))
    assert all(store.orders(m, open_only=True) == [] for m in (a, b))  # each cancelled its orders
    assert {r.maker_id for r in store.makers(status="running")} == {a, b}  # resumed at the next start
    store.close()


def test_ctrl_c_on_a_foreground_engine_shuts_its_workers_down_in_order(mm):
    """Ctrl-C reaches the terminal's whole process group: the workers leave it to the engine process,
    which stops them after their makers cancelled (killed by the signal, they would leave orders open)."""
    import subprocess
    import sys
    import time

    from live.livekit import pid_gone

    engine = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quotewise.cli",
            "engine",
            "start",
            "--foreground",
            "--db",
            mm.db,
            "--workers",
            "2",
        ],
        env=mm.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    try:
        mm.wait(lambda: mm.engine_info() is not None and mm("engine", "status", check=False).returncode == 0)
        paper = ("paper", "--data", "synthetic:3000000", "--speed", "5", "--strategy", "symmetric")
        makers = [mm("start", *paper, "--name", name).stdout.strip() for name in ("a", "b")]
        mm.wait(lambda: all(len(mm.json("status", m, "--json")["quotes"]) > 0 for m in makers), what="quotes")
        workers = [w["pid"] for w in mm.json("engine", "status", "--json")["workers"]]
        os.killpg(engine.pid, signal.SIGINT)
        assert engine.wait(timeout=60) in (0, -signal.SIGINT)  # uvicorn raises the signal again once done
        deadline = time.monotonic() + 20
        while not all(pid_gone(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived the engine"
            time.sleep(0.1)
    finally:
        if engine.poll() is None:
            os.killpg(engine.pid, signal.SIGKILL)
    store = Store(db_url(mm.db))
    assert all(store.orders(m, open_only=True) == [] for m in makers)
    shutdowns = [r for r in store.audit_rows() if r["action"] == "shutdown"]
    assert sorted(m for r in shutdowns for m in r["details"]["makers"]) == makers
    store.close()


class Unrebuildable(Exception):
    def __init__(self, what: str, where: int) -> None:  # pickle rebuilds it from args: (message,) only
        super().__init__(f"{what} at {where}")


def test_an_error_that_cannot_cross_the_pipe_crosses_as_its_text():
    from quotewise.errors import QuotewiseError
    from quotewise.live.workers import answer

    call_id, ok, error = pickle.loads(answer(7, False, Unrebuildable("bad", 3)))
    assert (call_id, ok) == (7, False)
    assert type(error) is QuotewiseError and str(error) == "Unrebuildable: bad at 3"
    crossed = pickle.loads(answer(8, False, ConfigError("no maker x")))[2]
    assert type(crossed) is ConfigError and str(crossed) == "no maker x"  # an error that can: itself
    assert pickle.loads(answer(9, True, {"makers": 2})) == (9, True, {"makers": 2})
