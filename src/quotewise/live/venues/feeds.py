"""Live market data from an exchange as our market events: a book kept from the venue's own streams.

Two feeds, one contract (:class:`MarketFeed`): they hand out ``EVENT_DTYPE`` arrays and say when the
book is trusted and when it is not.

- :class:`BinanceDiffFeed` (Binance spot, USD-M, COIN-M): the diff-depth and trade streams on one
  websocket, the REST snapshot through ccxt, and the sequence checks of
  :class:`~quotewise.live.venues.depth.DepthSync`: a gap or a stale snapshot resyncs, a dropped
  connection reconnects with backoff.
- :class:`CcxtBookFeed` (any other ccxt exchange): ccxt.pro's ``watch_order_book`` (ccxt keeps that
  book and checks its sequence) and ``watch_trades``, each book turned into ``SET`` events for the
  levels that changed.

Stamps: ``exch_ts`` is the exchange's event time; ``local_ts`` is when we received it, on the
exchange's clock (our clock plus the measured offset, :class:`ExchangeClock`), so the stale-data
checks compare like with like. A message older than ``max_lag`` on arrival makes the book untrusted
until a fresh one arrives: quoting on a book seconds behind the market is quoting blind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import ccxt
import numpy as np

from quotewise.live.venues.depth import DepthSync, Grid, Resync, to_events, trade_event
from quotewise.logs import kv
from quotewise.model.events import ASK, BID, CLEAR, SET

logger = logging.getLogger(__name__)

MAX_LAG_NS = 5_000_000_000  # a message this late on arrival: the book is behind the market
SNAPSHOT_LIMIT = 1000
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 30.0
CLOCK_EVERY_S = 60.0
NETWORK_ERRORS = (aiohttp.ClientError, ccxt.NetworkError, asyncio.TimeoutError, ConnectionError, OSError)


@dataclass
class Backoff:
    """Exponential waits between reconnects (0.25 s doubling to 30 s), reset by a success."""

    first: float = BACKOFF_FIRST_S
    cap: float = BACKOFF_MAX_S
    wait: float = 0.0

    def next(self) -> float:
        self.wait = min(self.cap, self.wait * 2 if self.wait else self.first)
        return self.wait

    def reset(self) -> None:
        self.wait = 0.0


@dataclass
class ExchangeClock:
    """The exchange's clock as ours plus an offset measured from its server time (midpoint of the
    request), so a venue's ``now`` and a message's age are on the exchange's clock."""

    offset_ns: int = 0
    round_trip_ns: int = 0
    measured: bool = False

    def now(self) -> int:
        return time.time_ns() + self.offset_ns

    async def measure(self, exchange: Any) -> None:
        if not exchange.has.get("fetchTime"):
            return
        sent = time.time_ns()
        server_ms = await exchange.fetch_time()
        received = time.time_ns()
        self.round_trip_ns = received - sent
        self.offset_ns = int(server_ms) * 1_000_000 - (sent + received) // 2
        self.measured = True


@dataclass
class FeedStats:
    """What the feed went through (``mm status`` shows it): reconnects, resyncs, gaps, late data."""

    messages: int = 0
    disconnects: int = 0
    resyncs: int = 0
    gaps: int = 0
    duplicates: int = 0
    late: int = 0
    max_lag_ms: float = 0.0
    last_reason: str = ""


def link_status(trusted: bool, clock: ExchangeClock, stats: FeedStats) -> dict[str, Any]:
    """A live venue's link as ``mm status`` shows it: in sync or not, the clock offset, the feed."""
    return {"trusted": trusted, "clock_offset_ms": clock.offset_ns / 1e6, "feed": vars(stats).copy()}


class FeedListener(Protocol):
    def on_book(self, events: np.ndarray) -> None: ...

    def on_trust(self, trusted: bool, reason: str) -> None: ...


