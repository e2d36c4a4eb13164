"""Polymarket through its official SDK, against the local CLOB emulator: the stock client (only its
hosts moved) creates, reads, orders, cancels and gets fills; the ccxt-shaped adapter runs the ccxt
venue unchanged; a restart after kill -9 knows its orders and books the fills it missed once; a
post-only order that would cross is refused; faults are survived. Balances are Polymarket's (no SELL
of shares not held), so the adapter nets: an ask is a YES SELL of shares held, else a NO BUY at
1 - p, reported to the venue as the YES sell it stands for."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import httpx
import pytest
from polymarket import AsyncSecureClient
from polymarket.errors import RequestRejectedError
from polymarket.models import ApiKeyCreds
from polymarket.streams import MarketSpec, UserSpec

from quotewise.data.polymarket import write_capture
from quotewise.data.synthetic import synthetic_binary
from quotewise.live.venues.ccxt_venue import CcxtVenue
from quotewise.live.venues.polymarket_emulator import (
    DEFAULT_TOKEN,
    PolymarketEmulator,
    default_complement,
    hmac_signature,
)
from quotewise.live.venues.polymarket_exchange import PolymarketExchange, environment_at, taker_fee
from quotewise.model.events import ASK, BID
from quotewise.model.response import Response

PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
SECRET = base64.urlsafe_b64encode(b"quotewise-emulator-secret-32byte").decode()
PASSPHRASE = "qw-passphrase"
TOKEN = DEFAULT_TOKEN
FEE_RATE = 0.02


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic binary market (about 37 s at 0.01 tick) as a Polymarket market-channel capture."""
    path = tmp_path_factory.mktemp("polymarket") / "capture.txt"
    return write_capture(synthetic_binary(60_000, seed=3), path, TOKEN)


@contextlib.asynccontextmanager
async def emulator(
    capture: Path, key: str, faults: str | None = None, speed: float = 2.0
) -> AsyncIterator[PolymarketEmulator]:
    em = PolymarketEmulator(
        str(capture), key, SECRET, PASSPHRASE, speed=speed, faults=faults, fee_rate=FEE_RATE
    )
    await em.start()
    try:
        yield em
    finally:
        await em.stop()


def url(em: PolymarketEmulator) -> str:
    return f"http://127.0.0.1:{em.port}"


def exchange(em: PolymarketEmulator, state_path: Path | None = None) -> PolymarketExchange:
    return PolymarketExchange(
        PRIVATE_KEY, em.api_key, SECRET, PASSPHRASE, url(em), state_path, tokens=[TOKEN]
    )


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


class Answers:
    """A venue listener that keeps every response and counts the market events."""

    def __init__(self) -> None:
        self.responses: list[tuple[Response, int]] = []
        self.events = 0

    def on_market(self, events: Any) -> None:
        self.events += len(events)

    def on_responses(self, responses: list[tuple[Response, int]]) -> None:
        self.responses += responses

    def kind(self, kind: str) -> list[Response]:
        return [r for r, _ in self.responses if r.kind == kind]

    def of(self, order_id: int) -> list[str]:
        return [r.kind for r, _ in self.responses if r.order_id == order_id]


async def running(venue: CcxtVenue, answers: Answers) -> asyncio.Task:
    venue.subscribe(answers)
    await venue.connect()
    task = asyncio.create_task(venue.run())
    await until(lambda: venue.trusted, 10, "a trusted book and reconciled orders")
    return task


async def crash(venue: CcxtVenue, task: asyncio.Task) -> None:
    """What kill -9 leaves: the tasks gone, nothing cancelled, the connections dropped."""
    task.cancel()
    venue.close()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await venue.exchange.close()


def emulator_trade_ids(em: PolymarketEmulator) -> list[str]:
    return [t["id"] for t in em.trades]


