"""The ccxt venue against the local Binance USD-M emulator, one fault at a time: every fill stored once
(the emulator's trade list is the truth), never more orders at the venue than the strategy quotes,
and quoting that pauses while the book or our orders cannot be trusted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import ccxt.pro
import pytest

from conftest import shared_path
from quotewise.live.engine import LiveEngine, MakerSpec
from quotewise.live.store import Store, db_url
from quotewise.live.venues.binance_emulator import BinanceEmulator
from quotewise.live.venues.ccxt_venue import CcxtVenue
from quotewise.live.venues.endpoint import point_at
from quotewise.model.events import BID

KEY, SECRET = "test-key", "test-secret"
MARKET = "ETH/USDT:USDT"


@contextlib.asynccontextmanager
async def emulator(
    faults: str | None = None, speed: float = 3.0, data: str = "synthetic"
) -> AsyncIterator[BinanceEmulator]:
    """The synthetic market listed as ETHUSDT (or a real data file, listed as its own symbol)."""
    symbol = "ETHUSDT" if data == "synthetic" else None
    em = BinanceEmulator(data, KEY, SECRET, speed=speed, faults=faults, symbol=symbol)
    await em.start()
    try:
        yield em
    finally:
        await em.stop()


def url(em: BinanceEmulator) -> str:
    return f"http://127.0.0.1:{em.port}"


def spec(em: BinanceEmulator, name: str = "m1", **settings: Any) -> MakerSpec:
    return MakerSpec(
        venue="binanceusdm",
        market=MARKET,
        endpoint=url(em),
        credentials={"api_key": KEY, "secret": SECRET},
        name=name,
        **settings,
    )


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


def venue_of(engine: LiveEngine, name: str = "m1") -> CcxtVenue:
    return engine.makers[name].venue


async def maker_on(em: BinanceEmulator, tmp_path: Path) -> tuple[Store, LiveEngine, CcxtVenue]:
    """A new engine (its own database) with maker ``m1`` quoting on the emulator."""
    store = Store(db_url(str(tmp_path / "s.db")))
    engine = LiveEngine(store)
    await engine.start_maker(spec(em))
    return store, engine, venue_of(engine)


def stored_trade_ids(store: Store, name: str = "m1") -> list[str]:
    return [f.venue_trade_id for f in store.fills(name)]


def emulator_trade_ids(em: BinanceEmulator) -> list[str]:
    return [str(t["id"]) for t in em.trades]


async def crash(engine: LiveEngine) -> None:
    """What kill -9 leaves: the tasks gone, no cancel sent, the connections dropped."""
    for maker_id in list(engine._tasks):
        for task in engine._tasks.pop(maker_id):
            task.cancel()
    for maker in engine.makers.values():
        maker.end("stopped")
        venue = maker.venue
        for task in list(venue._tasks):
            task.cancel()
        await venue.exchange.close()
    await engine.scheduler.close()
    engine.store.flush_orders()


def test_a_maker_quotes_and_fills_with_every_fill_stored_once_and_one_order_per_side(tmp_path: Path):
    async def scenario() -> None:
        async with emulator() as em:
            store = Store(db_url(str(tmp_path / "s.db")))
            engine = LiveEngine(store)
            await engine.start_maker(spec(em))
            await until(lambda: len(em.trades) >= 5, 30, "five fills")
            status = engine.status("m1")
            assert status["state"] == "running" and status["connection"]["trusted"]
            await engine.stop_maker("m1")
            await engine.shutdown()
            assert em.open_orders == {1: 0, -1: 0}  # stopped: nothing left at the venue
            assert em.peak_open_orders[BID] <= 1 and em.peak_open_orders[-BID] <= 1
            assert sorted(stored_trade_ids(store)) == sorted(emulator_trade_ids(em))
            positions = store.position("m1")
            net = sum((1 if t["side"] == "BUY" else -1) * float(t["qty"]) for t in em.trades)
            assert positions.position == round(net / em.instrument.lot_size)

    asyncio.run(scenario())


def test_a_restart_books_the_fills_made_while_down_once_and_cancels_orders_it_does_not_know(
    tmp_path: Path, monkeypatch
):
    # the keys a restarted engine connects with: its environment (they are never stored)
    monkeypatch.setenv("QW_BINANCEUSDM_API_KEY", KEY)
    monkeypatch.setenv("QW_BINANCEUSDM_SECRET", SECRET)

    async def scenario() -> None:
        async with emulator(speed=4.0) as em:
            path = db_url(str(tmp_path / "s.db"))
            store = Store(path)
            first = LiveEngine(store)
            await first.start_maker(spec(em))
            await until(
                lambda: len(em.trades) >= 2 and em.open_orders[BID] + em.open_orders[-BID] > 0, 30, "fills"
            )
            venue = venue_of(first)
            await crash(first)
            stored = len(store.fills("m1"))
            # while we are down: our orders still rest (and fill), an order of ours we never recorded
            # (placed just before the crash), and another program's order on the same account
            other = ccxt.pro.binanceusdm({"apiKey": KEY, "secret": SECRET})
            point_at(other, url(em))
            try:
                await other.load_markets()
                book = await other.fetch_order_book(MARKET, 5)
                far = round(book["bids"][0][0] * 0.9, 2)
                ours = await other.create_order(
                    MARKET, "limit", "buy", 1, far, {"clientOrderId": venue.client_id(9999)}
                )
                foreign = await other.create_order(
                    MARKET, "limit", "buy", 1, far, {"clientOrderId": "someone-else-1"}
                )
                await until(lambda: len(em.trades) > stored, 30, "a fill while the engine is down")
                second = LiveEngine(Store(path))
                assert await second.start() == ["m1"], second.store.maker("m1").reason
                resume = [a for a in second.store.audit_rows("m1") if a["action"] == "resume"][-1]["details"]
                assert resume["fills_recovered"] >= 1 and resume["unknown_cancelled"] >= 1
                await until(lambda: em.orders[int(ours["id"])].status == "CANCELED", 10, "ours cancelled")
                assert em.orders[int(foreign["id"])].open  # another program's order is left alone
                await until(lambda: len(em.trades) >= stored + 3, 30, "more fills after the restart")
                await second.stop_maker("m1")
                await second.shutdown()
            finally:
                await other.close()
            assert sorted(stored_trade_ids(second.store)) == sorted(emulator_trade_ids(em))

    asyncio.run(scenario())


def test_gaps_and_dropped_streams_pause_quoting_until_resynced_and_reconciled(tmp_path: Path):
    async def scenario() -> None:
        async with emulator(faults="gap=2s,drop=3s,dup=0.01,reorder=0.002,seed=7") as em:
            store, engine, venue = await maker_on(em, tmp_path)
            await until(lambda: venue.stats.gaps >= 2 and venue.stats.disconnects >= 2, 30, "gaps and drops")
            await until(lambda: venue.trusted, 10, "the book back in sync")
            assert venue.counts["reconciles"] >= 1 and venue.stats.resyncs >= 2
            paused = [e for e in store.orders("m1") if e.status == "cancelled"]
            assert paused  # our quotes were pulled while the book was not trusted
            await until(lambda: len(em.trades) >= 3, 90, "fills")  # a bound: slow when CI is loaded
            assert engine.status("m1")["state"] == "running"
            await engine.stop_maker("m1")
            await engine.shutdown()
            assert sorted(stored_trade_ids(store)) == sorted(emulator_trade_ids(em))
            assert em.peak_open_orders[BID] <= 1 and em.peak_open_orders[-BID] <= 1

    asyncio.run(scenario())


class Answers:
    """A venue listener that keeps what the venue said about our orders."""

    def __init__(self) -> None:
        self.rejected: list = []

    def on_market(self, events: Any) -> None:
        pass

    def on_responses(self, responses: list) -> None:
        self.rejected += [r for r, _ in responses if r.kind == "rejected"]


def test_an_order_is_refused_while_the_book_is_not_trusted(tmp_path: Path):
    async def scenario() -> None:
        async with emulator() as em:
            _, engine, venue = await maker_on(em, tmp_path)
            await until(lambda: venue.trusted, 10, "a trusted book")
            answers = Answers()
            venue.subscribe(answers)
            venue.on_trust(False, "test: a gap")
            placed_before = len(em.orders)
            venue.place(BID, 1, venue.instrument.min_size_lots)
            await until(lambda: answers.rejected, 5, "an answer")
            response = answers.rejected[0]
            assert response.reason == "book not trusted" and len(em.orders) == placed_before
            await engine.shutdown(cancel_orders=False)

    asyncio.run(scenario())


def test_a_timed_out_place_is_found_by_its_client_id_never_placed_twice(tmp_path: Path):
    async def scenario() -> None:
        async with emulator(faults="ack_delay=1500ms") as em:
            _, engine, venue = await maker_on(em, tmp_path)
            venue.exchange.timeout = 800  # ms: every place times out before the emulator answers
            await until(lambda: venue.counts["timeouts"] >= 3, 30, "timed-out places")
            await until(lambda: len(em.trades) >= 1, 30, "a fill")
            await engine.stop_maker("m1")
            await engine.shutdown()
            client_ids = [o.client_id for o in em.orders.values()]
            assert len(client_ids) == len(set(client_ids))  # each of our orders reached the venue once
            ours = {o.order_id for o in engine.makers["m1"].store.orders("m1")}
            assert {int(c.rsplit("-", 1)[1]) for c in client_ids} <= ours
            # found by lookup, never given up: a rejection here is an order the exchange itself expired
            # (a post-only order that would have crossed by the time it arrived)
            expired = sum(o.status == "EXPIRED" for o in em.orders.values())
            assert venue.counts["rejected"] <= expired

    asyncio.run(scenario())


def test_429s_back_off_and_are_counted_and_the_maker_keeps_going(tmp_path: Path):
    async def scenario() -> None:
        async with emulator(faults="429=0.2,5xx=0.05,seed=3") as em:
            store, engine, venue = await maker_on(em, tmp_path)
            await until(lambda: venue.budget.rate_limited >= 3 and len(em.trades) >= 2, 40, "429s and fills")
            assert engine.status("m1")["state"] == "running"
            await engine.stop_maker("m1")
            await engine.shutdown()
            assert em.fault_counts["429"] >= 3
            assert sorted(stored_trade_ids(store)) == sorted(emulator_trade_ids(em))

    asyncio.run(scenario())


def test_the_dead_man_switch_cancels_our_orders_when_the_process_dies(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("quotewise.live.venues.ccxt_venue.DEADMAN_MS", 1500)

    async def scenario() -> None:
        async with emulator(speed=1.0) as em:
            engine = LiveEngine(Store(db_url(str(tmp_path / "s.db"))))
            await engine.start_maker(spec(em))
            await until(lambda: em.open_orders[BID] + em.open_orders[-BID] >= 2, 20, "two quotes")
            await crash(engine)
            await until(lambda: em.open_orders == {1: 0, -1: 0}, 5, "the countdown to cancel them")
            assert em.stats["countdown_cancels"] >= 1

    asyncio.run(scenario())


def test_the_exchange_clock_offset_is_measured_and_data_is_judged_on_it(tmp_path: Path):
    async def scenario() -> None:
        async with emulator(faults="skew=-4s") as em:  # the exchange's clock 4 s behind ours
            _, engine, venue = await maker_on(em, tmp_path)
            await until(lambda: venue.trusted, 10, "a book in sync")
            seen = venue.stats.messages
            await until(lambda: venue.stats.messages > seen + 500, 20, "more market data")
            assert abs(venue.clock.offset_ns / 1e9 + 4) < 0.5
            # not 4 s late: judged on the exchange's clock
            assert venue.trusted and venue.stats.late == 0, venue.status()
            assert abs(venue.now - time.time_ns() + 4e9) < 0.5e9
            venue.clock.offset_ns += 10**10  # as if the messages now came 10 s late
            await until(lambda: venue.stats.late >= 1 and not venue.trusted, 10, "late data noticed")
            await engine.shutdown(cancel_orders=False)

    asyncio.run(scenario())


def test_paper_trading_on_the_exchanges_live_streams_fills_by_the_backtests_rules(tmp_path: Path):
    # real BTCUSDT depth: an L2 stream, so a paper order waits behind the whole level it joins (on
    # the synthetic market's deep levels, re-quoted at every move, it would hardly ever fill)
    data = shared_path("binance", "usdm", "btcusdt_20240808.gz")

    async def scenario() -> None:
        async with emulator(speed=5.0, data=str(data)) as em:
            store = Store(db_url(str(tmp_path / "s.db")))
            engine = LiveEngine(store)
            live = "binanceusdm:BTC/USDT:USDT"
            paper = MakerSpec(venue="paper", market=live, endpoint=url(em), name="p1")
            await engine.start_maker(paper)
            await until(lambda: engine.status("p1")["fills"] >= 3, 40, "paper fills")
            status = engine.status("p1")
            assert status["state"] == "running" and status["connection"]["trusted"]
            assert not em.orders  # the exchange was only read: the fills are our simulator's
            await engine.stop_maker("p1")
            await engine.shutdown()
            fills = store.fills("p1")
            assert len(fills) >= 3 and all(f.maker for f in fills)  # post-only quotes fill as maker

    asyncio.run(scenario())


def test_an_unknown_symbol_and_a_paper_spec_without_data_are_refused_by_name(tmp_path: Path):
    with pytest.raises(ValueError, match="--data FILE"):
        MakerSpec(venue="paper", market="BTCUSDT")
    with pytest.raises(ValueError, match="unknown venue 'nowhere'"):
        MakerSpec(venue="nowhere", market="BTC/USDT")
    with pytest.raises(ValueError, match="needs a market"):
        MakerSpec(venue="binanceusdm")

    async def scenario() -> None:
        async with emulator() as em:
            engine = LiveEngine(Store(db_url(str(tmp_path / "s.db"))))
            bad = spec(em).model_copy(update={"market": "DOGE/USDT:USDT"})
            with pytest.raises(Exception, match="has no market 'DOGE/USDT:USDT'"):
                await engine.start_maker(bad)
            assert engine.store.maker("m1") is None

    asyncio.run(scenario())


class BookKeeper:
    """A feed listener that keeps the book the events build."""

    def __init__(self, lo: int, hi: int) -> None:
        from quotewise.book.orderbook import OrderBook

        self.book = OrderBook(lo, hi)
        self.trust: list[bool] = []

    def on_book(self, events: Any) -> None:
        self.book.apply(events)

    def on_trust(self, trusted: bool, reason: str) -> None:
        self.trust.append(trusted)


def test_any_other_exchange_is_read_through_ccxt_pros_own_book():
    """The generic feed (ccxt.pro's watch_order_book, as on any non-Binance exchange), here on the
    emulator's stream: the changed levels build the same book the exchange shows."""
    from quotewise.live.venues.ccxt_venue import instrument_of
    from quotewise.live.venues.depth import Grid
    from quotewise.live.venues.feeds import CcxtBookFeed, ExchangeClock

    async def scenario() -> None:
        async with emulator(speed=1.0) as em:
            exchange = ccxt.pro.binanceusdm({"apiKey": KEY, "secret": SECRET})
            point_at(exchange, url(em))
            try:
                await exchange.load_markets()
                inst = instrument_of(exchange, exchange.market(MARKET))
                keeper = BookKeeper(9_000, 11_000)  # synthetic: around 100.00 at a 0.01 tick
                feed = CcxtBookFeed(
                    exchange,
                    exchange.market(MARKET),
                    Grid(inst.tick_size, inst.lot_size),
                    ExchangeClock(),
                    keeper,
                )
                task = asyncio.create_task(feed.run())
                await until(lambda: feed.trusted and feed.stats.messages > 20, 15, "a book")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                book = keeper.book
                assert keeper.trust[0] is True and book.best_bid < book.best_ask
                shown = exchange.orderbooks[MARKET]  # ccxt's own book at the same moment
                assert inst.px(book.best_bid) == shown["bids"][0][0]
                assert inst.px(book.best_ask) == shown["asks"][0][0]
            finally:
                await exchange.close()

    asyncio.run(scenario())


class ListRace:
    """A stand-in exchange for one reconciliation: while its open-orders answer is on the way, the
    answer to one of our places arrives (the order reached the exchange after the list was taken)."""

    id = "stand-in"
    apiKey = ""
    urls: dict = {"api": {}}  # noqa: RUF012 (read by budget_for)

    def __init__(self) -> None:
        self.venue: CcxtVenue | None = None

    async def fetch_open_orders(self, symbol: str) -> list:
        assert self.venue is not None
        self.venue._acknowledged(2, {"id": "x2", "status": "open"})
        return []

    async def fetch_my_trades(self, symbol: str, since: int, limit: int) -> list:
        return []


def test_a_reconcile_closes_only_orders_answered_before_the_list_was_asked_for():
    from quotewise.live.venues.ccxt_venue import _Order

    async def scenario() -> None:
        exchange = ListRace()
        venue = CcxtVenue("m1", exchange, MARKET, since_ms=0)
        exchange.venue = venue
        venue._orders[1] = _Order(BID, 100, 1, 1, "x1", placing=False)  # acknowledged long before
        venue._orders[2] = _Order(-BID, 101, 1, 1)  # its place still on the way
        await venue._reconcile("test")
        assert venue._orders[1].done  # gone from the exchange: closed
        assert not venue._orders[2].done  # answered after the list was asked for: left open
        assert venue._orders_trusted  # reconciled: places may go out again once the book is in sync

    asyncio.run(scenario())


class SlowCancel(ListRace):
    """A stand-in exchange whose cancels take a while to be answered."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = asyncio.Event()

    async def cancel_order(self, order_id: Any, symbol: str, params: dict) -> dict:
        await self.cancelled.wait()
        return {}


def test_an_order_of_ours_we_did_not_know_blocks_places_until_it_is_cancelled():
    async def scenario() -> None:
        exchange = SlowCancel()
        venue = CcxtVenue("m1", exchange, MARKET, since_ms=0)
        answers = Answers()
        venue.subscribe(answers)
        venue._book_trusted = venue._orders_trusted = True
        venue.cancel(99)  # open at the exchange, unknown here (placed just before a crash)
        venue.place(BID, 100, 1)
        await until(lambda: answers.rejected, 5, "the place refused")
        assert answers.rejected[0].reason == "reconciling orders"
        exchange.cancelled.set()
        await until(lambda: venue.trusted, 5, "the stray order gone")

    asyncio.run(scenario())
