"""The live-exchange done-when check, through ``mm`` as a user runs it: ``mm venue serve`` emulates
Binance USD-M on a real day of BTCUSDT with dropped connections and 429s, the engine trades on it
through ccxt, is killed with SIGKILL mid-session and restarted, and in the end every fill the
exchange made is stored once, no more than one order a side was ever open, and the maker never
failed."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ccxt
import pytest

from conftest import shared_path
from live.livekit import MM, pid_gone
from quotewise.live.client import EngineClient
from quotewise.live.venues.endpoint import point_at

KEY, SECRET = "live-cli-key", "live-cli-secret"
MARKET = "BTC/USDT:USDT"
MAKER = "live1"
FAULTS = "drop=10s,429=0.05"
READY_WAIT_S = 60.0  # the emulator reads the whole day before it listens
FIRST_RUN_S = 30.0
DOWN_S = 5.0
SECOND_RUN_S = 25.0


@dataclass
class Emulator:
    """A running ``mm venue serve``: its URL, its process and where its output goes."""

    url: str
    proc: subprocess.Popen
    output: Path

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/emulator/stats", timeout=10) as r:
            return json.load(r)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def emulator(mm: MM, tmp_path: Path) -> Iterator[Emulator]:
    """``mm venue serve`` on the real day at twice real time, with faults; always terminated. Its
    output goes to a file (a pipe nobody reads would fill up and stall it)."""
    data = shared_path("binance", "usdm", "btcusdt_20240808.gz")
    port = free_port()
    output = tmp_path / "emulator.out"
    command = [
        sys.executable, "-m", "quotewise.cli", "venue", "serve", "binanceusdm", "--data", str(data),
        "--port", str(port), "--api-key", KEY, "--secret", SECRET, "--speed", "2", "--faults", FAULTS,
    ]  # fmt: skip
    with output.open("w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**mm.env, "PYTHONUNBUFFERED": "1"}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_WAIT_S
        while f"binanceusdm emulator on {url} (" not in output.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mm venue serve did not get ready:\n{output.read_text()}")
            time.sleep(0.2)
        yield Emulator(url, proc, output)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class StatusWatch:
    """Every status the maker showed while the engine was up: "running through" means no sample
    was ever anything else (a maker that failed and was resumed would otherwise go unnoticed)."""

    def __init__(self, mm: MM) -> None:
        self.mm = mm
        self.seen: list[str] = []

    def sample(self) -> dict[str, Any]:
        status = self.mm.json("status", MAKER, "--json")
        self.seen.append(status["status"])
        assert status["status"] == "running", f"{MAKER} left running: {status['status']}: {status['reason']}"
        return status

    def run_for(self, seconds: float, until_start: float) -> None:
        """Keep sampling until ``seconds`` after ``until_start`` (monotonic)."""
        while time.monotonic() < until_start + seconds:
            self.sample()
            time.sleep(0.5)


def quoting_and_filled(status: dict[str, Any]) -> bool:
    """Working quotes at the exchange and at least one fill: the maker really trades."""
    quotes = status["quotes"]
    return status["fills"] >= 1 and bool(quotes) and all(q["status"] == "working" for q in quotes)


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


def kill_engine(mm: MM) -> None:
    """SIGKILL, as a crash: no cancels, no goodbye; our orders stay at the exchange."""
    info = mm.engine_info()
    assert info is not None
    mm.kill_engine()
    mm.wait(lambda: pid_gone(int(info["pid"])), timeout=10, what="the killed engine to be gone")


@pytest.mark.slow
def test_engine_trades_on_the_emulator_through_faults_and_a_crash(
    mm: MM, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    since_ms = int(time.time() * 1000) - 60_000  # before any trade (the replay starts at the emulator)
    mm.env.update(QW_BINANCEUSDM_API_KEY=KEY, QW_BINANCEUSDM_SECRET=SECRET)
    watch = StatusWatch(mm)

    mm("engine", "start", "--db", mm.db)
    started = time.monotonic()
    maker = mm(
        "start", "binanceusdm", MARKET, "--endpoint", emulator.url, "--name", MAKER,
        "--strategy", "symmetric", "--spread", "1tick",
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    assert maker == MAKER
    mm.wait(lambda: quoting_and_filled(watch.sample()), timeout=FIRST_RUN_S + 30, what="quotes and a fill")
    watch.run_for(FIRST_RUN_S, started)

    kill_engine(mm)
    time.sleep(DOWN_S)  # our orders rest at the exchange meanwhile and may fill: the restart must book them
    mm("engine", "start", "--db", mm.db)
    restarted = time.monotonic()
    mm.wait(lambda: watch.sample()["status"] == "running", what=f"{MAKER} to resume")
    watch.run_for(SECOND_RUN_S, restarted)
    mm("stop", MAKER)

    stats = emulator.stats()
    # stopping cancelled every order, so no fill can come after the lists below are taken
    assert stats["open_orders"] == {"bid": 0, "ask": 0}, stats
    monkeypatch.setenv("QUOTEWISE_HOME", str(mm.home))
    client = EngineClient()
    stored = [str(f["trade_id"]) for f in client.fills(MAKER)]
    at_exchange = exchange_trade_ids(emulator.url, since_ms)
    assert at_exchange, "the maker never traded"
    assert len(stored) == len(set(stored)), f"a fill stored twice: {sorted(stored)}"
    assert sorted(stored) == sorted(at_exchange), (
        f"missing: {sorted(set(at_exchange) - set(stored))}, extra: {sorted(set(stored) - set(at_exchange))}"
    )
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