# -- the stock SDK --------------------------------------------------------------------------------------
def test_the_official_sdk_trades_on_the_emulator_with_only_its_hosts_moved(capture: Path):
    async def scenario() -> None:
        async with emulator(capture, "sdk-key") as em:
            env = environment_at(url(em))
            creds = ApiKeyCreds(key="sdk-key", secret=SECRET, passphrase=PASSPHRASE)
            client = await AsyncSecureClient.create(
                private_key=PRIVATE_KEY, environment=env, credentials=creds
            )
            try:
                book = await client.get_order_book(asset_id=TOKEN)
                best_bid, best_ask = book.bids[-1].price, book.asks[-1].price  # REST: the best last
                assert best_bid < best_ask and book.tick_size == Decimal("0.01") and not book.neg_risk
                user = await client.subscribe(UserSpec())

                resting = await client.place_limit_order(
                    asset_id=TOKEN,
                    price=best_bid - Decimal("0.05"),
                    size=Decimal(5),
                    side="BUY",
                    post_only=True,
                )
                assert resting.ok and resting.status == "live"
                open_now = [o async for o in client.list_open_orders(asset_id=TOKEN).iter_items()]
                assert [o.id for o in open_now] == [resting.order_id]
                assert open_now[0].original_size == 5 and open_now[0].price == best_bid - Decimal("0.05")
                cancelled = await client.cancel_order(order_id=resting.order_id)
                assert cancelled.canceled == (resting.order_id,)
                assert not [o async for o in client.list_open_orders(asset_id=TOKEN).iter_items()]
                again = await client.cancel_order(order_id=resting.order_id)
                assert resting.order_id in again.not_canceled

                # a buy through the ask takes liquidity: a taker fill, charged Polymarket's fee
                taker = await client.place_limit_order(
                    asset_id=TOKEN, price=best_ask + Decimal("0.02"), size=Decimal(3), side="BUY"
                )
                assert taker.ok
                trades: list[Any] = []

                async def read_user() -> None:
                    async for event in user:
                        if event.type == "trade":
                            trades.append(event.payload)
                            return

                await asyncio.wait_for(read_user(), 10)
                fill = trades[0]
                assert fill.taker_order_id == taker.order_id and fill.trader_side == "TAKER"
                assert fill.fee_rate_bps == Decimal(FEE_RATE * 10_000)
                listed = [t async for t in client.list_account_trades(asset_id=TOKEN).iter_items()]
                assert [t.id for t in listed] == [fill.id] == emulator_trade_ids(em)
                assert listed[0].status == "CONFIRMED" and listed[0].size == fill.size
                p = float(fill.price)
                assert em.fees == pytest.approx(taker_fee(float(fill.size), p, FEE_RATE, 1.0))
                await user.close()

                # the market channel, every kind the SDK parses
                market = await client.subscribe(MarketSpec(asset_ids=[TOKEN], custom_feature_enabled=True))
                seen: dict[str, Any] = {}
                kinds = {"book", "price_change", "last_trade_price", "best_bid_ask", "tick_size_change"}

                async def read_market() -> None:
                    async for event in market:
                        seen.setdefault(event.type, event.payload)
                        if kinds - {"tick_size_change"} <= seen.keys() and "tick_size_change" not in seen:
                            em.change_tick(0.02)
                        if kinds <= seen.keys():
                            return

                await asyncio.wait_for(read_market(), 10)
                assert seen["book"].bids and seen["book"].asks and seen["book"].asset_id == TOKEN
                assert seen["tick_size_change"].new_tick_size == Decimal("0.02")
                assert seen["last_trade_price"].fee_rate_bps == Decimal(FEE_RATE * 10_000)
                await market.close()
            finally:
                await client.close()

    asyncio.run(scenario())