@dataclass
class _FeedBase:
    exchange: Any
    market: dict[str, Any]
    grid: Grid
    clock: ExchangeClock
    listener: FeedListener
    max_lag_ns: int = MAX_LAG_NS
    stats: FeedStats = field(default_factory=FeedStats)
    trusted: bool = False
    _late: bool = False

    def _trust(self, trusted: bool, reason: str) -> None:
        if trusted != self.trusted:
            self.trusted = trusted
            if not trusted:
                self.stats.last_reason = reason
            logger.info("market feed", extra=kv(symbol=self.market["symbol"], trusted=trusted, reason=reason))
            self.listener.on_trust(trusted, reason)

    def _fresh(self, exch_ms: Any, now: int) -> bool:
        """False (and the book untrusted) while messages arrive later than ``max_lag``."""
        if not exch_ms:
            return True
        lag = now - int(exch_ms) * 1_000_000
        self.stats.max_lag_ms = max(self.stats.max_lag_ms, lag / 1e6)
        late = lag > self.max_lag_ns
        if late and not self._late:
            self.stats.late += 1
            self._trust(False, f"market data {lag / 1e9:.1f} s late")
        self._late = late
        return not late


class BinanceDiffFeed(_FeedBase):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sync = DepthSync(self.grid)
        self._snapshot_task: asyncio.Task | None = None
        self._stale = Backoff(first=0.1, cap=5.0)  # snapshots found stale in a row wait longer each time

    def url(self) -> str:
        kind = "spot" if self.market["spot"] else "linear" if self.market.get("linear") else "inverse"
        get_url = getattr(self.exchange, "get_ws_url", None)
        return get_url(kind, "public") if get_url is not None else self.exchange.urls["api"]["ws"][kind]

    def streams(self) -> list[str]:
        name = self.market["id"].lower()
        return [f"{name}@depth@100ms", f"{name}@trade"]

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.ws_connect(self.url(), heartbeat=30) as ws,
                ):
                    await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": self.streams(), "id": 1}))
                    self.sync.reset()
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        backoff.reset()
                        self._on_message(json.loads(msg.data))
                reason = "market stream closed"
            except NETWORK_ERRORS as exc:
                reason = f"market stream: {exc!r}"
            finally:
                self._stop_snapshot()
            self.stats.disconnects += 1
            self._trust(False, reason)
            await asyncio.sleep(backoff.next())

    def _on_message(self, message: dict[str, Any]) -> None:
        data = message.get("data", message)  # combined streams wrap each message
        kind = data.get("e") if isinstance(data, dict) else None
        if kind is None:
            return  # a subscription answer
        self.stats.messages += 1
        now = self.clock.now()
        fresh = self._fresh(data.get("E"), now)
        if kind == "depthUpdate":
            self._on_diff(data, now, fresh)
        elif kind in ("trade", "aggTrade") and self.trusted:
            self.listener.on_book(trade_event(self.grid, data, now))

    def _on_diff(self, data: dict[str, Any], now: int, fresh: bool) -> None:
        try:
            events = self.sync.diff(data, now)
        except Resync as exc:
            self._resync(str(exc))
            return
        if self.sync.last_update is None and self._snapshot_task is None:
            self._snapshot_task = asyncio.get_running_loop().create_task(self._snapshot())
        self.stats.duplicates = self.sync.duplicates
        if len(events):
            self.listener.on_book(events)
        if fresh and self.sync.trusted and not self.trusted:
            self._trust(True, "book in sync")

    def _resync(self, why: str) -> None:
        self.stats.gaps = self.sync.gaps
        self.stats.resyncs += 1
        self._trust(False, why)
        self._stop_snapshot()  # the next diff asks for a new snapshot

    def _stop_snapshot(self) -> None:
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
            self._snapshot_task = None

    async def _snapshot(self) -> None:
        """The REST snapshot, fetched once the first diff is buffered (so the two overlap)."""
        backoff = Backoff()
        await asyncio.sleep(self._stale.wait)
        while True:
            try:
                book = await self.exchange.fetch_order_book(self.market["symbol"], SNAPSHOT_LIMIT)
                snap = {"lastUpdateId": book["nonce"], "bids": book["bids"], "asks": book["asks"]}
                snap["T"] = book.get("timestamp")
                events = self.sync.snapshot(snap, self.clock.now())
            except Resync as exc:
                self._stale.next()
                self._resync(str(exc))
            except (ccxt.NetworkError, ccxt.ExchangeError) as exc:
                logger.warning("depth snapshot failed", extra=kv(error=repr(exc)))
                await asyncio.sleep(backoff.next())
                continue
            else:
                self._stale.reset()
                self.listener.on_book(events)
                if not self._late:
                    self._trust(True, "book in sync")
            self._snapshot_task = None
            return


