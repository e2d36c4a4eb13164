"""The Binance USD-M emulator, exercised by a stock ccxt.pro client pointed at it: the wire protocol,
auth, limits, the countdown kill switch, every injected fault, and the ``mm venue serve`` command."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.pro as ccxtpro
import pytest
from ccxt.base.errors import (
    AuthenticationError,
    DDoSProtection,
    ExchangeNotAvailable,
    RequestTimeout,
)

from conftest import shared_path
from quotewise.errors import ConfigError
from quotewise.live.venues.binance_emulator import BinanceEmulator, Limits
from quotewise.live.venues.binance_faults import Faults, parse_faults
from quotewise.live.venues.endpoint import point_at

KEY, SECRET = "test-key", "test-secret"
SYNTH = "ETH/USDT:USDT"
BOOK_WAIT_S = 20.0


@asynccontextmanager
async def emulated(
    data: str = "synthetic", secret: str = SECRET, **kwargs: Any
) -> AsyncIterator[tuple[BinanceEmulator, Any, str]]:
    """A running emulator, a stock ccxt.pro client pointed at it, and the base URL."""
    kwargs.setdefault("symbol", "ETHUSDT" if data == "synthetic" else None)
    kwargs.setdefault("speed", 20)
    emulator = BinanceEmulator(data, KEY, SECRET, **kwargs)
    port = await emulator.start()
    url = f"http://127.0.0.1:{port}"
    exchange = ccxtpro.binanceusdm({"apiKey": KEY, "secret": secret})
    point_at(exchange, url)
    try:
        yield emulator, exchange, url
    finally:
        await exchange.close()
        await emulator.stop()


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = BOOK_WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def two_sided_book(exchange: Any, symbol: str) -> dict:
    async def book() -> dict | None:
        ob = await exchange.fetch_order_book(symbol, 5)
        return ob if ob["bids"] and ob["asks"] else None

    return await until(book, "a two-sided book")


async def round_trip(exchange: Any, symbol: str, amount: float) -> None:
    """The done-when check: markets, book, a post-only order placed, seen and cancelled, the
    streamed book, then an order at the touch that fills and shows in our trades."""
    markets = await exchange.load_markets()
    assert symbol in markets and markets[symbol]["active"]
    ob = await two_sided_book(exchange, symbol)
    assert ob["bids"][0][0] < ob["asks"][0][0] and ob["nonce"] > 0
    far = exchange.price_to_precision(symbol, ob["bids"][0][0] * 0.98)
    watching = asyncio.create_task(exchange.watch_orders(symbol))
    await asyncio.sleep(0.5)
    order = await exchange.create_order(symbol, "limit", "buy", amount, float(far), {"timeInForce": "GTX"})
    assert order["status"] == "open"
    streamed = await asyncio.wait_for(watching, 10)
    assert streamed[-1]["id"] == order["id"]
    assert [o["id"] for o in await exchange.fetch_open_orders(symbol)] == [order["id"]]
    cancelled = await exchange.cancel_order(order["id"], symbol)
    assert cancelled["status"] == "canceled"
    assert await exchange.fetch_open_orders(symbol) == []
    for _ in range(3):
        book = await asyncio.wait_for(exchange.watch_order_book(symbol), 10)
    assert book["bids"][0][0] < book["asks"][0][0]
    ob = await two_sided_book(exchange, symbol)
    taker = await exchange.create_order(symbol, "limit", "buy", amount, ob["asks"][0][0] * 1.001)

    async def filled() -> list:
        return [t for t in await exchange.fetch_my_trades(symbol) if t["order"] == taker["id"]]

    trades = await until(filled, "the order at the touch to fill")
    assert trades[0]["side"] == "buy" and trades[0]["amount"] > 0


def test_stock_ccxt_trades_against_synthetic_data() -> None:
    async def scenario() -> None:
        async with emulated() as (emulator, exchange, _):
            await round_trip(exchange, SYNTH, 1)
            assert emulator.trades and emulator.trades[-1]["id"] == len(emulator.trades)

    asyncio.run(scenario())


def test_stock_ccxt_trades_against_binance_data() -> None:
    path = shared_path("binance", "usdm", "btcusdt_20240808.gz")

    async def scenario() -> None:
        async with emulated(str(path), speed=5) as (_, exchange, _):
            await round_trip(exchange, "BTC/USDT:USDT", 0.002)

    asyncio.run(scenario())


def test_wrong_secret_is_an_authentication_error() -> None:
    async def scenario() -> None:
        async with emulated(secret="not-the-secret") as (_, exchange, _):
            with pytest.raises(AuthenticationError):
                await exchange.fetch_balance()

    asyncio.run(scenario())


def test_missing_api_key_and_stale_timestamp_are_refused() -> None:
    async def scenario() -> None:
        async with emulated() as (_, _, url), aiohttp.ClientSession() as http:
            async with http.get(f"{url}/fapi/v1/openOrders?timestamp=1&signature=00") as r:
                assert r.status == 401 and (await r.json())["code"] == -2015
            query = "timestamp=1000"  # signed right, but long past the receive window
            signed = f"{url}/fapi/v1/openOrders?{query}&signature={_sign(query)}"
            async with http.get(signed, headers={"X-MBX-APIKEY": KEY}) as r:
                assert r.status == 400 and (await r.json())["code"] == -1021

    asyncio.run(scenario())


def _sign(query: str) -> str:
    return hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()


def test_request_weight_limit_throttles_then_bans() -> None:
    async def scenario() -> None:
        limits = Limits(weight_1m=3, strikes_to_ban=2, ban_s=5)
        async with emulated(limits=limits) as (emulator, _, url), aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(7):
                async with http.get(f"{url}/fapi/v1/time") as r:
                    statuses.append(r.status)
                    used = r.headers["X-MBX-USED-WEIGHT-1M"]
                    if r.status in (418, 429):
                        assert (await r.json())["code"] == -1003 and int(r.headers["Retry-After"]) > 0
            assert statuses[:3] == [200, 200, 200] and statuses[3] == 429 and statuses[-1] == 418
            assert int(used) > 3 and emulator.limiter.banned >= 1

    asyncio.run(scenario())


# -- faults -----------------------------------------------------------------------------------------
def test_fault_spec_is_parsed() -> None:
    faults = parse_faults("drop=10s,429=0.05,5xx=2%,ack_delay=200ms,dup=0.01,reorder=0.01,gap=30s,skew=-2s")
    assert faults == Faults(10.0, 0.05, 0.02, 0.2, 0.01, 0.01, 30.0, -2.0)
    assert parse_faults(None) == Faults() and parse_faults("") == Faults()


@pytest.mark.parametrize(
    ("spec", "named"),
    [("drop", "'drop'"), ("lag=1s", "'lag'"), ("429=2", "429=2"), ("dup=x", "dup=x"), ("gap=-1s", "gap")],
)
def test_bad_fault_spec_names_the_bad_part(spec: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_faults(spec)


async def _stream(url: str, path: str, streams: list[str], seconds: float) -> tuple[list[dict], bool]:
    """Messages received on ``path`` for ``seconds`` after subscribing, and whether the server
    closed the connection."""
    received: list[dict] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url.replace("http", "ws") + path) as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": streams, "id": 1})
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                return received, True
            received.append(json.loads(msg.data))
    return received, False


def test_stream_faults_gap_dup_reorder_and_drop_are_visible() -> None:
    async def scenario() -> None:
        faults = "gap=400ms,dup=0.2,reorder=0.2,drop=2500ms,seed=3"
        async with emulated(faults=faults) as (emulator, exchange, url):
            await two_sided_book(exchange, SYNTH)
            messages, dropped = await _stream(
                url, "/public/ws/0", ["ethusdt@depth@100ms", "ethusdt@trade"], 4
            )
            assert {"result": None, "id": 1} in messages
            depth = [m for m in messages if m.get("e") == "depthUpdate"]
            ids = [m["t"] for m in messages if m.get("e") == "trade"]
            assert any(b["pu"] != a["u"] and b["U"] > a["u"] for a, b in pairwise(depth))
            assert len(ids) > len(set(ids)), "no duplicated message"
            assert any(b < a for a, b in pairwise(ids)), "no swapped messages"
            assert dropped, "the drop fault did not close the connection"
            counts = emulator.fault_counts
            assert all(counts[name] > 0 for name in ("gap", "dup", "reorder", "drop"))

    asyncio.run(scenario())


def test_rest_faults_429_and_5xx_reach_ccxt_as_its_errors() -> None:
    async def scenario() -> None:
        async with emulated(faults="429=0.3,5xx=0.3,seed=1") as (emulator, exchange, url):
            errors: list[type] = []
            for _ in range(30):
                try:
                    await exchange.fetch_time()
                except (DDoSProtection, ExchangeNotAvailable) as exc:
                    errors.append(type(exc))
            assert any(issubclass(e, DDoSProtection) for e in errors)
            assert any(issubclass(e, ExchangeNotAvailable) for e in errors)
            async with aiohttp.ClientSession() as http, http.get(f"{url}/emulator/stats") as r:
                stats = await r.json()
            assert stats["faults"]["429"] == emulator.fault_counts["429"] > 0

    asyncio.run(scenario())


def test_ack_delay_holds_the_answer_but_places_the_order() -> None:
    async def scenario() -> None:
        async with emulated(faults="ack_delay=800ms") as (emulator, exchange, _):
            await exchange.load_markets()
            ob = await two_sided_book(exchange, SYNTH)
            far = float(exchange.price_to_precision(SYNTH, ob["bids"][0][0] * 0.98))
            exchange.timeout = 300  # ms: the client gives up before the answer comes
            with pytest.raises(RequestTimeout):
                await exchange.create_order(SYNTH, "limit", "buy", 1, far, {"clientOrderId": "mine-1"})
            exchange.timeout = 10_000
            found = await exchange.fetch_order(None, SYNTH, {"origClientOrderId": "mine-1"})
            assert found["clientOrderId"] == "mine-1" and found["status"] == "open"
            assert emulator.fault_counts["ack_delay"] == 1

    asyncio.run(scenario())


def test_skew_moves_the_server_clock() -> None:
    async def scenario() -> None:
        async with emulated(faults="skew=5s") as (emulator, exchange, _):
            offset = await exchange.fetch_time() - time.time() * 1000
            assert 4_500 < offset < 5_500 and emulator.fault_counts["skew"] == 1

    asyncio.run(scenario())


# -- the countdown kill switch ----------------------------------------------------------------------
def test_countdown_cancels_all_unless_renewed() -> None:
    async def scenario() -> None:
        async with emulated() as (emulator, exchange, _):
            await exchange.load_markets()
            ob = await two_sided_book(exchange, SYNTH)
            far = float(exchange.price_to_precision(SYNTH, ob["bids"][0][0] * 0.98))
            await exchange.create_order(SYNTH, "limit", "buy", 1, far, {"timeInForce": "GTX"})
            exchange.enableRateLimit = False  # ccxt's own pacing would space the renewals out
            for _ in range(4):  # renewed in time: nothing is cancelled
                await exchange.fapiPrivatePostCountdownCancelAll({"symbol": "ETHUSDT", "countdownTime": 1000})
                await asyncio.sleep(0.3)
            assert len(await exchange.fetch_open_orders(SYNTH)) == 1
            await asyncio.sleep(1.5)  # not renewed: all cancelled
            assert await exchange.fetch_open_orders(SYNTH) == []
            assert emulator.stats["countdown_cancels"] == 1
            await exchange.create_order(SYNTH, "limit", "buy", 1, far, {"timeInForce": "GTX"})
            await exchange.fapiPrivatePostCountdownCancelAll({"symbol": "ETHUSDT", "countdownTime": 300})
            await exchange.fapiPrivatePostCountdownCancelAll({"symbol": "ETHUSDT", "countdownTime": 0})
            await asyncio.sleep(0.6)  # disarmed: the order stays
            assert len(await exchange.fetch_open_orders(SYNTH)) == 1

    asyncio.run(scenario())


# -- the command ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mm_venue_serve_answers_until_killed() -> None:
    port = _free_port()
    mm = Path(sys.executable).with_name("mm")
    cmd = [str(mm), "venue", "serve", "binanceusdm", "--data", "synthetic", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--api-key", KEY, "--secret", SECRET, "--symbol", "ETHUSDT"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"binanceusdm emulator on http://127.0.0.1:{port} (ETHUSDT" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/fapi/v1/time", timeout=5) as r:
            assert abs(json.load(r)["serverTime"] - time.time() * 1000) < 5_000
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_mm_venue_serve_refuses_an_unknown_exchange() -> None:
    mm = Path(sys.executable).with_name("mm")
    cmd = [str(mm), "venue", "serve", "kraken", "--data", "synthetic", "--api-key", KEY, "--secret", SECRET]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown exchange 'kraken'" in done.stderr