def test_a_wrong_secret_is_refused_with_polymarkets_401_and_the_sdk_derives_the_right_one(capture: Path):
    async def scenario() -> None:
        async with emulator(capture, "auth-key") as em:
            wrong = base64.urlsafe_b64encode(b"not-the-secret-of-this-account!!").decode()
            stamp = str(int(time.time()))
            headers = {
                "POLY_ADDRESS": "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23",
                "POLY_API_KEY": "auth-key",
                "POLY_PASSPHRASE": PASSPHRASE,
                "POLY_TIMESTAMP": stamp,
                "POLY_SIGNATURE": hmac_signature(wrong, stamp, "GET", "/data/orders", ""),
            }
            async with httpx.AsyncClient(base_url=url(em)) as http:
                refused = await http.get("/data/orders", headers=headers)
                assert refused.status_code == 401
                assert refused.json() == {"error": "Unauthorized/Invalid api key"}
                headers["POLY_SIGNATURE"] = hmac_signature(SECRET, stamp, "GET", "/data/orders", "")
                assert (await http.get("/data/orders", headers=headers)).status_code == 200
                bad_l1 = {**headers, "POLY_NONCE": "0", "POLY_SIGNATURE": "0x" + "11" * 65}
                l1 = await http.post("/auth/api-key", headers=bad_l1)
                assert l1.status_code == 401 and l1.json() == {"error": "Invalid L1 Request headers"}
                rpc = await http.post("/rpc", json={"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"})
                assert rpc.json() == {"jsonrpc": "2.0", "id": 7, "result": "0x89"}  # the RPC stub: Polygon

            # the SDK checks the credentials it is given; refused (401), it derives them with an L1 signature
            creds = ApiKeyCreds(key="auth-key", secret=wrong, passphrase=PASSPHRASE)
            client = await AsyncSecureClient.create(
                private_key=PRIVATE_KEY, environment=environment_at(url(em)), credentials=creds
            )
            try:
                assert client.credentials.secret == SECRET and em.stats["l1_auths"] >= 1
                assert em.stats["unauthorized"] >= 3
                assert await client.fetch_api_keys() == ("auth-key",)
            finally:
                await client.close()

    asyncio.run(scenario())


# -- the ccxt venue on the adapter ----------------------------------------------------------------------
def test_the_ccxt_venue_quotes_fills_and_cancels_on_polymarket(capture: Path, tmp_path: Path):
    async def scenario() -> None:
        async with emulator(capture, "venue-key") as em:
            venue = CcxtVenue(
                "pm1", exchange(em, tmp_path / "ids.json"), TOKEN, since_ms=int(time.time() * 1000)
            )
            answers = Answers()
            task = await running(venue, answers)
            inst = venue.instrument
            assert (inst.tick_size, inst.lot_size, inst.min_size_lots) == (0.01, 0.01, 100)
            assert (inst.min_price, inst.max_price, inst.fee_curve) == (0.01, 0.99, "probability")
            assert inst.taker_fee == FEE_RATE and inst.maker_fee == 0
            assert answers.events > 0  # the market channel's book reached the maker
            size = inst.min_size_lots
            bid, ask = em.book.best_bid, em.book.best_ask
            quotes = [venue.place(BID, bid, size), venue.place(ASK, ask, size)]
            taking = venue.place(BID, ask + 1, size, post_only=False)
            await until(lambda: len(answers.kind("fill")) >= 2, 15, "fills")
            await until(lambda: "fill" in answers.of(taking), 5, "the taker fill")
            for order_id in quotes:
                venue.cancel(order_id)
            await until(lambda: em.open_orders == {BID: 0, ASK: 0}, 5, "every order ended")
            await venue.catch_up()
            fills = answers.kind("fill")
            assert sorted(f.trade_id for f in fills) == sorted(emulator_trade_ids(em))  # each once
            by_id = {t["id"]: t for t in em.trades}
            for f in fills:
                trade = by_id[f.trade_id]
                assert f.maker == (trade["trader_side"] == "MAKER")
                expected = 0.0 if f.maker else taker_fee(inst.qty(f.qty), inst.px(f.price), FEE_RATE, 1.0)
                assert f.fee == pytest.approx(expected) and (f.maker or f.fee > 0)
            assert em.peak_open_orders[BID] <= 2 and em.peak_open_orders[ASK] <= 1
            assert venue.counts["placed"] == 3 and venue.counts["rejected"] == 0
            async with httpx.AsyncClient() as http:
                stats = (await http.get(f"{url(em)}/emulator/stats")).json()
            assert stats["trades"] == len(em.trades) and stats["peak_open_orders"]["ask"] <= 1
            await crash(venue, task)

    asyncio.run(scenario())


