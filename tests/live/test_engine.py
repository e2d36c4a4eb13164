"""The live engine in one process: makers quote on paper venues, change config, stop, fail alone,
and come back after a crash with every fill counted once."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import shared_path
from live.strategies_for_tests import raised_at
from quotewise.errors import ConfigError
from quotewise.live.engine import LiveEngine, MakerSpec, UnknownMaker, market_name
from quotewise.live.store import Store, db_url

HERE = Path(__file__).parent
DATA = "synthetic:600000"


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "live.db")))
    yield s
    s.close()


def spec(**kw) -> MakerSpec:
    params = {"spread": "1tick", "interval": "100ms"}
    base = {"market": "SYNTH", "data": DATA, "speed": 40.0, "params": params}
    return MakerSpec(**{**base, **kw})


async def until(check, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def quoted_sides(status: dict) -> list[str]:
    """The sides a maker quotes: its orders not being cancelled, one a side at most."""
    return sorted(q["side"] for q in status["quotes"] if q["status"] != "pending_cancel")


def quote_distance(status: dict) -> float:
    """Mean distance of our quotes from the mid, in price units."""
    mid = (status["best_bid"] + status["best_ask"]) / 2
    return sum(abs(q["price"] - mid) for q in status["quotes"]) / len(status["quotes"])


def test_two_makers_quote_fill_change_config_and_stop(store):
    async def scenario():
        engine = LiveEngine(store)
        await engine.start()
        a = await engine.start_maker(spec(), actor="test")
        b = await engine.start_maker(spec(data="synthetic:700000"), actor="test")
        await until(lambda: engine.makers[a].fills >= 3 and engine.makers[b].fills >= 3, what="fills")
        await until(lambda: len(engine.status(a)["quotes"]) == 2, what="quotes")
        before = quote_distance(engine.status(a))
        config = await engine.configure(a, {"spread": "8ticks", "max_pos": 50}, actor="test")
        assert config["version"] == 2 and config["params"]["spread"] == "8ticks"
        assert config["risk"]["max_pos"] == 50
        await until(lambda: engine.makers[a].guard is not None, what="the risk limit taken")
        config = await engine.configure(a, {"max_pos": None}, actor="test")  # null turns a limit off
        assert config["version"] == 3 and config["risk"] is None
        await until(lambda: engine.makers[a].guard is None, what="the risk limit off")
        await until(
            lambda: len(engine.status(a)["quotes"]) == 2 and quote_distance(engine.status(a)) > before + 0.05,
            what="wider quotes",
        )
        stopped = await engine.stop_maker(b, actor="test")
        assert stopped["status"] == "stopped"
        assert store.orders(b, open_only=True) == []
        other = engine.status(a)
        assert other["status"] == "running" and other["decisions"] > 0
        await engine.shutdown()
        return a, b

    a, b = asyncio.run(scenario())
    for maker_id in (a, b):
        fills = store.fills(maker_id)
        assert [f.seq for f in fills] == list(range(1, len(fills) + 1))
        assert store.position(maker_id).position == sum(f.side * f.qty for f in fills)
    actions = [(r["action"], r["maker_id"], r["actor"]) for r in store.audit_rows()]
    assert (
        ("start", a, "test") in actions
        and ("config", a, "test") in actions
        and ("stop", b, "test") in actions
    )
    assert store.maker(a).config_version == 3 and store.maker(b).status == "stopped"


def test_a_crashed_engine_resumes_with_every_fill_counted_once(store):
    async def first_life():
        engine = LiveEngine(store)
        maker_id = await engine.start_maker(
            spec(params={"spread": "1tick", "interval": "50ms"}), actor="test"
        )
        await until(lambda: engine.makers[maker_id].fills >= 5, what="fills")
        for tasks in engine._tasks.values():  # what SIGKILL leaves: tasks gone, nothing cleaned up
            for task in tasks:
                task.cancel()
        await asyncio.sleep(0.05)
        return maker_id, engine.makers[maker_id].fills

    async def second_life(maker_id, fills_before):
        engine = LiveEngine(store)
        assert await engine.start() == [maker_id]
        await until(lambda: engine.makers[maker_id].fills >= fills_before + 5, what="fills after restart")
        status = engine.status(maker_id)
        stored = len(store.fills(maker_id))
        await engine.shutdown()
        return status, stored

    maker_id, fills_before = asyncio.run(first_life())
    stored_before = store.fills(maker_id)
    status, stored_then = asyncio.run(second_life(maker_id, fills_before))
    fills = store.fills(maker_id)
    assert [f.seq for f in fills] == list(range(1, len(fills) + 1))  # no gap, no duplicate
    assert fills[: len(stored_before)] == stored_before  # the earlier ones unchanged
    assert store.position(maker_id).position == sum(f.side * f.qty for f in fills)
    assert status["fills"] == stored_then
    assert store.orders(maker_id, open_only=True) == []  # every order row ended: filled, closed, cancelled
    resume = [r for r in store.audit_rows(maker_id) if r["action"] == "resume"]
    assert len(resume) == 1 and "fills_recovered" in resume[0]["details"]


def test_kept_warm_idle_makers_rehearse_and_quote_as_usual(store):
    async def scenario():
        engine = LiveEngine(store, keep_warm_s=0.002)
        maker_id = await engine.start_maker(spec(speed=1.0), actor="test")
        maker = engine.makers[maker_id]
        rehearsals = []
        rehearse = maker.rehearse
        maker.rehearse = lambda: rehearsals.append(1) or rehearse()
        await until(lambda: len(rehearsals) >= 10 and maker.decisions >= 3, what="rehearsals and decisions")
        await until(lambda: quoted_sides(engine.status(maker_id)) == ["ask", "bid"], what="a bid and an ask")
        await engine.shutdown()
        assert engine.scheduler._warmer is None and maker.state == "stopping"
        return maker_id

    maker_id = asyncio.run(scenario())
    assert store.orders(maker_id, open_only=True) == []  # shutdown cancelled them as usual


def test_a_failing_maker_is_marked_failed_and_the_others_go_on(store, caplog):
    async def scenario():
        engine = LiveEngine(store)
        good = await engine.start_maker(spec(), actor="test")
        bad = await engine.start_maker(
            spec(strategy=f"{HERE / 'strategies_for_tests.py'}:Exploding", params={})
        )
        await until(lambda: store.maker(bad).status == "failed", what="the failure")
        decided = engine.makers[good].decisions
        await until(lambda: engine.makers[good].decisions > decided + 5, what="the healthy maker deciding")
        shown = engine.status(bad)["traceback"]
        await engine.shutdown()
        return bad, shown, engine.status(good)["traceback"]

    with caplog.at_level(logging.INFO, logger="quotewise.live.engine"):
        bad, shown, healthy = asyncio.run(scenario())
    assert "this strategy always fails" in store.maker(bad).reason
    assert raised_at() in store.maker(bad).traceback and shown == store.maker(bad).traceback
    assert healthy is None
    [failed] = [r for r in caplog.records if r.getMessage() == "maker failed"]
    assert failed.kv["maker"] == bad and failed.exc_info[1].args == ("this strategy always fails",)


def test_a_slow_strategy_moves_to_a_thread_and_does_not_stall_the_others(store):
    async def scenario():
        engine = LiveEngine(store)
        good = await engine.start_maker(spec(params={"spread": "1tick", "interval": "20ms"}), actor="test")
        slow = await engine.start_maker(
            spec(strategy=f"{HERE / 'strategies_for_tests.py'}:Sleepy", params={"interval": "20ms"})
        )
        await until(lambda: engine.makers[slow].offload, what="the slow maker to be moved to a thread")
        sleepy = engine.makers[slow].strategy
        sleepy.watch = lambda: engine.makers[good].decisions
        # 20 ms of market time at 40x is 0.5 ms of wall time: the healthy maker has decisions due all
        # the time; held by a strategy that thinks in the event loop, it could take none of them
        # while that strategy sleeps
        await until(
            lambda: sum(after > before for before, after in sleepy.seen) >= 10,
            what="the healthy maker to decide while the slow one thinks",
        )
        assert engine.status(slow)["slow_strategy"] is True
        await engine.shutdown()

    asyncio.run(scenario())


def test_a_refused_order_write_is_logged_and_its_states_go_with_a_later_one(store, tmp_path, caplog):
    db = sqlite3.connect(tmp_path / "live.db")

    def refused() -> bool:
        return any(r.getMessage() == "order states not written" for r in caplog.records)

    async def scenario():
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON orders BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        db.commit()
        engine = LiveEngine(store)
        maker = await engine.start_maker(spec(), actor="test")
        await until(refused, what="a refused write")
        assert store.orders(maker) == [] and engine.makers[maker].state == "running"
        db.execute("DROP TRIGGER refuse")
        db.commit()
        await until(lambda: store.orders(maker), what="the order states written")
        await engine.shutdown()

    with caplog.at_level(logging.ERROR, logger="quotewise.live.engine"):
        asyncio.run(scenario())
    db.close()
    [first, *_] = [r for r in caplog.records if r.getMessage() == "order states not written"]
    assert "disk full" in first.kv["error"] and first.kv["queued"] > 0


def test_bad_requests_change_nothing(store):
    async def scenario():
        engine = LiveEngine(store)
        with pytest.raises(UnknownMaker, match="mm-nope"):
            engine.status("mm-nope")
        with pytest.raises(UnknownMaker):
            await engine.configure("mm-nope", {"spread": "2ticks"})
        with pytest.raises(ConfigError, match="size"):
            await engine.start_maker(spec(params={"size": -1}))
        with pytest.raises(ConfigError, match="not found"):
            await engine.start_maker(spec(data="/no/such/file.gz"))
        with pytest.raises(ConfigError, match="max_pos"):
            await engine.start_maker(spec(risk={"max_pos": -3}))
        assert store.makers() == [] and store.audit_rows() == []
        maker_id = await engine.start_maker(spec(), actor="test")
        with pytest.raises(ConfigError, match="spread"):
            await engine.configure(maker_id, {"spread": "wide"})
        assert store.maker(maker_id).config_version == 1
        await engine.shutdown()

    asyncio.run(scenario())


def test_a_maker_whose_data_ends_finishes_with_no_order_open(store):
    async def scenario():
        engine = LiveEngine(store)
        maker_id = await engine.start_maker(spec(data="synthetic:50000", speed=20.0), actor="test")  # 1.6 s
        maker = engine.makers[maker_id]
        answers = []  # what the venue answered itself once its data ended
        on_responses = maker.on_responses

        def heard(responses):
            answers.extend(r for r, _ in responses if r.reason == "data ended")
            on_responses(responses)

        maker.on_responses = heard
        await until(lambda: store.maker(maker_id).status == "finished", what="the end of the data")
        status = engine.status(maker_id)
        await engine.shutdown()
        return maker_id, status, answers

    maker_id, status, answers = asyncio.run(scenario())
    assert status["status"] == "finished" and status["decisions"] > 0
    assert status["quotes"] == []
    assert maker_id not in store.open_orders() and store.orders(maker_id, open_only=True) == []
    assert answers and {r.kind for r in answers} <= {"cancelled", "rejected"}
    stored = {o.order_id: o.status for o in store.orders(maker_id)}
    assert [stored[r.order_id] for r in answers] == [r.kind for r in answers]
    assert [r["action"] for r in store.audit_rows(maker_id)] == ["start", "finished"]


def test_the_market_is_the_datas_and_defaults_to_it(store):
    async def scenario():
        engine = LiveEngine(store)
        with pytest.raises(ConfigError, match=r"^market BTCUSDT does not match the data: .* holds SYNTH$"):
            await engine.start_maker(spec(market="BTCUSDT"))
        assert store.makers() == [] and store.audit_rows() == [] and engine.makers == {}
        named = await engine.start_maker(spec(market="synth"), actor="test")
        default = await engine.start_maker(spec(market=None), actor="test")
        await engine.shutdown()
        return named, default

    named, default = asyncio.run(scenario())
    assert (store.maker(named).market, store.maker(default).market) == ("synth", "SYNTH")
    started = [r["details"]["market"] for r in store.audit_rows() if r["action"] == "start"]
    assert started == ["synth", "SYNTH"]


def test_market_names_match_up_to_case_and_separators():
    for asked in ("BTCUSDT", "BTC/USDT", "btc-usdt", "BTC_USDT", "BTC:USDT"):
        assert market_name(asked, "BTCUSDT", "btc.gz") == asked
    with pytest.raises(ConfigError, match=r"market ETH/USDT does not match the data: btc\.gz holds BTCUSDT"):
        market_name("ETH/USDT", "BTCUSDT", "btc.gz")
    assert market_name(None, "BTCUSDT", "btc.gz") == "BTCUSDT"
    assert market_name("AMZN", "UNKNOWN", "book.npz") == "AMZN"  # data that names no market takes any
    with pytest.raises(ConfigError, match=r"book\.npz does not name its market"):
        market_name(None, "UNKNOWN", "book.npz")


def test_a_coin_m_maker_counts_its_pnl_in_coins(store):
    """Live, the same contract arithmetic as the backtest: on COIN-M BTCUSD_PERP (100 USD contracts)
    cash is sum(side x qty x 100 / price) - fees in BTC, and status says so."""
    data = str(shared_path("binance", "cm", "btcusd_perp_20240808.gz"))

    async def scenario():
        engine = LiveEngine(store)
        await engine.start()
        maker = await engine.start_maker(spec(market="BTCUSD_PERP", data=data, speed=60.0), actor="test")
        await until(lambda: engine.makers[maker].fills >= 3, timeout=60, what="fills")
        await engine.stop_maker(maker, actor="test")
        return engine.status(maker), engine.fills(maker)

    status, fills = asyncio.run(scenario())
    coins = sum((1 if f["side"] == "buy" else -1) * f["size"] * 100 / f["price"] for f in fills)
    assert status["currency"] == "BTC"
    assert status["cash"] == pytest.approx(coins - sum(f["fee"] for f in fills), rel=1e-9)
    traded = sum(f["size"] * 100 / f["price"] for f in fills)  # coins; read as linear: ~61,800 a contract
    assert abs(status["cash"]) <= traded + abs(sum(f["fee"] for f in fills))