class CcxtBookFeed(_FeedBase):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._levels: dict[int, dict[int, int]] = {BID: {}, ASK: {}}

    async def run(self) -> None:
        trades = asyncio.get_running_loop().create_task(self._trades())
        try:
            await self._books()
        finally:
            trades.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await trades

    async def _books(self) -> None:
        backoff = Backoff()
        symbol = self.market["symbol"]
        while True:
            try:
                book = await self.exchange.watch_order_book(symbol)
            except (*NETWORK_ERRORS, ccxt.InvalidNonce, ccxt.ExchangeError) as exc:
                self.stats.disconnects += 1
                self._trust(False, f"order book stream: {exc!r}")
                self._levels = {BID: {}, ASK: {}}
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            self.stats.messages += 1
            now = self.clock.now()
            fresh = self._fresh(book.get("timestamp"), now)
            events = self._changes(book, now)
            if len(events):
                self.listener.on_book(events)
            if fresh and not self.trusted:
                self._trust(True, "book in sync")

    def _changes(self, book: dict[str, Any], now: int) -> np.ndarray:
        """SET events for the levels that differ from the last book handed out (a CLEAR first when
        there was none)."""
        exch = int(book.get("timestamp") or 0) * 1_000_000 or now
        rows: list[tuple] = [] if self._levels[BID] or self._levels[ASK] else [(exch, now, 0, 0, 0, CLEAR, 0)]
        for side, levels in ((BID, book["bids"]), (ASK, book["asks"])):
            new = {self.grid.ticks(p): self.grid.lots(q) for p, q, *_ in levels}
            old = self._levels[side]
            rows += [(exch, now, p, 0, 0, SET, side) for p in old.keys() - new.keys()]
            changed = [(p, q) for p, q in new.items() if old.get(p) != q]
            rows += [(exch, now, p, q, 0, SET, side) for p, q in changed]
            self._levels[side] = new
        return to_events(rows)

    async def _trades(self) -> None:
        backoff = Backoff()
        symbol = self.market["symbol"]
        while True:
            try:
                trades = await self.exchange.watch_trades(symbol)
            except (*NETWORK_ERRORS, ccxt.ExchangeError):
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            now = self.clock.now()
            for t in trades:
                if self.trusted:
                    message = {"T": t["timestamp"], "p": t["price"], "q": t["amount"], "t": 0}
                    message["m"] = t.get("side") == "sell"  # a sell hit the bid: the buyer made it
                    self.listener.on_book(trade_event(self.grid, message, now))


def feed_for(exchange: Any, *args: Any, **kwargs: Any) -> BinanceDiffFeed | CcxtBookFeed:
    """Binance's own diff stream where the exchange is Binance's; ccxt.pro's book elsewhere."""
    family = exchange.id in ("binance", "binanceusdm", "binancecoinm")
    return (BinanceDiffFeed if family else CcxtBookFeed)(exchange, *args, **kwargs)


async def keep_clock(clock: ExchangeClock, exchange: Any) -> None:
    """Re-measure the clock offset every minute (drift, a server clock stepped)."""
    while True:
        await asyncio.sleep(CLOCK_EVERY_S)
        with contextlib.suppress(ccxt.NetworkError, ccxt.ExchangeError):
            await clock.measure(exchange)