def test_a_restarted_venue_knows_its_orders_and_books_the_fills_it_missed_once(capture: Path, tmp_path: Path):
    state = tmp_path / "pm1.polymarket-orders.json"

    async def scenario() -> None:
        async with emulator(capture, "restart-key") as em:
            started_ms = int(time.time() * 1000)
            first = CcxtVenue("pm1", exchange(em, state), TOKEN, since_ms=started_ms)
            answers = Answers()
            task = await running(first, answers)
            size = first.instrument.min_size_lots
            resting = first.place(BID, em.book.best_bid - 10, size)  # far from the market: it rests
            await until(lambda: "accepted" in answers.of(resting), 5, "the resting order accepted")
            # the last order before the crash: sent, answered, but the venue is killed before the fill
            taking_id = first._next_id
            placed = await first.exchange.create_order(
                TOKEN,
                "limit",
                "buy",
                first.instrument.qty(size),
                first.instrument.px(em.book.best_ask + 1),
                {"clientOrderId": first.client_id(taking_id)},
            )
            await crash(first, task)
            await until(
                lambda: any(t["taker_order_id"] == placed["id"] for t in em.trades), 10, "the missed fill"
            )
            stored = json.loads(state.read_text())["orders"]
            assert stored[first.client_id(taking_id)] == placed["id"]
            assert first.client_id(resting) in stored

            second = CcxtVenue(
                "pm1",
                exchange(em, state),
                TOKEN,
                trade_ids=set(),
                last_seq=0,
                next_order_id=1,
                since_ms=started_ms,
            )
            later = Answers()
            task = await running(second, later)
            assert [o.order_id for o in second.open_orders()] == [resting]  # its own order, by client id
            missed = second.fills_since(0)
            assert [f.trade_id for f in missed] == emulator_trade_ids(em)
            assert {f.order_id for f in missed} == {taking_id} and all(not f.maker for f in missed)
            await second.catch_up()  # the stream and REST again: nothing is booked twice
            await asyncio.sleep(0.5)
            assert not later.kind("fill")
            second.cancel(resting)
            await until(lambda: "cancelled" in later.of(resting), 5, "the old order cancelled")
            assert em.open_orders == {BID: 0, ASK: 0}
            await crash(second, task)

    asyncio.run(scenario())


def test_a_post_only_order_that_would_cross_is_refused(capture: Path):
    async def scenario() -> None:
        async with emulator(capture, "post-only-key") as em:
            ex = exchange(em)
            venue = CcxtVenue("pm1", ex, TOKEN)
            answers = Answers()
            task = await running(venue, answers)
            size = venue.instrument.min_size_lots
            crossing = venue.place(BID, em.book.best_ask + 1, size)  # post-only by default
            await until(lambda: answers.kind("rejected"), 5, "the refusal")
            refusal = answers.kind("rejected")[0]
            assert refusal.order_id == crossing and "order crosses book" in refusal.reason
            with pytest.raises(ccxt.OrderImmediatelyFillable):
                price = venue.instrument.px(em.book.best_bid - 1)
                await ex.create_order(TOKEN, "limit", "sell", 1.0, price, {"postOnly": True})
            assert em.stats["refused"] == 2 and not em.by_hash and em.open_orders == {BID: 0, ASK: 0}
            await crash(venue, task)

    asyncio.run(scenario())


