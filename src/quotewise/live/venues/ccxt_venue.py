"""A real exchange as a :class:`~quotewise.live.venue.Venue`: ccxt for orders and account, ccxt.pro
and the venue's own streams for market data, our orders and our fills.

What makes it safe to leave running (docs/venues.md has the rules):

- **Our orders are ours by name.** Each carries a client order id ``qw<maker hash>-<our id>``, so
  a timed-out place is resolved by looking that id up (never placed again blindly), orders left
  from a crash are recognised, and another program's orders on the account are left alone.
- **No fill missed or counted twice.** Fills come from the user-data stream; every (re)connect and
  every start reconciles with REST (trades since the last stored fill, open orders) before quoting
  again; a fill is known by the venue's trade id and numbered once (``seq``).
- **Quoting pauses while the book is not trusted** (a sequence gap, a stale snapshot, a dropped
  stream, late data, a user stream down): our orders are cancelled and new ones refused until the
  book and our orders are in sync again.
- **Rate limits** are ccxt's limiter plus our own order/cancel budget per exchange account; an HTTP
  429/418 backs off (honouring Retry-After) and is counted, never retried in a loop.
- **A dead-man switch** (Binance ``countdownCancelAll``, ccxt's ``cancelAllOrdersAfter``) is kept
  armed where the exchange has one, so a dead process leaves no quotes behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ccxt
import ccxt.pro
import numpy as np

from quotewise.errors import ConfigError
from quotewise.live.venue import NotSupported, VenueFill, VenueListener, VenueOrder
from quotewise.live.venues.depth import Grid
from quotewise.live.venues.endpoint import point_at
from quotewise.live.venues.feeds import (
    NETWORK_ERRORS,
    Backoff,
    ExchangeClock,
    FeedStats,
    feed_for,
    keep_clock,
    link_status,
)
from quotewise.live.venues.keys import Keys
from quotewise.logs import kv
from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response

logger = logging.getLogger(__name__)

PRICE_BAND = 0.25  # the dense book spans the first mid +-25% (a move beyond it is a halted market)
DEADMAN_MS = 30_000  # the exchange cancels our orders if not renewed within this (renewed each third)
LOOKUP_TRIES = 5  # a timed-out place is looked up this many times (with backoff) before it is given up
TRADES_OVERLAP_MS = 60_000  # trades are fetched from a minute before the last one stored
BUDGET_PER_S = 20.0  # our own order + cancel budget per exchange account (Binance USD-M: 30/s)
BUDGET_BURST = 40.0
BINANCE_DEADMAN = {
    "binanceusdm": "fapiPrivatePostCountdownCancelAll",
    "binancecoinm": "dapiPrivatePostCountdownCancelAll",
}
UNTRUSTED = "book not trusted"
TESTNET = "testnet"  # --endpoint testnet: ccxt's sandbox mode
CONNECT_TRIES = 6  # a call at connect is tried this often over ~8 s before the start fails
T = TypeVar("T")


def open_exchange(exchange_id: str, keys: Keys | None = None, endpoint: str | None = None) -> Any:
    """A ccxt.pro client for ``exchange_id`` (every ccxt id), its hosts moved to ``endpoint``
    (``testnet``: the exchange's own testnet, which may have several hosts)."""
    if exchange_id not in ccxt.pro.exchanges:
        raise ConfigError(
            f"unknown exchange {exchange_id!r}: ccxt.pro knows {', '.join(ccxt.pro.exchanges[:8])}, ..."
        )
    config: dict[str, Any] = {"enableRateLimit": True, "options": {"adjustForTimeDifference": True}}
    if keys is not None:
        config.update(apiKey=keys.api_key, secret=keys.secret)
    exchange = getattr(ccxt.pro, exchange_id)(config)
    if endpoint == TESTNET:
        try:
            exchange.set_sandbox_mode(True)  # ccxt knows each exchange's testnet hosts
        except ccxt.NotSupported as exc:
            raise ConfigError(f"{exchange_id} has no testnet in ccxt: {exc}") from exc
    elif endpoint:
        point_at(exchange, endpoint)
    return exchange


def instrument_of(exchange: Any, market: dict[str, Any]) -> Instrument:
    """The instrument as the exchange lists it: tick, lot, minimums, fees, contract terms, and the
    instrument fields a venue adapter adds under ``quotewise`` (prediction markets: price bounds,
    fee curve)."""

    def step(value: Any) -> float:
        if value is None:
            raise ConfigError(f"{exchange.id} lists no precision for {market['symbol']}")
        return float(value) if exchange.precisionMode == ccxt.TICK_SIZE else 10.0 ** -float(value)

    tick, lot = step(market["precision"]["price"]), step(market["precision"]["amount"])
    limits = market.get("limits") or {}
    min_amount = (limits.get("amount") or {}).get("min") or lot
    inverse = bool(market.get("inverse"))
    listed: dict[str, Any] = dict(
        symbol=market["id"],
        venue=exchange.id,
        tick_size=tick,
        lot_size=lot,
        min_size_lots=max(1, math.ceil(round(float(min_amount) / lot, 9))),
        maker_fee=float(market.get("maker") or 0.0),
        taker_fee=float(market.get("taker") or 0.0),
        contract="inverse" if inverse else "linear",
        contract_size=float(market.get("contractSize") or 1.0),
        base=market.get("base") or "",
        quote=market.get("quote") or "",
        settle=market.get("settle") or "",
        min_notional=float((limits.get("cost") or {}).get("min") or 0.0),
    )
    # what ccxt's market has no field for (a prediction market's price bounds and fee schedule)
    return Instrument(**{**listed, **(market.get("quotewise") or {})})


async def patiently(call: Callable[[], Awaitable[T]], tries: int = CONNECT_TRIES) -> T:
    """``call()``, tried again with backoff on what passes (a dropped connection, a 429, a 5xx); the
    last failure is raised."""
    backoff = Backoff()
    for attempt in range(tries):
        try:
            return await call()
        except ccxt.NetworkError as exc:
            if attempt == tries - 1:
                raise
            logger.warning("retrying", extra=kv(error=str(exc)[:200]))
            await asyncio.sleep(backoff.next())
    raise AssertionError("unreachable: the last try returns or raises")


async def first_book(exchange: Any, symbol: str, wait_s: float = 10.0) -> dict[str, Any]:
    """The book now, both sides quoted (waiting a little for a market that is just opening)."""
    deadline = time.monotonic() + wait_s
    while True:
        book = await patiently(lambda: exchange.fetch_order_book(symbol, 5))
        if book["bids"] and book["asks"]:
            return book
        if time.monotonic() > deadline:
            raise ConfigError(f"{symbol} on {exchange.id} has an empty book side: nothing to quote")
        await asyncio.sleep(0.5)


@dataclass
class OrderBudget:
    """A token bucket of order and cancel requests, shared by the makers on one exchange account."""

    per_second: float = BUDGET_PER_S
    burst: float = BUDGET_BURST
    tokens: float = BUDGET_BURST
    stamp: float = field(default_factory=time.monotonic)
    paused_until: float = 0.0  # after a 429/418: nothing is sent before this (monotonic seconds)
    refused: int = 0
    rate_limited: int = 0
    cancels_waiting: int = 0  # cancels go first: no place is sent while one waits

    def _refill(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        return now

    def take(self, cancel: bool = False) -> bool:
        """One request now, if the budget and the venue allow it (a place also waits for cancels)."""
        now = self._refill()
        if now < self.paused_until or self.tokens < 1 or (not cancel and self.cancels_waiting):
            self.refused += 1
            return False
        self.tokens -= 1
        return True

    def wait_s(self) -> float:
        """How long until a request may be sent."""
        now = self._refill()
        return max(self.paused_until - now, (1 - self.tokens) / self.per_second, 0.0)

    def back_off(self, retry_after_s: float) -> None:
        self.rate_limited += 1
        self.paused_until = max(self.paused_until, time.monotonic() + retry_after_s)


_BUDGETS: dict[tuple[str, str], OrderBudget] = {}


def budget_for(exchange: Any) -> OrderBudget:
    """The budget of the account behind ``exchange`` (by exchange, order endpoint and key)."""
    api = exchange.urls["api"]
    host = api.get("fapiPrivate") or api.get("clob") or api.get("rest") or ""
    key = (f"{exchange.id}@{host}", exchange.apiKey or "")
    return _BUDGETS.setdefault(key, OrderBudget())


@dataclass
class _Order:
    """One of our orders as this venue tracks it."""

    side: int
    price: int
    size: int
    left: int
    exchange_id: str | None = None
    placing: bool = True  # the place request has not been answered yet
    cancel_wanted: bool = False
    done: bool = False
    acked_at: float = 0.0  # monotonic time the exchange's answer to the place arrived


class CcxtVenue:
    """One maker's market on a real exchange; see the module docstring. Build it, ``await connect()``
    (markets, clock, snapshot, reconciliation), then hand it to a Maker."""

    strict_order_count = True  # the order manager never has more orders alive per side than quotes
    stop_wait_s = 10.0  # a stop waits this long for cancels confirmed (through backoffs and reconnects)
    resend_cancels = True  # on resume: a cancel asked for before a crash may never have been sent

    def __init__(
        self,
        maker_id: str,
        exchange: Any,
        symbol: str,
        trade_ids: set[str] | None = None,
        last_seq: int = 0,
        next_order_id: int = 1,
        since_ms: int | None = None,
        deadman_ms: int | None = None,
    ) -> None:
        self.maker_id = maker_id
        self.exchange = exchange
        self.symbol = symbol
        self.prefix = "qw" + hashlib.sha1(maker_id.encode()).hexdigest()[:6] + "-"
        self.clock = ExchangeClock()
        self.budget = budget_for(exchange)
        self.deadman_ms = DEADMAN_MS if deadman_ms is None else deadman_ms  # 0: no dead-man switch
        self._trade_ids = set(trade_ids or ())
        self._seq = last_seq
        self._next_id = next_order_id
        self._since_ms = since_ms
        self._orders: dict[int, _Order] = {}
        self._by_exchange_id: dict[str, int | None] = {}  # exchange order id -> our id (None: not ours)
        self._listener: VenueListener | None = None
        self._tasks: list[asyncio.Task] = []
        self._recovered: list[VenueFill] = []
        self._at_venue: list[VenueOrder] = []
        self._book_trusted = False
        self._orders_trusted = False
        self._clearing: set[int] = set()  # orders of ours we did not know, being cancelled
        self.instrument: Instrument
        self.stats = FeedStats()
        # placed, cancelled, rejected by the exchange, refused here (untrusted book, budget), places
        # that timed out, reconciliations
        kinds = ("placed", "cancelled", "rejected", "refused", "timeouts", "reconciles")
        self.counts = dict.fromkeys(kinds, 0)
        self.start_price: float | None = None
        self.on_end: Any = None  # the engine's hook; a live market does not end

    # -- setup -------------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Markets, the clock offset, the first book (for the price range), then reconciliation."""
        try:
            await self._connect()
        except ccxt.AuthenticationError as exc:
            raise ConfigError(f"{self.exchange.id} refused the API keys: {exc}") from exc

    async def _connect(self) -> None:
        if self.exchange.has.get("fetchTime"):  # before any signed request (ccxt signs on our clock)
            await patiently(self.exchange.load_time_difference)
        try:
            await patiently(self.exchange.load_markets)
        except ccxt.AuthenticationError:
            raise
        except ccxt.BaseError as exc:
            raise ConfigError(f"cannot load {self.exchange.id} markets: {exc}") from exc
        if self.symbol not in self.exchange.markets:
            raise ConfigError(
                f"{self.exchange.id} has no market {self.symbol!r} (ccxt's symbols, e.g. BTC/USDT:USDT)"
            )
        self.market = self.exchange.market(self.symbol)
        self.instrument = instrument_of(self.exchange, self.market)
        self.grid = Grid(self.instrument.tick_size, self.instrument.lot_size)
        await patiently(lambda: self.clock.measure(self.exchange))
        book = await first_book(self.exchange, self.symbol)
        mid = (book["bids"][0][0] + book["asks"][0][0]) / 2
        self.start_price = mid / self.instrument.tick_size
        self._range = (
            max(int(self.start_price * (1 - PRICE_BAND)), 0),
            int(self.start_price * (1 + PRICE_BAND)) + 1,
        )
        await self._recover()

    async def _recover(self) -> None:
        """What happened while we were away: trades since the last stored fill (numbered once, kept
        for :meth:`fills_since`) and our orders open at the exchange (for :meth:`open_orders`)."""
        for trade in await patiently(self._trades_since):
            fill = await self._fill_of(trade)
            if fill is not None:
                self._recovered.append(fill)
        self._at_venue = []
        for o in await patiently(lambda: self.exchange.fetch_open_orders(self.symbol)):
            our_id = self._our_id(o)
            if our_id is not None:
                side = BID if o["side"] == "buy" else ASK
                size, left = self.grid.lots(o["amount"]), self.grid.lots(o.get("remaining") or 0)
                price = self.grid.ticks(o["price"])
                self._at_venue.append(VenueOrder(our_id, side, price, size, left))
                self._orders[our_id] = _Order(side, price, size, left, str(o["id"]), placing=False)
                self._next_id = max(self._next_id, our_id + 1)
        self._orders_trusted = True

    # -- the Venue protocol ----------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.clock.now()

    @property
    def price_range(self) -> tuple[int, int]:
        return self._range

    @property
    def trusted(self) -> bool:
        """Quoting may go on: the book in sync, our orders reconciled, no stray order of ours left."""
        return self._book_trusted and self._orders_trusted and not self._clearing

    def _refusal(self) -> str:
        """Why a place is refused now ('' when it is not)."""
        if not self._book_trusted:
            return UNTRUSTED
        if not self._orders_trusted or self._clearing:
            return "reconciling orders"
        return "" if self.budget.take() else "order budget"

    def client_id(self, order_id: int) -> str:
        return f"{self.prefix}{order_id}"

    def place(self, side: int, price: int, size: int, post_only: bool = True, reject_reason: int = 0) -> int:
        order_id = self._next_id
        self._next_id += 1
        self._orders[order_id] = _Order(side, price, size, size)
        why = self._refusal()
        if why:  # refused here, never sent
            self.counts["refused"] += 1
            self._closed(order_id, "rejected", why)
        else:
            self._spawn(self._submit(order_id, post_only))
        return order_id

    def cancel(self, order_id: int) -> bool:
        order = self._orders.get(order_id)
        if order is None:  # not known here (an order left from before a restart): cancel by name,
            order = self._orders[order_id] = _Order(0, 0, 0, 0, placing=False)
            self._clearing.add(order_id)  # and place nothing until it is gone
        if order.done:
            return False
        order.cancel_wanted = True
        if not order.placing:
            self._spawn(self._cancel(order_id))
        return True

    def amend(self, order_id: int, price: int, size: int) -> bool:
        raise NotSupported(f"{self.exchange.id}: cancel and place instead of amend")

    def open_orders(self) -> list[VenueOrder]:
        """Our orders open at the exchange when we connected (recovery compares them with ours)."""
        return list(self._at_venue)

    def position(self) -> tuple[int, float, float]:
        raise NotSupported("a real venue's position is the maker's ledger (fills) and fetch_positions")

    def fills_since(self, seq: int) -> list[VenueFill]:
        """The fills found at connect that the store did not have, numbered after the last stored."""
        return [f for f in self._recovered if f.seq > seq]

    def subscribe(self, listener: VenueListener) -> None:
        self._listener = listener

    async def run(self) -> None:
        """The streams: market data, our orders, our fills, the dead-man switch and the clock."""
        feed = feed_for(self.exchange, self.market, self.grid, self.clock, self)
        self.stats = feed.stats
        bodies = [
            feed.run(),
            self._watch_orders(),
            self._watch_trades(),
            keep_clock(self.clock, self.exchange),
        ]
        if self.deadman_ms:
            bodies.append(self._keep_deadman())
        tasks = [asyncio.create_task(b) for b in bodies]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Requests in flight end, the dead-man switch is disarmed (a stopped maker's countdown would
        cancel the symbol's orders later), then the exchange's connections close."""
        self.close()
        if self.deadman_ms and hasattr(self, "market"):
            await self._arm_deadman(0)
        await self.exchange.close()

    def status(self) -> dict[str, Any]:
        """The connection as ``mm status`` shows it."""
        return {
            **link_status(self.trusted, self.clock, self.stats),
            "orders": dict(self.counts),
            "rate_limited": self.budget.rate_limited,
            "budget_refused": self.budget.refused,
        }

    # -- market feed callbacks ---------------------------------------------------------------------------
    def on_book(self, events: np.ndarray) -> None:
        if self._listener is not None:
            self._listener.on_market(events)

    def on_trust(self, trusted: bool, reason: str) -> None:
        """The book became (un)trusted: pause (empty the maker's book, pull our quotes) or resume."""
        self._book_trusted = trusted
        if not trusted:
            self._pause(reason)

    def _pause(self, reason: str) -> None:
        clear = np.zeros(1, dtype=EVENT_DTYPE)
        clear["kind"], clear["local_ts"], clear["exch_ts"] = CLEAR, self.now, self.now
        self.on_book(clear)  # the maker's book is empty: it quotes nothing until the book is back
        for order_id, order in list(self._orders.items()):
            if not order.done and not order.cancel_wanted:
                self.cancel(order_id)
        logger.warning("quoting paused", extra=kv(maker=self.maker_id, reason=reason))

    # -- order entry -------------------------------------------------------------------------------------
    def _spawn(self, body: Any) -> None:
        task = asyncio.get_running_loop().create_task(body)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _submit(self, order_id: int, post_only: bool) -> None:
        order = self._orders[order_id]
        params: dict[str, Any] = {"clientOrderId": self.client_id(order_id)}
        if post_only:
            params["postOnly"] = True
        side = "buy" if order.side == BID else "sell"
        try:
            placed = await self.exchange.create_order(
                self.symbol,
                "limit",
                side,
                self.instrument.qty(order.size),
                self.instrument.px(order.price),
                params,
            )
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
            self._rate_limited(exc)
            self._rejected(order_id, "rate limited")
        except (ccxt.RequestTimeout, ccxt.ExchangeNotAvailable, *NETWORK_ERRORS) as exc:
            self.counts["timeouts"] += 1
            await self._resolve_unknown(order_id, exc)
        except ccxt.ExchangeError as exc:  # an invalid order (post-only would cross, a minimum), ...
            self._rejected(order_id, f"venue: {exc}")
        else:
            self.counts["placed"] += 1
            self._acknowledged(order_id, placed)

    async def _resolve_unknown(self, order_id: int, exc: Exception) -> None:
        """The place timed out: the order may or may not be at the exchange. Look it up by its client
        id (a few times, with backoff); only an exchange that says it never saw it makes it rejected."""
        backoff = Backoff()
        for _ in range(LOOKUP_TRIES):
            await asyncio.sleep(backoff.next())
            try:
                found = await self.exchange.fetch_order(
                    None, self.symbol, {"clientOrderId": self.client_id(order_id)}
                )
            except ccxt.OrderNotFound:
                self._rejected(order_id, f"not placed ({exc.__class__.__name__})")
                return
            except (ccxt.NetworkError, ccxt.ExchangeError):
                continue
            self._acknowledged(order_id, found)
            return
        self._orders_trusted = False  # still unknown: reconcile before quoting again
        self._spawn(self._reconcile(f"order {order_id} unresolved after {LOOKUP_TRIES} lookups"))

    def _acknowledged(self, order_id: int, placed: dict[str, Any]) -> None:
        order = self._orders[order_id]
        order.placing = False
        order.acked_at = time.monotonic()
        order.exchange_id = str(placed["id"])
        self._by_exchange_id[order.exchange_id] = order_id
        status = placed.get("status")
        if status in ("rejected", "expired", "canceled") and not placed.get("filled"):
            self._rejected(order_id, f"venue: order {status}")
            return
        if not order.done:
            self._answer(self._response("accepted", order_id))
        if order.cancel_wanted and not order.done:
            self._spawn(self._cancel(order_id))

    async def _cancel(self, order_id: int) -> None:
        order = self._orders[order_id]
        if not self.budget.take(cancel=True):  # a cancel waits for the budget; it is never dropped
            self.budget.cancels_waiting += 1
            try:
                while not self.budget.take(cancel=True):
                    await asyncio.sleep(self.budget.wait_s() or 0.01)
                    if order.done:
                        return
            finally:
                self.budget.cancels_waiting -= 1
        try:
            await self.exchange.cancel_order(
                order.exchange_id, self.symbol, {"clientOrderId": self.client_id(order_id)}
            )
        except ccxt.OrderNotFound:
            await self._settle(order_id)  # it ended first: learn how without waiting for the stream
            return
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
            self._rate_limited(exc)
            self._spawn(self._cancel(order_id))
            return
        except (ccxt.NetworkError, ccxt.ExchangeError) as exc:
            logger.warning("cancel failed", extra=kv(maker=self.maker_id, order=order_id, error=repr(exc)))
            await asyncio.sleep(Backoff().next())
            if not order.done:
                self._spawn(self._cancel(order_id))
            return
        self.counts["cancelled"] += 1
        self._closed(order_id, "cancelled")

    async def _settle(self, order_id: int) -> None:
        """An order the exchange no longer has open: book the fills it made that we have not seen,
        then close it (a cancel confirmed, or an order that never arrived) if the fills did not."""
        with contextlib.suppress(ccxt.NetworkError, ccxt.ExchangeError):
            await self._book_missed_fills()
            if not self._orders[order_id].done:
                self._closed(order_id, "cancelled")

    async def catch_up(self) -> None:
        """A last look before a stop: fills the exchange made that the stream has not brought yet."""
        with contextlib.suppress(ccxt.NetworkError, ccxt.ExchangeError):
            await self._book_missed_fills()

    async def _book_missed_fills(self) -> int:
        """Our trades since the last one known that have not been booked, delivered in order."""
        trades = await patiently(self._trades_since)
        for trade in trades:
            fill = await self._fill_of(trade)
            if fill is not None:
                self._deliver_fill(fill)
        return len(trades)

    def _rate_limited(self, exc: Exception) -> None:
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        retry = headers.get("Retry-After") or headers.get("retry-after")
        self.budget.back_off(float(retry) if retry else 1.0)
        logger.warning("rate limited", extra=kv(exchange=self.exchange.id, error=str(exc)[:200]))

    # -- the user-data streams ---------------------------------------------------------------------------
    async def _watch_orders(self) -> None:
        await self._watch(self.exchange.watch_orders, self._on_order)

    async def _watch_trades(self) -> None:
        await self._watch(self.exchange.watch_my_trades, self._on_stream_trade)

    async def _watch(self, watch: Any, handle: Any) -> None:
        """One user-data stream; a drop pauses quoting, and reconnecting reconciles before resuming."""
        backoff = Backoff()
        while True:
            try:
                for item in await watch(self.symbol):
                    await handle(item)
                backoff.reset()
            except (ccxt.NetworkError, ccxt.ExchangeError, *NETWORK_ERRORS) as exc:
                self.stats.disconnects += 1
                self._orders_trusted = False
                self._pause(f"user stream: {exc!r}")
                await asyncio.sleep(backoff.next())
                await self._reconcile("user stream reconnected")

    async def _on_order(self, o: dict[str, Any]) -> None:
        order_id = self._our_id(o)
        if order_id is None or order_id not in self._orders:
            return
        order = self._orders[order_id]
        if order.exchange_id is None:
            order.exchange_id = str(o["id"])
            self._by_exchange_id[order.exchange_id] = order_id
        if o.get("status") in ("canceled", "expired", "rejected") and not order.done:
            filled = self.grid.lots(o.get("filled") or 0)
            if filled >= order.size - order.left:  # every fill of it has been booked
                self._closed(
                    order_id,
                    "rejected" if order.placing or (o["status"] == "expired" and not filled) else "cancelled",
                )

    async def _on_stream_trade(self, trade: dict[str, Any]) -> None:
        fill = await self._fill_of(trade)
        if fill is not None:
            self._deliver_fill(fill)

    async def _reconcile(self, why: str) -> None:
        """REST truth after a gap in the user stream: missed fills booked, vanished orders closed,
        orders we do not know cancelled; then quoting may resume."""
        self.counts["reconciles"] += 1
        backoff = Backoff()
        while True:
            try:  # open orders first: an order that fills after this still looks open, not cancelled
                asked = time.monotonic()
                open_now = await self.exchange.fetch_open_orders(self.symbol)
                trades = await self._book_missed_fills()
                break
            except (ccxt.NetworkError, ccxt.ExchangeError) as exc:
                logger.warning("reconcile failed", extra=kv(maker=self.maker_id, error=repr(exc)))
                await asyncio.sleep(backoff.next())
        at_venue = {self._our_id(o): o for o in open_now}
        for order_id, order in list(self._orders.items()):
            # gone from the exchange: closed; but not one answered after the list was asked for (it
            # may have arrived after), nor one being cancelled (its cancel says how it ended)
            settled = not order.placing and order.acked_at < asked and not order.cancel_wanted
            if not order.done and settled and order_id not in at_venue:
                self._closed(order_id, "cancelled")
        for order_id in at_venue:
            if order_id is not None and (order_id not in self._orders or self._orders[order_id].done):
                self._orders.pop(order_id, None)  # open there, ended or unknown here: a stray
                self.cancel(order_id)
        self._orders_trusted = True
        logger.info("reconciled", extra=kv(maker=self.maker_id, why=why, trades=trades, open=len(at_venue)))

    async def _trades_since(self) -> list[dict[str, Any]]:
        """Our trades on the symbol since a minute before the last one known (pages of 500)."""
        if self._since_ms is None:
            return []
        since, out = self._since_ms - TRADES_OVERLAP_MS, []
        while True:
            page = await self.exchange.fetch_my_trades(self.symbol, since, 500)
            out += page
            if len(page) < 500:
                return out
            since = int(page[-1]["timestamp"]) + 1

    # -- fills -------------------------------------------------------------------------------------------
    async def _fill_of(self, trade: dict[str, Any]) -> VenueFill | None:
        """A trade of ours not seen before as a numbered fill; None for another's or a repeat."""
        trade_id = str(trade["id"])
        if trade_id in self._trade_ids:
            return None
        order_id = await self._owner(str(trade["order"]), trade)
        if order_id is None or trade_id in self._trade_ids:  # (the stream and a REST catch-up race)
            return None
        self._trade_ids.add(trade_id)
        order = self._orders.setdefault(order_id, _Order(0, 0, 0, 0, str(trade["order"]), placing=False))
        qty = self.grid.lots(trade["amount"])
        order.left = max(order.left - qty, 0)
        self._seq += 1
        ts = int(trade["timestamp"]) * 1_000_000
        self._since_ms = max(self._since_ms or 0, int(trade["timestamp"]))
        fee = float((trade.get("fee") or {}).get("cost") or 0.0)
        maker = trade.get("takerOrMaker") != "taker"
        side = BID if trade["side"] == "buy" else ASK
        return VenueFill(
            self._seq,
            order_id,
            ts,
            side,
            self.grid.ticks(trade["price"]),
            qty,
            order.left,
            fee,
            maker,
            trade_id,
        )

    async def _owner(self, exchange_id: str, trade: dict[str, Any]) -> int | None:
        """Our id of the order behind a trade: known, named in the trade, or looked up once."""
        if exchange_id in self._by_exchange_id:
            return self._by_exchange_id[exchange_id]
        our = self._our_id(trade.get("info") or {})
        if our is None:  # a lookup that fails for a while raises: the trade is looked at again later
            with contextlib.suppress(ccxt.OrderNotFound):
                looked_up = await patiently(lambda: self.exchange.fetch_order(exchange_id, self.symbol))
                our = self._our_id(looked_up)
        self._by_exchange_id[exchange_id] = our
        return our

    def _our_id(self, order: dict[str, Any]) -> int | None:
        cid = order.get("clientOrderId") or order.get("c") or order.get("clientOid") or ""
        if isinstance(cid, str) and cid.startswith(self.prefix) and cid[len(self.prefix) :].isdigit():
            return int(cid[len(self.prefix) :])
        return None

    def _deliver_fill(self, fill: VenueFill) -> None:
        if fill.left <= 0 and fill.order_id in self._orders:
            self._orders[fill.order_id].done = True
            self._clearing.discard(fill.order_id)
        r = Response(
            "fill",
            fill.order_id,
            fill.exch_ts,
            self.now,
            fill.side,
            fill.price,
            fill.qty,
            fill.left,
            fill.maker,
            "",
            0,
            0.0,
            fill.fee,
            -1,
            fill.trade_id,
        )
        self._answer(r, fill.seq)

    # -- responses ---------------------------------------------------------------------------------------
    def _response(self, kind: str, order_id: int, reason: str = "") -> Response:
        o = self._orders[order_id]
        now = self.now
        return Response(kind, order_id, now, now, o.side, o.price, 0, o.left, True, reason, 0, 0.0, 0.0, -1)

    def _rejected(self, order_id: int, reason: str) -> None:
        self.counts["rejected"] += 1
        self._closed(order_id, "rejected", reason)

    def _closed(self, order_id: int, kind: str, reason: str = "") -> None:
        order = self._orders[order_id]
        self._clearing.discard(order_id)
        if order.done:
            return
        order.done = True
        order.placing = False
        self._answer(self._response(kind, order_id, reason))

    def _answer(self, response: Response, seq: int = 0) -> None:
        """Responses reach the maker on the next loop turn, never inside the call that caused them."""
        if self._listener is not None:
            asyncio.get_running_loop().call_soon(self._listener.on_responses, [(response, seq)])

    # -- the dead-man switch ------------------------------------------------------------------------------
    async def _keep_deadman(self) -> None:
        """Renew the exchange's cancel-all countdown (a third of it apart; a failed renewal is tried
        again after a second); where there is none, every dropped stream pulls our quotes instead."""
        while True:
            renewed = await self._arm_deadman(self.deadman_ms)
            await asyncio.sleep(self.deadman_ms / 3000 if renewed else 1.0)

    async def _arm_deadman(self, countdown_ms: int) -> bool:
        """Set the countdown (0 disarms it); False when the exchange has none or did not take it."""
        method = BINANCE_DEADMAN.get(self.exchange.id)
        try:
            if method is not None:
                await getattr(self.exchange, method)(
                    {"symbol": self.market["id"], "countdownTime": countdown_ms}
                )
            elif self.exchange.has.get("cancelAllOrdersAfter"):
                await self.exchange.cancel_all_orders_after(countdown_ms)
            else:
                return False
        except (ccxt.NetworkError, ccxt.ExchangeError) as exc:
            logger.warning("dead-man switch not renewed", extra=kv(maker=self.maker_id, error=str(exc)[:200]))
            return False
        return True
