"""Kalshi through our own client: the client's signed requests against the local Kalshi emulator
(driven by our exchange simulator), and the ccxt venue trading on it through the ccxt-shaped adapter
(place, fill, cancel, restart, post-only refusals, fees, faults)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from quotewise.book.orderbook import OrderBook
from quotewise.data.kalshi import write_capture
from quotewise.data.synthetic import synthetic_binary
from quotewise.errors import ConfigError
from quotewise.live.venues.ccxt_venue import CcxtVenue
from quotewise.live.venues.kalshi_client import (
    MAKER_RATE,
    TAKER_RATE,
    AuthError,
    InvalidOrder,
    KalshiClient,
    KalshiStream,
    NotFound,
    kalshi_fee,
)
from quotewise.live.venues.kalshi_emulator import KalshiEmulator
from quotewise.live.venues.kalshi_exchange import KalshiExchange
from quotewise.model.events import ASK, BID, TRADE

TICKER = "KXQWTEST-26DEC31-B50"
N_EVENTS = 30_000  # about 19 s of market at speed 1


def _key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


PRIVATE, PUBLIC = _key()


@pytest.fixture(scope="module")
def market_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A synthetic binary market written as a Kalshi websocket capture (what the emulator replays)."""
    data = synthetic_binary(N_EVENTS, seed=3)
    return str(write_capture(data, tmp_path_factory.mktemp("kalshi") / "capture.txt", TICKER))


@contextlib.asynccontextmanager
async def emulator(data: str, faults: str | None = None, **kw: Any) -> AsyncIterator[KalshiEmulator]:
    em = KalshiEmulator(data, f"key-{uuid.uuid4()}", PUBLIC, speed=1.0, faults=faults, ticker=TICKER, **kw)
    await em.start()
    try:
        yield em
    finally:
        await em.stop()


def host(em: KalshiEmulator) -> str:
    return f"http://127.0.0.1:{em.port}"


def client_of(em: KalshiEmulator, pem: bytes = PRIVATE) -> KalshiClient:
    return KalshiClient(em.api_key, pem, host(em))


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def touch(client: KalshiClient) -> tuple[int, int]:
    """(best YES bid, best YES ask) in cents, once both sides are quoted."""
    for _ in range(100):
        book = await client.get_orderbook(TICKER)
        if book["yes"] and book["no"]:
            return max(p for p, _ in book["yes"]), 100 - max(p for p, _ in book["no"])
        await asyncio.sleep(0.05)
    raise AssertionError("the book never had both sides")


async def messages(stream: KalshiStream, want: Callable[[dict], bool], timeout: float = 5.0) -> dict:
    """The first message ``want`` accepts."""

    async def first() -> dict:
        async for message in stream:
            if want(message):
                return message
        raise AssertionError("stream ended")

    return await asyncio.wait_for(first(), timeout)


def test_kalshi_fees_follow_the_fee_schedule():
    assert kalshi_fee(100, 50) == Decimal("1.75")  # 0.07 x 100 x 0.5 x 0.5, exactly
    assert kalshi_fee(1, 50) == Decimal("0.02")  # 0.0175 rounded up to the cent
    assert kalshi_fee(10, 50) == Decimal("0.18")
    assert kalshi_fee(100, 50, MAKER_RATE) == Decimal("0.44")
    assert kalshi_fee(100, 5) == Decimal("0.34")
    assert kalshi_fee(100, 5, TAKER_RATE) == kalshi_fee(100, 95)


def test_the_emulator_takes_a_binary_market_and_an_rsa_public_key_only():
    with pytest.raises(ConfigError, match="not a binary market"):
        KalshiEmulator("synthetic:5000", "key", PUBLIC)
    with pytest.raises(ConfigError, match="not an RSA public key"):
        KalshiEmulator("synthetic:5000", "key", b"not a key")