# -- faults ---------------------------------------------------------------------------------------------
def test_429s_are_ccxt_rate_limits_with_retry_after_and_connecting_survives_them(capture: Path):
    async def scenario() -> None:
        async with emulator(capture, "throttled-key", faults="429=0.3,seed=11") as em:
            ex = exchange(em)
            venue = CcxtVenue("pm1", ex, TOKEN)
            await venue.connect()  # every call at connect is retried past a 429
            limited = 0
            for _ in range(30):
                try:
                    await ex.fetch_order_book(TOKEN, 5)
                except ccxt.RateLimitExceeded:
                    limited += 1
                    assert ex.last_response_headers["Retry-After"] == "1"
            assert limited >= 3 and em.fault_counts["429"] >= limited
            await ex.close()

    asyncio.run(scenario())


def test_a_timed_out_place_is_found_by_its_client_id_never_placed_twice(capture: Path, tmp_path: Path):
    async def scenario() -> None:
        async with emulator(capture, "slow-key", faults="ack_delay=1500ms") as em:
            venue = CcxtVenue("pm1", exchange(em, tmp_path / "ids.json"), TOKEN)
            answers = Answers()
            task = await running(venue, answers)
            venue.exchange.timeout = 800  # ms: the place times out before the emulator answers
            resting = venue.place(BID, em.book.best_bid - 10, venue.instrument.min_size_lots)
            await until(lambda: "accepted" in answers.of(resting), 10, "the order found by its client id")
            assert venue.counts["timeouts"] == 1 and venue.counts["rejected"] == 0
            assert len(em.by_hash) == 1 and em.fault_counts["ack_delay"] == 1  # it reached the venue once
            await crash(venue, task)

    asyncio.run(scenario())


def test_dropped_streams_pause_quoting_until_the_venue_has_reconciled(capture: Path):
    async def scenario() -> None:
        async with emulator(capture, "drop-key", faults="drop=1500ms") as em:
            venue = CcxtVenue("pm1", exchange(em), TOKEN, since_ms=int(time.time() * 1000))
            answers = Answers()
            task = await running(venue, answers)
            resting = venue.place(BID, em.book.best_bid - 10, venue.instrument.min_size_lots)
            await until(lambda: em.fault_counts["drop"] >= 2, 10, "dropped connections")
            await until(
                lambda: venue.stats.disconnects >= 2 and venue.counts["reconciles"] >= 1, 10, "reconciles"
            )
            assert "cancelled" in answers.of(resting)  # a drop pulls our quotes
            await until(lambda: venue.trusted, 10, "the book back in sync")
            assert em.open_orders == {BID: 0, ASK: 0}
            await crash(venue, task)

    asyncio.run(scenario())


# -- balances and netting -------------------------------------------------------------------------------
async def sdk_client(em: PolymarketEmulator, key: str) -> AsyncSecureClient:
    creds = ApiKeyCreds(key=key, secret=SECRET, passphrase=PASSPHRASE)
    return await AsyncSecureClient.create(
        private_key=PRIVATE_KEY, environment=environment_at(url(em)), credentials=creds
    )


async def open_at_venue(client: AsyncSecureClient) -> list[Any]:
    """Our open orders as the emulator reports them (each on its own token, its own terms)."""
    return [o async for o in client.list_open_orders().iter_items()]


def no_price(em: PolymarketEmulator, yes_ticks: int) -> Decimal:
    return 1 - Decimal(repr(em.instrument.px(yes_ticks)))


