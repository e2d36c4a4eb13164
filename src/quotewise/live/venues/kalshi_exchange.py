"""Kalshi behind the ccxt / ccxt.pro unified API: exactly the part of it that
:class:`~quotewise.live.venues.ccxt_venue.CcxtVenue` and
:class:`~quotewise.live.venues.feeds.CcxtBookFeed` call, so the venue's retries, reconciliation and
recovery run unchanged on Kalshi (ccxt has no Kalshi exchange; this wraps our own
:class:`~quotewise.live.venues.kalshi_client.KalshiClient`).

The market is a market's YES contract, in dollars: ``buy`` is buying YES at ``price``; ``sell`` is
buying NO at ``1 - price`` (Kalshi's book holds bids only: a NO bid at ``100 - p`` cents is the YES
ask at ``p``; buying NO never needs a YES position to sell). Sizes are whole contracts. Orders carry
Kalshi's own ``client_order_id`` (ccxt's ``clientOrderId``).

Answers are ccxt-shaped dicts (orders: id, clientOrderId, status open/closed/canceled, side, price,
amount, filled, remaining; trades: id, order, timestamp, side, price, amount, fee {cost, currency
USD}, takerOrMaker) and failures are ccxt's exceptions: ``RequestTimeout`` / ``NetworkError`` (no
answer), ``ExchangeNotAvailable`` (5xx), ``RateLimitExceeded`` (429), ``AuthenticationError`` (401),
``OrderNotFound`` (404), ``InvalidOrder`` (400, e.g. a post-only order that would cross),
``DuplicateOrderId`` (409), ``InvalidNonce`` (a gap in the book's ``seq``: the book is subscribed
anew, with a new snapshot).

Streams share one websocket: the first ``watch_*`` call connects and subscribes its channel; a
dropped connection fails every stream's next ``watch_*`` with ``NetworkError`` (the venue reconciles
over REST), and the next call connects again. Book and trade messages carry no exchange time (a
trade's ``ts`` is whole seconds): the receive time stands for it, as in
:mod:`quotewise.data.kalshi`. Kalshi has no time endpoint: ``has['fetchTime']`` is False (the HTTP
Date header's whole seconds are what :meth:`KalshiExchange.fetch_time` can give). Kalshi's fees depend
on the price, so markets list no proportional fee: each trade's ``fee`` is the exchange's charge (the
fill's ``fee_cost`` where given, else the fee schedule's formula).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import ccxt

from quotewise.data.kalshi import KALSHI_FEES
from quotewise.live.venues.kalshi_client import (
    MAKER_RATE,
    PRODUCTION,
    TAKER_RATE,
    AuthError,
    InvalidOrder,
    KalshiClient,
    KalshiError,
    KalshiStream,
    NotFound,
    RateLimited,
    ServerError,
    Timeout,
    fill_time_ms,
    iso_ms,
    kalshi_fee,
)

CENTS = 100
T = TypeVar("T")
STATUS = {"resting": "open", "pending": "open", "executed": "closed", "canceled": "canceled"}


def ccxt_error(exc: KalshiError, missing: type[ccxt.BaseError] = ccxt.OrderNotFound) -> ccxt.BaseError:
    """Kalshi's failure as ccxt's exception (``missing``: what a 404 means here)."""
    text = str(exc)
    if isinstance(exc, AuthError):
        return ccxt.AuthenticationError(text)
    if isinstance(exc, RateLimited):
        return ccxt.RateLimitExceeded(text)
    if isinstance(exc, NotFound):
        return missing(text)
    if isinstance(exc, InvalidOrder):
        return ccxt.DuplicateOrderId(text) if exc.status == 409 else ccxt.InvalidOrder(text)
    if isinstance(exc, ServerError):
        return ccxt.ExchangeNotAvailable(text)
    if isinstance(exc, Timeout):
        return ccxt.RequestTimeout(text)
    return ccxt.NetworkError(text)


def _cents_of(record: dict[str, Any], name: str) -> int | None:
    """A price in cents from ``name`` (cents) or ``name_dollars`` / ``name_fixed`` (dollar text)."""
    if record.get(name) is not None:
        return int(record[name])
    for suffix in ("_dollars", "_fixed"):
        text = record.get(name + suffix)
        if text is not None:
            return int((Decimal(str(text)) * CENTS).to_integral_value())
    return None


def yes_cents(record: dict[str, Any]) -> int:
    """The YES price (cents) of an order or fill that gives either side's."""
    yes = _cents_of(record, "yes_price")
    if yes is not None:
        return yes
    no = _cents_of(record, "no_price")
    if no is None:
        raise ccxt.ExchangeError(f"kalshi: no price in {record}")
    return CENTS - no