def test_requests_are_signed_and_a_wrong_key_or_a_stale_clock_is_refused(market_file: str):
    async def scenario() -> None:
        async with emulator(market_file) as em:
            good = client_of(em)
            other_private, _ = _key()
            bad = client_of(em, other_private)
            try:
                assert (await good.get_balance())["balance"] == 10_000_000
                with pytest.raises(AuthError) as refused:
                    await bad.get_balance()
                assert refused.value.status == 401
                with pytest.raises(AuthError):
                    await bad.connect_ws()
                stream = await good.connect_ws()
                await stream.close()
                assert (await good.get_exchange_status())["exchange_active"] is True
                assert em.stats["auth_failures"] == 2
            finally:
                await good.close()
                await bad.close()
        async with emulator(market_file, faults="skew=10s") as em:  # the exchange's clock 10 s ahead
            late = client_of(em)
            try:
                with pytest.raises(AuthError, match="timestamp"):
                    await late.get_balance()
            finally:
                await late.close()

    asyncio.run(scenario())


def test_orders_rest_fill_and_cancel_over_rest_and_the_websocket(market_file: str):
    async def scenario() -> None:
        async with emulator(market_file) as em:
            client = client_of(em)
            await touch(client)  # the replay has both sides quoted
            stream = await client.connect_ws()
            try:
                await stream.subscribe(["orderbook_delta", "trade", "fill", "user_orders"], [TICKER])
                snapshot = await messages(stream, lambda m: m["type"] == "orderbook_snapshot")
                assert snapshot["seq"] == 1 and snapshot["msg"]["yes"] and snapshot["msg"]["no"]
                delta = await messages(stream, lambda m: m["type"] == "orderbook_delta")
                assert delta["sid"] == snapshot["sid"] and delta["seq"] >= 2
                bid, ask = await touch(client)
                # a resting bid below the touch, listed, then cancelled
                rest = await client.create_order(
                    TICKER, "yes", "buy", 3, yes_price=bid - 5, client_order_id="rest-1", post_only=True
                )
                assert rest["status"] == "resting" and rest["remaining_count"] == 3
                listed = await client.get_orders(TICKER, status="resting")
                assert [o["order_id"] for o in listed] == [rest["order_id"]]
                found = await client.get_order_by_client_id("rest-1", TICKER)
                assert found["order_id"] == rest["order_id"]
                cancelled = await client.cancel_order(rest["order_id"])
                assert cancelled["status"] == "canceled"
                with pytest.raises(NotFound):
                    await client.cancel_order(rest["order_id"])
                # buying NO above the YES bid's complement crosses the bid: a taker sale of YES
                bid, ask = await touch(client)
                taker = await client.create_order(
                    TICKER, "no", "buy", 2, no_price=100 - bid, client_order_id="t-1"
                )
                fill = await messages(stream, lambda m: m["type"] == "fill")
                assert fill["msg"]["order_id"] == taker["order_id"] and fill["msg"]["is_taker"] is True
                fills = await client.get_fills(TICKER)
                assert [f["trade_id"] for f in fills] == [f["trade_id"] for f in em.fills]
                assert fill["msg"]["trade_id"] in {f["trade_id"] for f in fills}
                for f in fills:
                    assert Decimal(f["fee_cost"]) == kalshi_fee(f["count"], f["yes_price"])
                positions = await client.get_positions(TICKER)
                assert positions[0]["position"] == -sum(f["count"] for f in fills)
                # several resting orders cancelled at once
                bid, _ = await touch(client)
                for i in range(3):
                    await client.create_order(
                        TICKER, "yes", "buy", 1, yes_price=max(bid - 6 - i, 1), client_order_id=f"b-{i}"
                    )
                assert await client.cancel_all(TICKER, client_prefix="b-") == 3
                assert await client.get_orders(TICKER, status="resting") == []
                # post-only crossing: refused with Kalshi's code
                _, ask = await touch(client)
                with pytest.raises(InvalidOrder) as crossed:
                    await client.create_order(TICKER, "yes", "buy", 1, yes_price=ask, post_only=True)
                assert crossed.value.code == "post_only_cross"
            finally:
                await stream.close()
                await client.close()

    asyncio.run(scenario())