def test_a_sell_without_shares_is_refused_as_polymarket_refuses_it_and_allowed_after_a_buy(capture: Path):
    async def scenario() -> None:
        async with emulator(capture, "balance-key") as em:
            client = await sdk_client(em, "balance-key")
            try:
                book = await client.get_order_book(asset_id=TOKEN)
                best_bid, best_ask = book.bids[-1].price, book.asks[-1].price
                far_ask = best_ask + Decimal("0.10")
                with pytest.raises(RequestRejectedError) as refused:
                    await client.place_limit_order(
                        asset_id=TOKEN, price=far_ask, size=Decimal(5), side="SELL"
                    )
                assert refused.value.status == 400
                assert "not enough balance / allowance: the balance is not enough" in str(refused.value)
                assert "balance: 0, order amount: 5000000" in str(refused.value)
                with pytest.raises(RequestRejectedError) as broke:  # 5M USDC of shares: more than we have
                    await client.place_limit_order(
                        asset_id=TOKEN, price=best_bid - Decimal("0.10"), size=Decimal(10_000_000), side="BUY"
                    )
                assert broke.value.status == 400 and "not enough balance / allowance" in str(broke.value)
                assert not em.by_hash and em.stats["unfunded"] == 2

                taker = await client.place_limit_order(
                    asset_id=TOKEN, price=best_ask + Decimal("0.02"), size=Decimal(5), side="BUY"
                )
                assert taker.ok
                await until(lambda: em.balances[TOKEN] == 5, 10, "the buy filled")
                shares = await client.get_balance_allowance(asset_type="CONDITIONAL", asset_id=TOKEN)
                assert shares.balance == 5_000_000
                usdc = await client.get_balance_allowance(asset_type="COLLATERAL")
                (trade,) = em.trades
                cost = Decimal(trade["price"]) * 5 + Decimal(repr(em.fees))
                assert em.fees > 0 and usdc.balance == int((1_000_000 - cost) * 1_000_000)

                sold = await client.place_limit_order(
                    asset_id=TOKEN, price=far_ask, size=Decimal(5), side="SELL", post_only=True
                )
                assert sold.ok and sold.status == "live"
                with pytest.raises(RequestRejectedError) as reserved:  # the open SELL holds the 5 shares
                    await client.place_limit_order(
                        asset_id=TOKEN, price=far_ask, size=Decimal(1), side="SELL"
                    )
                assert reserved.value.status == 400 and "balance: 0, order amount: 1000000" in str(
                    reserved.value
                )
                async with httpx.AsyncClient() as http:
                    stats = (await http.get(f"{url(em)}/emulator/stats")).json()
                assert stats["balances"][TOKEN] == 5 and stats["balances"][em.complement] == 0
                assert stats["balances"]["USDC"] == pytest.approx(float(1_000_000 - cost))
            finally:
                await client.close()

    asyncio.run(scenario())


