"""The live-exchange done-when check, through ``mm`` as a user runs it: ``mm venue serve`` emulates
Binance USD-M on a real day of BTCUSDT with dropped connections and 429s, the engine trades on it
through ccxt, is killed with SIGKILL mid-session and restarted, and in the end every fill the
exchange made is stored once, no more than one order a side was ever open, and the maker never
failed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import ccxt
import pytest
from venuekit import Emulator, Session, serve, stored_equals_venue, trade_through_a_crash

from conftest import shared_path
from live.livekit import MM
from quotewise.live.client import EngineClient
from quotewise.live.venues.endpoint import point_at

KEY, SECRET = "live-cli-key", "live-cli-secret"
MARKET = "BTC/USDT:USDT"
MAKER = "live1"
FAULTS = "drop=6s,429=0.05"
FIRST_RUN_S = 20.0
DOWN_S = 5.0
SECOND_RUN_S = 15.0


@pytest.fixture
def emulator(mm: MM, tmp_path: Path) -> Iterator[Emulator]:
    """``mm venue serve`` on the real day at twice real time, with faults."""
    data = shared_path("binance", "usdm", "btcusdt_20240808.gz")
    args = ["--data", str(data), "--api-key", KEY, "--secret", SECRET, "--speed", "2", "--faults", FAULTS]
    with serve(mm, tmp_path, "binanceusdm", *args) as running:
        yield running


def exchange_trade_ids(url: str, since_ms: int) -> list[str]:
    """Our trade ids as the exchange lists them, fetched by a stock ccxt client (retrying the
    emulator's injected 429s: they hit this client as much as the engine)."""
    exchange = ccxt.binanceusdm({"apiKey": KEY, "secret": SECRET})
    point_at(exchange, url)
    for _ in range(20):
        try:
            trades = exchange.fetch_my_trades(MARKET, since=since_ms, limit=1000)
            break
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection):
            time.sleep(1.0)
    else:
        raise AssertionError("the emulator kept answering 429 to fetch_my_trades")
    assert len(trades) < 1000, "more trades than one page: page through them"
    return [str(t["id"]) for t in trades]


@pytest.mark.slow
def test_engine_trades_on_the_emulator_through_faults_and_a_crash(
    mm: MM, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    since_ms = int(time.time() * 1000) - 60_000  # before any trade (the replay starts at the emulator)
    mm.env.update(QW_BINANCEUSDM_API_KEY=KEY, QW_BINANCEUSDM_SECRET=SECRET)
    mm("engine", "start", "--db", mm.db)
    args = ["binanceusdm", MARKET, "--endpoint", emulator.url, "--strategy", "symmetric", "--spread", "1tick"]
    watch = trade_through_a_crash(mm, MAKER, args, Session(FIRST_RUN_S, DOWN_S, SECOND_RUN_S))

    stats = emulator.stats()
    # stopping cancelled every order, so no fill can come after the lists below are taken
    assert stats["open_orders"] == {"bid": 0, "ask": 0}, stats
    monkeypatch.setenv("QUOTEWISE_HOME", str(mm.home))
    client = EngineClient()
    stored = [str(f["trade_id"]) for f in client.fills(MAKER)]
    at_exchange = exchange_trade_ids(emulator.url, since_ms)
    stored_equals_venue(stored, at_exchange)
    assert stats["trades"] == len(at_exchange)

    # the symmetric strategy quotes one order a side (--max-orders 1): never two alive at once,
    # even across a timed-out place, a reconnect or the crash
    assert stats["peak_open_orders"]["bid"] <= 1 and stats["peak_open_orders"]["ask"] <= 1, stats
    assert stats["faults"].get("drop", 0) >= 3 and stats["faults"].get("429", 0) > 0, stats["faults"]

    assert set(watch.seen) == {"running"}
    assert client.status(MAKER)["status"] == "stopped"
    actions = [row["action"] for row in client.audit(MAKER)]
    assert "resume" in actions and "resume_failed" not in actions and "failed" not in actions, actions
    mm("engine", "stop")