def ccxt_side(record: dict[str, Any]) -> str:
    """Buying YES or selling NO is a YES buy; the others sell YES."""
    return "buy" if (record.get("side") == "yes") == (record.get("action", "buy") == "buy") else "sell"


def _time_ms(text: Any) -> int | None:
    if not text:
        return None
    return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() * 1000)


class _Mailbox:
    """What one stream delivered since the last ``watch_*`` call (items, or an exception to raise)."""

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.ready = asyncio.Event()

    def put(self, item: Any) -> None:
        self.items.append(item)
        self.ready.set()

    async def take(self) -> list[Any]:
        """Every item up to the first exception; an exception first is raised (and consumed)."""
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        if isinstance(self.items[0], BaseException):
            raise self.items.popleft()
        out = []
        while self.items and not isinstance(self.items[0], BaseException):
            out.append(self.items.popleft())
        return out


class KalshiExchange:
    """See the module docstring. ``host``: an origin (``http://127.0.0.1:PORT``, the demo's) instead
    of production; ``tickers``: the markets :meth:`load_markets` loads (default: every open market);
    ``maker_fees``: the markets charge makers (only for a fill that does not say its fee)."""

    id = "kalshi"
    precisionMode = ccxt.TICK_SIZE
    has: dict[str, bool] = {  # noqa: RUF012 (ccxt's shape: a class attribute)
        "fetchTime": False,
        "cancelAllOrdersAfter": False,
        "fetchOrderBook": True,
        "createOrder": True,
        "cancelOrder": True,
        "fetchOpenOrders": True,
        "fetchOrder": True,
        "fetchMyTrades": True,
        "watchOrderBook": True,
        "watchTrades": True,
        "watchOrders": True,
        "watchMyTrades": True,
    }

    def __init__(
        self,
        api_key_id: str,
        private_key_pem: bytes,
        host: str | None = None,
        tickers: list[str] | None = None,
        maker_fees: bool = False,
    ) -> None:
        self.client = KalshiClient(api_key_id, private_key_pem, host or PRODUCTION)
        self.apiKey = api_key_id
        self.urls: dict[str, Any] = {"api": {"rest": self.client.base_url, "ws": self.client.ws_url}}
        self.tickers = list(tickers or [])
        self.maker_fees = maker_fees
        self.markets: dict[str, dict[str, Any]] = {}
        self.orderbooks: dict[str, dict[str, Any]] = {}
        self.options: dict[str, Any] = {"timeDifference": 0}
        self._ws: KalshiStream | None = None
        self._reader: asyncio.Task | None = None
        self._ws_lock = asyncio.Lock()
        self._subscribed: set[tuple[str, str]] = set()
        self._pending: dict[int, tuple[str, str]] = {}  # command id -> (channel, ticker)
        self._sids: dict[int, tuple[str, str]] = {}
        self._seqs: dict[int, int] = {}
        self._levels: dict[str, dict[str, dict[int, int]]] = {}  # ticker -> yes/no -> cents -> qty
        self._boxes: dict[tuple[str, str], _Mailbox] = {}

    # -- ccxt's attributes ---------------------------------------------------------------------------
    @property
    def timeout(self) -> int:
        """The request timeout in ms (ccxt's unit)."""
        return int(self.client.timeout * 1000)

    @timeout.setter
    def timeout(self, ms: int) -> None:
        self.client.timeout = ms / 1000

    @property
    def last_response_headers(self) -> dict[str, str]:
        return self.client.last_headers

    async def _call(self, call: Awaitable[T], missing: type[ccxt.BaseError] = ccxt.OrderNotFound) -> T:
        try:
            return await call
        except KalshiError as exc:
            raise ccxt_error(exc, missing) from exc

    # -- markets and time ------------------------------------------------------------------------------
    async def load_markets(self, reload: bool = False) -> dict[str, dict[str, Any]]:
        if self.markets and not reload:
            return self.markets
        if self.tickers:
            raw = [await self._call(self.client.get_market(t), ccxt.BadSymbol) for t in self.tickers]
        else:
            raw = await self._call(self.client.get_markets(status="open"))
        self.markets = {m["ticker"]: self._market(m) for m in raw}
        return self.markets

    def _market(self, raw: dict[str, Any]) -> dict[str, Any]:
        ticker = raw["ticker"]
        return {
            "id": ticker,
            "symbol": ticker,
            "base": ticker,
            "quote": "USD",
            "settle": "USD",
            "type": "option",
            "spot": False,
            "option": True,
            "contract": True,
            "linear": True,
            "inverse": False,
            "contractSize": 1.0,
            "active": raw.get("status") in ("active", "open", None),
            "precision": {"price": 0.01, "amount": 1},
            "limits": {
                "amount": {"min": 1, "max": None},
                "price": {"min": 0.01, "max": 0.99},
                "cost": {"min": None, "max": None},
            },
            "maker": 0.0,  # Kalshi's fees are per fill (see the module docstring)
            "taker": 0.0,
            "info": raw,
            "quotewise": {
                **KALSHI_FEES,
                "maker_fee": MAKER_RATE if self.maker_fees else 0.0,
                "min_price": 0.01,
                "max_price": 0.99,
                "size_unit": "contracts",
            },
        }

    def market(self, symbol: str) -> dict[str, Any]:
        if symbol not in self.markets:
            raise ccxt.BadSymbol(f"kalshi has no market {symbol!r} loaded")
        return self.markets[symbol]

    async def fetch_time(self, params: dict | None = None) -> int:
        return await self._call(self.client.exchange_time_ms())

    async def load_time_difference(self, params: dict | None = None) -> int:
        server = await self.fetch_time()
        self.options["timeDifference"] = time.time_ns() // 1_000_000 - server
        return self.options["timeDifference"]

    # -- market data -----------------------------------------------------------------------------------
    def _book(self, ticker: str, levels: dict[str, dict[int, int]], nonce: int | None) -> dict[str, Any]:
        """The YES book in dollars: YES bids as bids, NO bids at ``p`` as asks at ``100 - p``."""
        now = time.time_ns() // 1_000_000
        bids = [[c / CENTS, q] for c, q in sorted(levels["yes"].items(), reverse=True) if q > 0]
        asks = [[(CENTS - c) / CENTS, q] for c, q in sorted(levels["no"].items(), reverse=True) if q > 0]
        return {
            "symbol": ticker,
            "bids": bids,
            "asks": asks,
            "timestamp": now,
            "datetime": iso_ms(now),
            "nonce": nonce,
        }

    async def fetch_order_book(
        self, symbol: str, limit: int | None = None, params: dict | None = None
    ) -> dict:
        raw = await self._call(self.client.get_orderbook(symbol, limit), ccxt.BadSymbol)
        levels = {side: {int(p): int(q) for p, q in raw.get(side) or ()} for side in ("yes", "no")}
        return self._book(symbol, levels, None)

    # -- orders ----------------------------------------------------------------------------------------
    def _order(self, o: dict[str, Any]) -> dict[str, Any]:
        status = STATUS.get(str(o.get("status")), "open")
        filled = int(o.get("fill_count") or 0)
        remaining = int(o.get("remaining_count") or 0)
        amount = int(o.get("initial_count") or o.get("count") or filled + remaining)
        if status != "open":
            remaining = amount - filled
        stamp = _time_ms(o.get("created_time"))
        return {
            "id": str(o["order_id"]),
            "clientOrderId": o.get("client_order_id") or None,
            "symbol": o.get("ticker"),
            "type": "limit",
            "side": ccxt_side(o),
            "price": yes_cents(o) / CENTS,
            "amount": float(amount),
            "filled": float(filled),
            "remaining": float(remaining),
            "status": status,
            "timestamp": stamp,
            "datetime": o.get("created_time"),
            "lastUpdateTimestamp": _time_ms(o.get("last_update_time")),
            "timeInForce": "GTC",
            "postOnly": None,
            "fee": None,
            "trades": [],
            "info": o,
        }

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict | None = None,
    ) -> dict[str, Any]:
        params = params or {}
        if type != "limit" or price is None:
            raise ccxt.InvalidOrder("kalshi: limit orders only (a price in dollars, 0.01 to 0.99)")
        count, cents = round(float(amount)), round(float(price) * CENTS)
        if count < 1 or abs(count - float(amount)) > 1e-9:
            raise ccxt.InvalidOrder(f"kalshi: amount {amount} is not a whole number of contracts")
        if not 1 <= cents <= CENTS - 1 or abs(cents - float(price) * CENTS) > 1e-6:
            raise ccxt.InvalidOrder(f"kalshi: price {price} is not a cent from 0.01 to 0.99")
        if side not in ("buy", "sell"):
            raise ccxt.InvalidOrder(f"kalshi: side {side!r} is buy or sell (of YES)")
        post_only = bool(params.get("postOnly")) or params.get("timeInForce") == "PO"
        prices = {"yes_price": cents} if side == "buy" else {"no_price": CENTS - cents}
        placed = self.client.create_order(
            symbol,
            "yes" if side == "buy" else "no",
            "buy",
            count,
            client_order_id=params.get("clientOrderId") or params.get("client_order_id"),
            post_only=post_only,
            **prices,
        )
        return self._order(await self._call(placed, ccxt.BadSymbol))

    async def cancel_order(
        self, id: str | None, symbol: str | None = None, params: dict | None = None
    ) -> dict:
        params = params or {}
        if id is None:
            found = await self.fetch_order(None, symbol, params)
            id = found["id"]
        return self._order(await self._call(self.client.cancel_order(str(id))))

    async def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list[dict[str, Any]]:
        return [self._order(o) for o in await self._call(self.client.get_orders(symbol, "resting"))]

    async def fetch_order(
        self, id: str | None, symbol: str | None = None, params: dict | None = None
    ) -> dict:
        params = params or {}
        if id is not None:
            return self._order(await self._call(self.client.get_order(str(id))))
        client_id = params.get("clientOrderId") or params.get("client_order_id")
        if not client_id:
            raise ccxt.ArgumentsRequired("kalshi fetch_order needs an id or params['clientOrderId']")
        return self._order(await self._call(self.client.get_order_by_client_id(client_id, symbol)))

    # -- trades ----------------------------------------------------------------------------------------
    def _fee(self, fill: dict[str, Any], cents: int, count: int) -> float:
        if fill.get("fee_cost") is not None:
            return float(fill["fee_cost"])
        if fill.get("is_taker"):
            return float(kalshi_fee(count, cents, TAKER_RATE))
        return float(kalshi_fee(count, cents, MAKER_RATE)) if self.maker_fees else 0.0

    def _trade(self, fill: dict[str, Any]) -> dict[str, Any]:
        """One of our fills as ccxt's trade (its ``info`` carries ccxt's ``clientOrderId``)."""
        cents, count = yes_cents(fill), int(fill["count"])
        stamp = fill_time_ms(fill)
        price = cents / CENTS
        return {
            "id": str(fill.get("trade_id") or fill.get("fill_id")),
            "order": str(fill["order_id"]),
            "timestamp": stamp,
            "datetime": iso_ms(stamp),
            "symbol": fill.get("ticker") or fill.get("market_ticker"),
            "type": "limit",
            "side": ccxt_side(fill),
            "takerOrMaker": "taker" if fill.get("is_taker") else "maker",
            "price": price,
            "amount": float(count),
            "cost": price * count,
            "fee": {"cost": self._fee(fill, cents, count), "currency": "USD"},
            "info": {**fill, "clientOrderId": fill.get("client_order_id")},
        }

    async def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list[dict[str, Any]]:
        """Our trades at or after ``since`` (ms), oldest first, at most ``limit``."""
        min_ts = None if since is None else int(since) // 1000
        trades = [self._trade(f) for f in await self._call(self.client.get_fills(symbol, min_ts))]
        if since is not None:
            trades = [t for t in trades if t["timestamp"] >= since]
        return trades[:limit] if limit else trades

    # -- streams ---------------------------------------------------------------------------------------
    def _box(self, channel: str, ticker: str) -> _Mailbox:
        return self._boxes.setdefault((channel, ticker), _Mailbox())

    async def _ensure(self, channel: str, ticker: str) -> None:
        """The websocket connected and ``channel`` of ``ticker`` subscribed on it."""
        async with self._ws_lock:
            if self._ws is None or self._ws.closed:
                self._ws = await self._call(self.client.connect_ws())
                self._subscribed.clear()
                self._reader = asyncio.get_running_loop().create_task(self._read(self._ws))
            if (channel, ticker) not in self._subscribed:
                self._subscribed.add((channel, ticker))
                cmd = await self._ws.subscribe([channel], [ticker])
                self._pending[cmd] = (channel, ticker)

    async def _watch(self, channel: str, ticker: str) -> list[Any]:
        box = self._box(channel, ticker)
        if not box.items:
            await self._ensure(channel, ticker)
        return await box.take()

    async def watch_order_book(
        self, symbol: str, limit: int | None = None, params: dict | None = None
    ) -> dict:
        return (await self._watch("orderbook_delta", symbol))[-1]

    async def watch_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None, params: dict | None = None
    ) -> list[dict[str, Any]]:
        return await self._watch("trade", symbol)

    async def watch_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list[dict[str, Any]]:
        return await self._watch("user_orders", str(symbol))

    async def watch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list[dict[str, Any]]:
        return await self._watch("fill", str(symbol))

    async def _read(self, ws: KalshiStream) -> None:
        reason: BaseException | None = None
        try:
            async for message in ws:
                self._on_message(message)
        except KalshiError as exc:
            reason = exc
        finally:
            if self._ws is ws:
                self._ws = None
            self._sids.clear()
            self._seqs.clear()
            self._levels.clear()
            for box in self._boxes.values():
                box.put(ccxt.NetworkError(f"kalshi websocket closed: {reason or 'by us'}"))
            with contextlib.suppress(Exception):
                await ws.close()

    def _on_message(self, message: dict[str, Any]) -> None:
        kind, msg = message.get("type"), message.get("msg") or {}
        if kind == "subscribed":
            where = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if where is not None:
                self._sids[int(msg["sid"])] = where
            return
        if kind == "error":
            where = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if where is not None:
                self._subscribed.discard(where)
                self._box(*where).put(ccxt.ExchangeError(f"kalshi websocket: {msg}"))
            return
        if kind in ("orderbook_snapshot", "orderbook_delta"):
            self._on_book(kind, message)
        elif kind == "trade":
            now = time.time_ns() // 1_000_000
            trade = {
                "id": msg.get("trade_id"),
                "symbol": msg["market_ticker"],
                "timestamp": now,
                "datetime": iso_ms(now),
                "price": yes_cents(msg) / CENTS,
                "amount": float(msg["count"]),
                "side": "buy" if msg.get("taker_side") == "yes" else "sell",
                "info": msg,
            }
            self._box("trade", msg["market_ticker"]).put(trade)
        elif kind == "fill":
            self._box("fill", msg["market_ticker"]).put(self._trade(msg))
        elif kind == "user_order":
            self._box("user_orders", msg["ticker"]).put(self._order(msg))

    def _on_book(self, kind: str, message: dict[str, Any]) -> None:
        msg, sid, seq = message["msg"], int(message.get("sid") or 0), int(message.get("seq") or 0)
        ticker = msg["market_ticker"]
        box = self._box("orderbook_delta", ticker)
        if kind == "orderbook_snapshot":
            self._levels[ticker] = {s: {int(p): int(q) for p, q in msg.get(s) or ()} for s in ("yes", "no")}
        else:
            levels = self._levels.get(ticker)
            if levels is None:
                return  # before the snapshot
            if seq != self._seqs.get(sid, 0) + 1:
                self._resubscribe(sid, ticker)
                box.put(ccxt.InvalidNonce(f"kalshi {ticker}: book seq {self._seqs.get(sid)} then {seq}"))
                return
            side, cents = levels[str(msg["side"])], int(msg["price"])
            side[cents] = side.get(cents, 0) + int(msg["delta"])
            if side[cents] <= 0:
                del side[cents]
        self._seqs[sid] = seq
        book = self._book(ticker, self._levels[ticker], seq)
        self.orderbooks[ticker] = book
        box.put(book)

    def _resubscribe(self, sid: int, ticker: str) -> None:
        """A gap: forget the book and its subscription; the next watch subscribes anew (snapshot)."""
        self._levels.pop(ticker, None)
        self._sids.pop(sid, None)
        self._subscribed.discard(("orderbook_delta", ticker))
        if self._ws is not None and not self._ws.closed:
            asyncio.get_running_loop().create_task(self._unsubscribe(self._ws, sid))

    async def _unsubscribe(self, ws: KalshiStream, sid: int) -> None:
        with contextlib.suppress(Exception):
            await ws.unsubscribe([sid])

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
        await self.client.close()