def test_the_no_tokens_book_is_the_yes_book_mirrored(capture: Path):
    async def scenario() -> None:
        # slow (a twentieth of real time): the touch must hold still across three REST reads
        async with emulator(capture, "mirror-key", speed=0.05) as em:
            no = em.complement
            assert no == default_complement(TOKEN) != TOKEN
            client = await sdk_client(em, "mirror-key")
            try:
                info = await client._ctx.order_metadata.resolve_market(client._ctx, token_id=no)
                assert set(info.token_ids) == {TOKEN, no}  # one condition, both tokens
                assert (await client.get_order_book(asset_id=no)).tick_size == Decimal("0.01")

                def mirrored(levels: Any) -> list[tuple[Decimal, Decimal]]:
                    return [(1 - lv.price, lv.size) for lv in levels]

                def touch(book: Any) -> tuple[Any, Any]:
                    return book.bids[-1], book.asks[-1]  # REST: the best last

                def mirror_of(yes: Any, no_book: Any) -> bool:
                    return mirrored(touch(no_book)) == [(lv.price, lv.size) for lv in touch(yes)[::-1]]

                # REST: the NO touch read between two equal YES touches is their mirror (the market moves
                # between requests, and may move back: read again until one such triple agrees)
                for _ in range(50):
                    yes, no_book, again = [
                        await client.get_order_book(asset_id=token) for token in (TOKEN, no, TOKEN)
                    ]
                    if touch(yes) == touch(again) and mirror_of(yes, no_book):
                        break
                assert no_book.asset_id == no and touch(yes) == touch(again)
                assert mirrored(touch(no_book)) == [(lv.price, lv.size) for lv in touch(yes)[::-1]]

                market = await client.subscribe(MarketSpec(asset_ids=[TOKEN, no]))
                books: dict[str, Any] = {}
                changes: dict[str, list[Any]] = {TOKEN: [], no: []}
                trades: dict[str, Any] = {}

                async def read() -> None:
                    async for event in market:
                        p = event.payload
                        if event.type == "book":
                            books[p.asset_id] = p
                        elif event.type == "price_change":
                            for c in p.price_changes:
                                changes[c.asset_id].append((c.side, c.price, c.size))
                        elif event.type == "last_trade_price":
                            trades.setdefault(p.asset_id, p)
                        if len(trades) == 2 and len(changes[no]) >= 20:
                            return

                await asyncio.wait_for(read(), 20)
                await market.close()
                assert mirrored(books[no].bids) == [(lv.price, lv.size) for lv in books[TOKEN].asks]
                assert mirrored(books[no].asks) == [(lv.price, lv.size) for lv in books[TOKEN].bids]
                flip = {"BUY": "SELL", "SELL": "BUY"}
                expected = [(flip[side], 1 - price, size) for side, price, size in changes[TOKEN]]
                assert changes[no][:20] == expected[:20]
                assert trades[no].price == 1 - trades[TOKEN].price and trades[no].side != trades[TOKEN].side
            finally:
                await client.close()

    asyncio.run(scenario())


def test_an_ask_without_shares_is_a_no_buy_and_its_fill_a_yes_sell(capture: Path, tmp_path: Path):
    async def scenario() -> None:
        async with emulator(capture, "netting-key") as em:
            venue = CcxtVenue(
                "pm1", exchange(em, tmp_path / "ids.json"), TOKEN, since_ms=int(time.time() * 1000)
            )
            answers = Answers()
            task = await running(venue, answers)
            client = await venue.exchange.client()
            size, inst = venue.instrument.min_size_lots, venue.instrument
            resting_price = em.book.best_ask + 5
            resting = venue.place(ASK, resting_price, size)
            await until(lambda: "accepted" in answers.of(resting), 5, "the ask accepted")
            (at_venue,) = await open_at_venue(client)
            assert at_venue.asset_id == em.complement and at_venue.side == "BUY"
            assert at_venue.price == no_price(em, resting_price)
            listed = await venue.exchange.fetch_open_orders(TOKEN)  # the adapter: the YES ask it stands for
            assert [(o["side"], o["price"], o["symbol"]) for o in listed] == [
                ("sell", inst.px(resting_price), TOKEN)
            ]

            taking = venue.place(ASK, em.book.best_bid - 1, size, post_only=False)
            await until(lambda: "fill" in answers.of(taking), 10, "the taking ask filled")
            fills = [r for r in answers.kind("fill") if r.order_id == taking]
            (trade,) = em.trades
            assert [f.trade_id for f in fills] == [trade["id"]]  # the venue's trade id
            fill = fills[0]
            assert trade["asset_id"] == em.complement and trade["side"] == "BUY"  # a NO buy ...
            assert fill.side == ASK and Decimal(trade["price"]) == no_price(em, fill.price)  # ... a YES sell
            no_fee = taker_fee(inst.qty(size), float(trade["price"]), FEE_RATE, 1.0)
            assert fill.fee == pytest.approx(no_fee) and fill.fee > 0 and not fill.maker
            assert em.balances[em.complement] == Decimal(repr(inst.qty(size)))

            bid_price = em.book.best_bid - 5  # holding NO now: a bid sells it at 1 - p
            bid = venue.place(BID, bid_price, size)
            await until(lambda: "accepted" in answers.of(bid), 5, "the bid accepted")
            by_side = {o.side: o for o in await open_at_venue(client)}
            assert by_side["SELL"].asset_id == em.complement
            assert by_side["SELL"].price == no_price(em, bid_price)
            for order_id in (resting, bid):
                venue.cancel(order_id)
            await until(lambda: em.open_orders == {BID: 0, ASK: 0}, 5, "every order ended")
            await venue.catch_up()
            assert sorted(f.trade_id for f in answers.kind("fill")) == emulator_trade_ids(em)
            await crash(venue, task)

    asyncio.run(scenario())