class Answers:
    """A venue listener that keeps what the venue said about our orders."""

    def __init__(self) -> None:
        self.responses: list[tuple[Any, int]] = []
        self.book = OrderBook(1, 100)  # the YES book the market events build
        self.trades = 0

    def on_market(self, events: Any) -> None:
        self.book.apply(events)
        self.trades += int((events["kind"] == TRADE).sum())

    def on_responses(self, responses: list) -> None:
        self.responses += responses

    def kinds(self, order_id: int) -> list[str]:
        return [r.kind for r, _ in self.responses if r.order_id == order_id]

    def fills(self) -> list[Any]:
        return [r for r, _ in self.responses if r.kind == "fill"]


async def running_venue(
    em: KalshiEmulator, maker: str = "m1", **kw: Any
) -> tuple[CcxtVenue, Answers, asyncio.Task]:
    venue = CcxtVenue(maker, KalshiExchange(em.api_key, PRIVATE, host(em)), TICKER, deadman_ms=0, **kw)
    answers = Answers()
    venue.subscribe(answers)
    await venue.connect()
    task = asyncio.create_task(venue.run())
    await until(lambda: venue.trusted, 10, "a trusted book")
    return venue, answers, task


async def halt(venue: CcxtVenue, task: asyncio.Task) -> None:
    """What a crash leaves: the tasks gone, nothing cancelled, the connections closed."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await venue.aclose()


def ticks_of(venue: CcxtVenue, em: KalshiEmulator) -> tuple[int, int]:
    bid, ask = em.book.best_bid, em.book.best_ask
    assert bid is not None and ask is not None
    return bid, ask


def test_the_ccxt_venue_quotes_fills_and_cancels_on_kalshi(market_file: str):
    async def scenario() -> None:
        async with emulator(market_file) as em:
            venue, answers, task = await running_venue(em)
            assert venue.instrument.tick_size == 0.01 and venue.instrument.lot_size == 1
            # the feed's YES book (NO bids turned into YES asks) is the book ccxt-shaped streams show
            shown = venue.exchange.orderbooks

            def same_touch() -> bool:
                book = shown[TICKER]
                top = (round(book["bids"][0][0] * 100), round(book["asks"][0][0] * 100))
                return (answers.book.best_bid, answers.book.best_ask) == top

            await until(same_touch, 5, "the feed's book at the stream's touch")
            await until(lambda: answers.trades > 0, 10, "market trades")
            bid, ask = ticks_of(venue, em)
            resting = venue.place(BID, bid - 4, 2)  # post-only, below the touch
            buy = venue.place(BID, ask, 3, post_only=False)  # crosses: a taker buy of YES
            sell = venue.place(ASK, bid, 2, post_only=False)  # crosses: a taker sale (buys NO)
            await until(lambda: "accepted" in answers.kinds(resting), 5, "the resting order accepted")
            await until(lambda: sum(r.qty for r in answers.fills()) >= 5, 10, "the taker fills")
            assert em.open_orders[BID] == 1  # only the resting bid is left
            fills = answers.fills()
            assert sorted(r.trade_id for r in fills) == sorted(f["trade_id"] for f in em.fills)
            assert {r.order_id for r in fills} == {buy, sell}
            for r in fills:
                assert r.fee == pytest.approx(float(kalshi_fee(r.qty, r.price)))
                assert not r.maker
            assert [seq for _, seq in answers.responses if seq] == list(range(1, len(fills) + 1))
            assert venue.cancel(resting)
            await until(lambda: "cancelled" in answers.kinds(resting), 5, "the cancel confirmed")
            assert em.open_orders == {BID: 0, ASK: 0}
            by_kalshi = {o.client_id: o for o in em.orders.values()}
            assert set(by_kalshi) == {venue.client_id(i) for i in (resting, buy, sell)}
            assert by_kalshi[venue.client_id(sell)].kside == "no"  # a YES sale is a NO purchase
            await halt(venue, task)

    asyncio.run(scenario())


def test_a_post_only_order_that_would_cross_is_rejected(market_file: str):
    async def scenario() -> None:
        async with emulator(market_file) as em:
            venue, answers, task = await running_venue(em)
            _, ask = ticks_of(venue, em)
            crossing = venue.place(BID, ask + 1, 1)  # post-only at a price that takes
            await until(lambda: answers.kinds(crossing), 5, "an answer")
            rejected = [r for r, _ in answers.responses if r.order_id == crossing]
            assert rejected[0].kind == "rejected" and "post_only_cross" in rejected[0].reason
            assert em.stats["rejected_post_only"] == 1 and not em.fills
            await halt(venue, task)

    asyncio.run(scenario())


def test_a_restart_recognises_its_open_orders_and_books_missed_fills_once(market_file: str):
    async def scenario() -> None:
        async with emulator(market_file) as em:
            first, answers, task = await running_venue(em)
            bid, ask = ticks_of(first, em)
            resting = first.place(BID, bid - 5, 1)
            taker = first.place(BID, ask, 1, post_only=False)
            await until(
                lambda: len(answers.fills()) >= 1 and "accepted" in answers.kinds(resting), 10, "fills"
            )
            booked = {r.trade_id for r in answers.fills()}
            last_seq = max(seq for _, seq in answers.responses)
            since_ms = max(int(f["ts"]) * 1000 for f in em.fills)
            await halt(first, task)
            # while down: an order of ours placed just before the crash fills
            raw = client_of(em)
            try:
                _, ask_cents = await touch(raw)
                missed = await raw.create_order(
                    TICKER, "yes", "buy", 2, yes_price=ask_cents, client_order_id=first.client_id(taker + 1)
                )
                await until(
                    lambda: any(f["order_id"] == missed["order_id"] for f in em.fills), 5, "a missed fill"
                )
            finally:
                await raw.close()
            missed_ids = {f["trade_id"] for f in em.fills} - booked
            second = CcxtVenue(
                "m1",
                KalshiExchange(em.api_key, PRIVATE, host(em)),
                TICKER,
                trade_ids=booked,
                last_seq=last_seq,
                next_order_id=taker + 1,
                since_ms=since_ms,
                deadman_ms=0,
            )
            await second.connect()
            try:
                assert [o.order_id for o in second.open_orders()] == [resting]
                recovered = second.fills_since(last_seq)
                assert {f.trade_id for f in recovered} == missed_ids
                assert [f.seq for f in recovered] == list(range(last_seq + 1, last_seq + 1 + len(recovered)))
                assert all(f.order_id == taker + 1 for f in recovered)
                again = Answers()
                second.subscribe(again)
                await second.catch_up()  # a second look books nothing twice
                await asyncio.sleep(0.1)
                assert again.fills() == []
                assert second.cancel(resting)
                await until(lambda: "cancelled" in again.kinds(resting), 5, "the old order cancelled")
                assert em.open_orders == {BID: 0, ASK: 0}
            finally:
                await second.aclose()

    asyncio.run(scenario())


def test_429s_and_dropped_streams_are_survived(market_file: str):
    async def scenario() -> None:
        async with emulator(market_file, faults="429=0.3,drop=2s,seed=5") as em:
            venue, answers, task = await running_venue(em)
            placed = []
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline and (
                venue.budget.rate_limited < 1 or em.fault_counts["drop"] < 1 or len(em.fills) < 2
            ):
                if venue.trusted and em.book.best_ask is not None:
                    placed.append(venue.place(BID, em.book.best_ask, 1, post_only=False))
                await asyncio.sleep(0.3)
            assert venue.budget.rate_limited >= 1 and em.fault_counts["429"] >= 1
            assert em.fault_counts["drop"] >= 1 and venue.stats.disconnects >= 1
            await until(lambda: venue.trusted, 10, "the book back in sync")
            await venue.catch_up()
            await asyncio.sleep(0.2)
            booked = [r.trade_id for r in answers.fills()]
            assert len(booked) == len(set(booked))  # none twice
            assert sorted(booked) == sorted(f["trade_id"] for f in em.fills)  # none missed
            await halt(venue, task)

    asyncio.run(scenario())