def test_after_yes_shares_are_bought_an_ask_sells_them(capture: Path):
    async def scenario() -> None:
        async with emulator(capture, "holder-key") as em:
            venue = CcxtVenue("pm1", exchange(em), TOKEN, since_ms=int(time.time() * 1000))
            answers = Answers()
            task = await running(venue, answers)
            client = await venue.exchange.client()
            size = venue.instrument.min_size_lots
            buying = venue.place(BID, em.book.best_ask + 1, 2 * size, post_only=False)
            await until(lambda: em.balances[TOKEN] == Decimal(2), 10, "two YES shares bought")
            await until(lambda: answers.of(buying).count("fill") >= 1, 5, "the fill reported")
            (first,) = em.trades
            assert first["asset_id"] == TOKEN and first["side"] == "BUY"

            ask_price = em.book.best_ask + 5
            selling = venue.place(ASK, ask_price, 2 * size)
            await until(lambda: "accepted" in answers.of(selling), 5, "the ask accepted")
            (at_venue,) = await open_at_venue(client)
            assert at_venue.asset_id == TOKEN and at_venue.side == "SELL"  # shares held: sold
            assert at_venue.price == Decimal(repr(venue.instrument.px(ask_price)))
            more = venue.place(ASK, ask_price, size)  # the shares are offered already: a NO buy
            await until(lambda: "accepted" in answers.of(more), 5, "the second ask accepted")
            by_token = {o.asset_id: o for o in await open_at_venue(client)}
            assert by_token[em.complement].side == "BUY" and venue.counts["rejected"] == 0
            assert em.stats["unfunded"] == 0
            for order_id in (selling, more):
                venue.cancel(order_id)
            await until(lambda: em.open_orders == {BID: 0, ASK: 0}, 5, "every order ended")
            await crash(venue, task)

    asyncio.run(scenario())


def test_a_restarted_venue_knows_its_open_no_order_as_its_ask(capture: Path, tmp_path: Path):
    state = tmp_path / "pm1.polymarket-orders.json"

    async def scenario() -> None:
        async with emulator(capture, "restart-no-key") as em:
            started_ms = int(time.time() * 1000)
            first = CcxtVenue("pm1", exchange(em, state), TOKEN, since_ms=started_ms)
            answers = Answers()
            task = await running(first, answers)
            size, price = first.instrument.min_size_lots, em.book.best_ask + 10
            resting = first.place(ASK, price, size)
            await until(lambda: "accepted" in answers.of(resting), 5, "the ask accepted")
            await crash(first, task)
            (order,) = [o for o in em.by_hash.values() if o.open]
            assert order.token == em.complement

            second = CcxtVenue(
                "pm1", exchange(em, state), TOKEN, trade_ids=set(), next_order_id=1, since_ms=started_ms
            )
            later = Answers()
            task = await running(second, later)
            assert [(o.order_id, o.side, o.price, o.size) for o in second.open_orders()] == [
                (resting, ASK, price, size)
            ]
            second.cancel(resting)
            await until(lambda: "cancelled" in later.of(resting), 5, "the old order cancelled")
            assert em.open_orders == {BID: 0, ASK: 0} and not order.open
            await crash(second, task)

    asyncio.run(scenario())
