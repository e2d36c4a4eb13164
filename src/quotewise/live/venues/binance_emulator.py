"""A local Binance USD-M futures exchange: the wire protocol (REST and websocket, HMAC auth, weights
and limits) in front of our own exchange simulator, driven in real time by a market data file.

Why: a stock ``ccxt.binanceusdm`` / ``ccxt.pro.binanceusdm`` client, pointed here with
:func:`quotewise.live.venues.endpoint.point_at`, runs unchanged against a market we control, so the code
that talks to Binance is proven without the internet, with the backtest's fill rules (a
:class:`~quotewise.live.paper.PaperVenue`), and under injected faults (:mod:`.binance_faults`).

What a client sees:

- market streams from the replayed data: ``depthUpdate`` (U/u/pu chained), ``trade``, ``aggTrade``
  and ``bookTicker``; the REST depth snapshot's ``lastUpdateId`` is the last update's ``u``;
- a new order is answered at once (status NEW); what the simulator then does (accept, reject,
  fill, cancel) arrives as ``ORDER_TRADE_UPDATE`` on the user-data stream and shows in REST queries.
  A post-only (GTX) order the simulator rejects ends EXPIRED;
- times are wall-clock ms: the data's clock is shifted so the replay starts when the emulator does.

The published book is the data's market; our own resting orders are not added to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from quotewise.book.orderbook import OrderBook
from quotewise.errors import ConfigError
from quotewise.live.paper import PaperVenue
from quotewise.live.store import Store, db_url
from quotewise.live.venues.binance_faults import FaultDice, Faults, parse_faults
from quotewise.model.events import ASK, BID, EXECUTE, TRADE
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.settings import VenueSettings

MAKER_ID = "binanceusdm-emulator"
INITIAL_BALANCE = 100_000.0  # the account's wallet at start, quote currency
QUOTE_ASSETS = ("USDT", "USDC", "FDUSD", "BUSD", "USD")
RECV_WINDOW_MS = 5_000
AHEAD_TOLERANCE_MS = 1_000  # Binance refuses a timestamp this far ahead of its clock
CANCEL_WAIT_S = 1.0  # a cancel waits this long for the simulator's answer
REORDER_HOLD_S = 0.2  # a held (reordered) message goes out alone after this long
MAX_DEPTH = 1000
MAX_TRADES = 1000
MAX_PRICE = "10000000"
MAX_QTY = "100000000"
NS_PER_MS = 1_000_000
WS_PATH = re.compile(r"/(?:(?:public|market|private)/)?(ws|stream)(?:/(.*))?")
DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10))  # limit up to -> weight; above: 20
DEPTH_WEIGHT_MAX = 20


class BinanceError(Exception):
    """A Binance-shaped error answer: HTTP status, Binance code and message."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after

    def response(self, headers: dict[str, str]) -> web.Response:
        extra = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        body = {"code": self.code, "msg": self.msg}
        return web.json_response(body, status=self.status, headers={**headers, **extra})


def bad_param(msg: str, code: int = -1102) -> BinanceError:
    return BinanceError(400, code, msg)


# -- request weights and order counts ---------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """Binance's IP limits; a client that keeps sending while throttled is banned (418) a while."""

    weight_1m: int = 2400
    orders_10s: int = 300
    orders_1m: int = 1200
    strikes_to_ban: int = 3
    ban_s: int = 10


class RateLimiter:
    """Fixed-window counters, as the X-MBX-USED-WEIGHT-1M and X-MBX-ORDER-COUNT-* headers report."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.weight = self.orders_10s = self.orders_1m = self.strikes = 0
        self.windows = (-1, -1)
        self.banned_until_ms = 0
        self.throttled = self.banned = 0

    def headers(self) -> dict[str, str]:
        return {
            "X-MBX-USED-WEIGHT-1M": str(self.weight),
            "X-MBX-ORDER-COUNT-10S": str(self.orders_10s),
            "X-MBX-ORDER-COUNT-1M": str(self.orders_1m),
        }

    def _roll(self, now_ms: int) -> None:
        minute, ten = now_ms // 60_000, now_ms // 10_000
        if minute != self.windows[0]:
            self.weight = self.orders_1m = self.strikes = 0
        if ten != self.windows[1]:
            self.orders_10s = 0
        self.windows = (minute, ten)

    def charge(self, now_ms: int, weight: int, orders: int) -> None:
        """Count a request; raise the 429 or 418 answer when it goes over a limit."""
        if now_ms < self.banned_until_ms:
            self.banned += 1
            retry = -(-(self.banned_until_ms - now_ms) // 1000)
            raise BinanceError(
                418, -1003, f"Way too many requests; IP banned until {self.banned_until_ms}.", retry
            )
        self._roll(now_ms)
        self.weight += weight
        self.orders_10s += orders
        self.orders_1m += orders
        lim = self.limits
        if self.weight > lim.weight_1m:
            self._throttle(
                now_ms, -1003, f"Too many requests; current limit is {lim.weight_1m} weight per 1 MINUTE."
            )
        if self.orders_10s > lim.orders_10s or self.orders_1m > lim.orders_1m:
            self._throttle(
                now_ms, -1015, f"Too many new orders; current limit is {lim.orders_10s} orders per 10 SECOND."
            )

    def _throttle(self, now_ms: int, code: int, msg: str) -> None:
        self.strikes += 1
        if self.strikes > self.limits.strikes_to_ban:
            self.banned_until_ms = now_ms + self.limits.ban_s * 1000
            self.banned += 1
            raise BinanceError(
                418,
                -1003,
                f"Way too many requests; IP banned until {self.banned_until_ms}.",
                self.limits.ban_s,
            )
        self.throttled += 1
        raise BinanceError(429, code, msg, 60 - (now_ms // 1000) % 60)


# -- the account ------------------------------------------------------------------------------------
@dataclass(eq=False)
class EmOrder:
    """One order as the emulator reports it (Binance's view, fed by the simulator's responses)."""

    order_id: int
    client_id: str
    side: int
    price: int
    size: int
    tif: str
    time_ms: int
    status: str = "NEW"
    filled: int = 0
    quote: float = 0.0
    update_ms: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass
class Position:
    """One-way position with an average entry price: what positionRisk and realizedPnl report."""

    lots: int = 0
    entry: float = 0.0
    realized: float = 0.0
    fees: float = 0.0

    def fill(self, side: int, price: float, lots: int, unit: float) -> float:
        """Apply a fill (``unit``: quote value of one lot per unit of price); the realized P&L."""
        before = self.lots
        self.lots += side * lots
        if before == 0 or (before > 0) == (side > 0):
            self.entry = (self.entry * abs(before) + price * lots) / abs(self.lots)
            return 0.0
        closed = min(lots, abs(before))
        pnl = (price - self.entry) * closed * unit * (1 if before > 0 else -1)
        self.realized += pnl
        if self.lots == 0:
            self.entry = 0.0
        elif (self.lots > 0) != (before > 0):
            self.entry = price
        return pnl


# -- websocket connections --------------------------------------------------------------------------
@dataclass(eq=False)
class Connection:
    """One websocket client: its market subscriptions (by (symbol, kind) -> name as given) and,
    on the user-data stream, every account event."""

    ws: web.WebSocketResponse
    combined: bool
    user: bool
    subs: dict[tuple[str, str], str] = field(default_factory=dict)
    queue: asyncio.Queue[tuple[str, bool]] = field(default_factory=asyncio.Queue)

    def subscribe(self, names: list[str]) -> None:
        for name in names:
            self.subs[stream_key(name)] = name

    def unsubscribe(self, names: list[str]) -> None:
        for name in names:
            self.subs.pop(stream_key(name), None)


def stream_key(name: str) -> tuple[str, str]:
    """``btcusdt@depth@100ms`` -> ``("btcusdt", "depth")``: the stream whatever its speed suffix."""
    parts = name.lower().split("@")
    return parts[0], parts[1] if len(parts) > 1 else ""


def split_symbol(symbol: str) -> tuple[str, str]:
    """``ETHUSDT`` -> ``("ETH", "USDT")``; the quote must be one Binance lists futures in."""
    symbol = symbol.upper()
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote) and symbol.isalnum():
            return symbol[: -len(quote)], quote
    raise ConfigError(
        f"--symbol {symbol!r}: write BASE+QUOTE with a quote of {', '.join(QUOTE_ASSETS)}, e.g. ETHUSDT"
    )


def listed(instrument: Instrument, symbol: str | None) -> Instrument:
    """The instrument as the emulator lists it: renamed when ``symbol`` is given."""
    if symbol is None:
        return instrument
    base, quote = split_symbol(symbol)
    return instrument.model_copy(update={"symbol": symbol.upper(), "base": base, "quote": quote})


def _decimal(params: dict[str, str], name: str) -> Decimal:
    text = params.get(name)
    if not text:
        raise bad_param(f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise bad_param(
            f"Illegal characters found in parameter '{name}': {text!r} is not a decimal number.",
            -1100,
        ) from exc
    if not value.is_finite() or value <= 0:
        raise bad_param(f"Invalid {name}: {text}.", -1013)
    return value


def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise bad_param(
            f"Illegal characters found in parameter '{name}'; legal range is '^-?[0-9]{{1,20}}$'.", -1100
        ) from exc


def _without_signature(raw: str) -> str:
    return "&".join(part for part in raw.split("&") if part and not part.startswith("signature="))


def _signature(raw: str) -> str | None:
    for part in raw.split("&"):
        if part.startswith("signature="):
            return part[len("signature=") :]
    return None


@dataclass(frozen=True)
class Route:
    """A REST endpoint: its handler, weight, order count and security (none, key or signed)."""

    handler: Callable[[dict[str, str]], Awaitable[Any]]
    weight: int | Callable[[dict[str, str]], int] = 1
    security: str = "signed"
    orders: int = 0


class BinanceEmulator:
    """Binance USD-M futures on a local port; see the module docstring."""

    def __init__(
        self,
        data: str,
        api_key: str,
        secret: str,
        speed: float = 1.0,
        faults: str | Faults | None = None,
        symbol: str | None = None,
        settings: VenueSettings | None = None,
        limits: Limits | None = None,
    ) -> None:
        if not api_key or not secret:
            raise ConfigError("the emulator needs an API key and a secret (--api-key, --secret)")
        self.api_key, self.secret = api_key, secret.encode()
        self.faults = faults if isinstance(faults, Faults) else parse_faults(faults)
        self.dice = FaultDice(self.faults)
        self.limiter = RateLimiter(limits or Limits())
        self._state = tempfile.TemporaryDirectory(prefix="binance-emulator-")
        self.store = Store(db_url(str(Path(self._state.name) / "emulator.db")))
        self._paused_ns = 0  # the venue's clock stands still until start()
        self.venue = PaperVenue(MAKER_ID, data, self.store, speed, settings, clock=self._venue_clock)
        self._built_ns = time.time_ns()  # the venue's clock started when it was built
        self.data = data
        self.speed = float(speed)
        self.instrument = listed(self.venue.instrument, symbol)
        self.book = OrderBook(*self.venue.price_range)
        self.orders: dict[int, EmOrder] = {}
        self.trades: list[dict[str, Any]] = []
        self.position = Position()
        self._by_client: dict[str, EmOrder] = {}
        self._conns: set[Connection] = set()
        self._listen_key: str | None = None
        self._last_u = 0
        self._market_trade_id = 0
        self._touch: tuple[int | None, int | None] = (None, None)
        self._wall0 = self._data0 = 0
        self._next_gap = 0.0
        self._countdown: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task] = []
        self._runner: web.AppRunner | None = None
        self.port = 0  # the port served on, once started
        self.stats: dict[str, int] = {"depth_updates": 0, "market_trades": 0, "countdown_cancels": 0}
        # our orders open per side now, and the most there ever were (what a maker's order limit bounds)
        self.open_orders = {BID: 0, ASK: 0}
        self.peak_open_orders = {BID: 0, ASK: 0}
        self._routes = self._route_table()
        self.venue.subscribe(self)

    # -- clocks ------------------------------------------------------------------------------------------
    def _venue_clock(self) -> int:
        return time.time_ns() - self._paused_ns

    def server_ms(self) -> int:
        """The server's clock in ms: wall time plus the skew fault."""
        return (time.time_ns() + int(self.faults.skew * 1e9)) // NS_PER_MS

    def _wall_ms(self, data_ns: int) -> int:
        """A data timestamp as wall ms: the replay started when the emulator did."""
        wall = self._wall0 + (data_ns - self._data0) / self.speed
        return int(wall + self.faults.skew * 1e9) // NS_PER_MS

    @property
    def fault_counts(self) -> dict[str, int]:
        return dict(self.dice.counts)

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on ``host:port`` (0: any free port) and start the replay; the bound port."""
        now = time.time_ns()
        self._paused_ns = now - self._built_ns
        self._wall0, self._data0 = now, self.venue.replay_time()
        self._next_gap = time.monotonic() + self.faults.gap_every
        app = web.Application()
        app.router.add_get("/emulator/stats", self._stats)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._tasks.append(asyncio.create_task(self.venue.run()))
        if self.faults.drop_every > 0:
            self._tasks.append(asyncio.create_task(self._dropper()))
        self.port = int(self._runner.addresses[0][1])
        return self.port

    def _add_routes(self, app: web.Application) -> None:
        """The exchange's REST and websocket routes (another exchange's emulator adds its own)."""
        app.router.add_route("*", "/fapi/{tail:.*}", self._rest)
        app.router.add_route("*", "/sapi/{tail:.*}", self._rest)
        app.router.add_get("/{tail:.*}", self._websocket)

    async def stop(self) -> None:
        """Stop the replay, close every connection and the server, and drop the state."""
        if self._countdown is not None:
            self._countdown.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for conn in list(self._conns):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator stopped")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.venue.close()
        self.store.close()
        self._state.cleanup()

    # -- the market from the replay ----------------------------------------------------------------------
    def on_market(self, events: np.ndarray) -> None:
        """Publish what this batch did to the book (depthUpdate, bookTicker) and its trades."""
        bid, ask = self.book.bid.copy(), self.book.ask.copy()
        self.book.apply(events)
        bids = self._changed(BID, bid, self.book.bid)
        asks = self._changed(ASK, ask, self.book.ask)
        exch_ms = self._wall_ms(int(events["exch_ts"][-1]))
        if bids or asks:
            self._publish_depth(bids, asks, exch_ms, len(events))
        kinds = events["kind"]
        for ev in events[(kinds == TRADE) | (kinds == EXECUTE)]:
            self._publish_trade(ev)
        touch = (self.book.best_bid, self.book.best_ask)
        if touch != self._touch:
            self._touch = touch
            self._publish("bookticker", self._book_ticker(exch_ms))

    def _changed(self, side: int, before: np.ndarray, after: np.ndarray) -> list[list[str]]:
        lo = self.book.lo_tick
        idx = np.flatnonzero(before != after)
        order = idx[::-1] if side == BID else idx
        return [[self._px(lo + int(i)), self._qty(int(after[i]))] for i in order]

    def _publish_depth(self, bids: list, asks: list, exch_ms: int, n_events: int) -> None:
        first, last = self._last_u + 1, self._last_u + n_events
        message = {
            "e": "depthUpdate",
            "E": self.server_ms(),
            "T": exch_ms,
            "s": self.symbol,
            "U": first,
            "u": last,
            "pu": self._last_u,
            "b": bids,
            "a": asks,
        }
        self._last_u = last
        if self.faults.gap_every > 0 and time.monotonic() >= self._next_gap:
            self._next_gap = time.monotonic() + self.faults.gap_every
            self.dice.count("gap")
            return
        self.stats["depth_updates"] += 1
        self._publish("depth", message)

    def _publish_trade(self, ev: np.void) -> None:
        self._market_trade_id += 1
        tid, t_ms = self._market_trade_id, self._wall_ms(int(ev["exch_ts"]))
        price, qty, maker = self._px(int(ev["price"])), self._qty(int(ev["size"])), bool(ev["side"] == BID)
        common = {"E": self.server_ms(), "T": t_ms, "s": self.symbol, "p": price, "q": qty, "m": maker}
        self.stats["market_trades"] += 1
        self._publish("trade", {"e": "trade", **common, "t": tid, "X": "MARKET"})
        self._publish("aggtrade", {"e": "aggTrade", **common, "a": tid, "f": tid, "l": tid})

    def _book_ticker(self, t_ms: int) -> dict[str, Any]:
        bb, ba = self._touch
        return {
            "e": "bookTicker",
            "u": self._last_u,
            "E": self.server_ms(),
            "T": t_ms,
            "s": self.symbol,
            "b": self._px(bb) if bb is not None else "0",
            "B": self._qty(self.book.size_at(BID, bb)) if bb is not None else "0",
            "a": self._px(ba) if ba is not None else "0",
            "A": self._qty(self.book.size_at(ASK, ba)) if ba is not None else "0",
        }

    def _publish(self, kind: str, message: dict[str, Any]) -> None:
        key = (self.symbol.lower(), kind)
        text = None
        for conn in self._conns:
            name = conn.subs.get(key)
            if name is None:
                continue
            text = text or json.dumps(message, separators=(",", ":"))
            payload = json.dumps({"stream": name, "data": message}) if conn.combined else text
            conn.queue.put_nowait((payload, False))

    def _publish_user(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, separators=(",", ":"))
        for conn in self._conns:
            if conn.user:
                conn.queue.put_nowait((text, False))

    # -- the simulator's answers -------------------------------------------------------------------------
    def on_responses(self, responses: list[tuple[Response, int]]) -> None:
        """Turn each answer into the order's new state and an ORDER_TRADE_UPDATE."""
        for r, _seq in responses:
            order = self.orders.get(r.order_id)
            if order is None:
                continue
            order.update_ms = self._wall_ms(r.exch_ts)
            if r.kind == "accepted":
                self._publish_user(self._order_update(order, "NEW", None))
            elif r.kind == "rejected":
                self._close(order, "EXPIRED")
            elif r.kind == "cancelled":
                self._close(order, "CANCELED")
            elif r.kind == "fill":
                self._fill(order, r)

    def _close(self, order: EmOrder, status: str, trade: dict[str, Any] | None = None) -> None:
        """The order's end: FILLED (with its last trade), CANCELED or EXPIRED."""
        if order.open:
            self.open_orders[order.side] -= 1
        order.status = status
        order.done.set()
        self._by_client.pop(order.client_id, None)
        self._publish_user(self._order_update(order, "TRADE" if trade else status, trade))

    def _fill(self, order: EmOrder, r: Response) -> None:
        inst = self.instrument
        unit = inst.lot_size * inst.contract_size
        pnl = self.position.fill(r.side, inst.px(r.price), r.qty, unit)
        self.position.fees += r.fee
        order.filled += r.qty
        order.quote += inst.px(r.price) * r.qty * unit
        trade = {
            "id": len(self.trades) + 1,
            "orderId": order.order_id,
            "symbol": self.symbol,
            "side": _side_name(r.side),
            "price": self._px(r.price),
            "qty": self._qty(r.qty),
            "quoteQty": _num(inst.px(r.price) * r.qty * unit),
            "commission": _num(r.fee),
            "commissionAsset": self.instrument.quote,
            "realizedPnl": _num(pnl),
            "time": order.update_ms,
            "buyer": r.side == BID,
            "maker": r.maker,
            "positionSide": "BOTH",
        }
        self.trades.append(trade)
        if r.left <= 0:
            self._close(order, "FILLED", trade)
        else:
            order.status = "PARTIALLY_FILLED"
            self._publish_user(self._order_update(order, "TRADE", trade))
        self._publish_user(self._account_update())

    def _order_update(self, order: EmOrder, execution: str, trade: dict[str, Any] | None) -> dict[str, Any]:
        trade = trade or {}
        o = {
            "s": self.symbol,
            "c": order.client_id,
            "S": _side_name(order.side),
            "o": "LIMIT",
            "f": order.tif,
            "q": self._qty(order.size),
            "p": self._px(order.price),
            "ap": self._avg(order),
            "sp": "0",
            "x": execution,
            "X": order.status,
            "i": order.order_id,
            "l": trade.get("qty", "0"),
            "z": self._qty(order.filled),
            "L": trade.get("price", "0"),
            "N": self.instrument.quote,
            "n": trade.get("commission", "0"),
            "T": order.update_ms,
            "t": trade.get("id", 0),
            "b": "0",
            "a": "0",
            "m": trade.get("maker", False),
            "R": False,
            "wt": "CONTRACT_PRICE",
            "ot": "LIMIT",
            "ps": "BOTH",
            "cp": False,
            "rp": trade.get("realizedPnl", "0"),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
        }
        return {"e": "ORDER_TRADE_UPDATE", "E": self.server_ms(), "T": order.update_ms, "o": o}

    def _account_update(self) -> dict[str, Any]:
        pos = self.position
        wallet = _num(self._wallet())
        balance = {"a": self.instrument.quote, "wb": wallet, "cw": wallet, "bc": "0"}
        position = {
            "s": self.symbol,
            "pa": self._qty(pos.lots),
            "ep": _num(pos.entry),
            "cr": _num(pos.realized),
            "up": _num(self._unrealized()),
            "mt": "cross",
            "iw": "0",
            "ps": "BOTH",
        }
        now = self.server_ms()
        return {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {"m": "ORDER", "B": [balance], "P": [position]},
        }

    # -- formatting --------------------------------------------------------------------------------------
    def _px(self, ticks: int) -> str:
        return f"{self.instrument.px(ticks):.{self.instrument.price_decimals}f}"

    def _qty(self, lots: int) -> str:
        return f"{self.instrument.qty(lots):.{self.instrument.size_decimals}f}"

    def _avg(self, order: EmOrder) -> str:
        if not order.filled:
            return "0"
        unit = self.instrument.lot_size * self.instrument.contract_size
        return _num(order.quote / (order.filled * unit))

    def _order_json(self, order: EmOrder) -> dict[str, Any]:
        qty = self._qty(order.filled)
        return {
            "orderId": order.order_id,
            "symbol": self.symbol,
            "status": order.status,
            "clientOrderId": order.client_id,
            "price": self._px(order.price),
            "avgPrice": self._avg(order),
            "origQty": self._qty(order.size),
            "executedQty": qty,
            "cumQty": qty,
            "cumQuote": _num(order.quote),
            "timeInForce": order.tif,
            "type": "LIMIT",
            "reduceOnly": False,
            "closePosition": False,
            "side": _side_name(order.side),
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": "LIMIT",
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "time": order.time_ms,
            "updateTime": order.update_ms,
        }

    # -- the account's figures ---------------------------------------------------------------------------
    def _mark(self) -> float:
        mid = self.book.mid
        return self.instrument.price(mid) if mid is not None else self.position.entry

    def _unrealized(self) -> float:
        pos, inst = self.position, self.instrument
        return (self._mark() - pos.entry) * pos.lots * inst.lot_size * inst.contract_size if pos.lots else 0.0

    def _wallet(self) -> float:
        return INITIAL_BALANCE + self.position.realized - self.position.fees

    # -- REST: the dispatcher ----------------------------------------------------------------------------
    def _route_table(self) -> dict[tuple[str, str], Route]:
        open_, key = "none", "key"
        table = {
            ("GET", "/fapi/v1/ping"): Route(self._ping, 1, open_),
            ("GET", "/fapi/v1/time"): Route(self._time, 1, open_),
            ("GET", "/fapi/v1/exchangeInfo"): Route(self._exchange_info, 1, open_),
            ("GET", "/fapi/v1/depth"): Route(self._depth, _depth_weight, open_),
            ("GET", "/fapi/v1/ticker/bookTicker"): Route(self._book_ticker_rest, 2, open_),
            ("POST", "/fapi/v1/order"): Route(self._new_order, 1, orders=1),
            ("GET", "/fapi/v1/order"): Route(self._query_order, 1),
            ("DELETE", "/fapi/v1/order"): Route(self._cancel_order, 1),
            ("DELETE", "/fapi/v1/allOpenOrders"): Route(self._cancel_all, 1),
            ("GET", "/fapi/v1/openOrders"): Route(self._open_orders, 1),
            ("GET", "/fapi/v1/allOrders"): Route(self._all_orders, 5),
            ("GET", "/fapi/v1/userTrades"): Route(self._user_trades, 5),
            ("POST", "/fapi/v1/countdownCancelAll"): Route(self._countdown_cancel_all, 10),
            ("POST", "/fapi/v1/leverage"): Route(self._leverage, 1),
            ("POST", "/fapi/v1/marginType"): Route(self._margin_type, 1),
            ("GET", "/fapi/v1/positionSide/dual"): Route(self._dual, 30),
            ("GET", "/fapi/v1/commissionRate"): Route(self._commission, 20),
            ("GET", "/fapi/v1/leverageBracket"): Route(self._leverage_bracket, 1),
            ("POST", "/fapi/v1/listenKey"): Route(self._new_listen_key, 1, key),
            ("PUT", "/fapi/v1/listenKey"): Route(self._keep_listen_key, 1, key),
            ("DELETE", "/fapi/v1/listenKey"): Route(self._close_listen_key, 1, key),
            ("GET", "/sapi/v1/capital/config/getall"): Route(self._no_spot, 10),
            ("GET", "/sapi/v1/margin/allPairs"): Route(self._no_spot, 1),
        }
        for version in ("v2", "v3"):
            table[("GET", f"/fapi/{version}/account")] = Route(self._account, 5)
            table[("GET", f"/fapi/{version}/balance")] = Route(self._balance, 5)
            table[("GET", f"/fapi/{version}/positionRisk")] = Route(self._position_risk, 5)
        return table

    async def _rest(self, request: web.Request) -> web.Response:
        route = self._routes.get((request.method, request.path))
        if route is None:
            return web.json_response(
                {"code": -5000, "msg": f"Path {request.method} {request.path} not found"}, status=404
            )
        fault = self._http_fault()
        if fault is not None:
            return fault
        body = await request.text()
        try:
            params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
            params.update(parse_qsl(body, keep_blank_values=True))
            weight = route.weight(params) if callable(route.weight) else route.weight
            self.limiter.charge(self.server_ms(), weight, route.orders)
            self._authorize(route.security, request, params, body)
            result = await route.handler(params)
        except BinanceError as exc:
            return exc.response(self.limiter.headers())
        return web.json_response(result, headers=self.limiter.headers())

    def _http_fault(self) -> web.Response | None:
        """The 429 and 5xx faults: the request is answered without being processed."""
        if self.dice.hit("429", self.faults.throttle):
            return BinanceError(429, -1003, "Too many requests (emulator fault 429).", 1).response({})
        if self.dice.hit("5xx", self.faults.server_error):
            return web.Response(status=503, text="Service Unavailable (emulator fault 5xx)")
        return None

    def _authorize(self, security: str, request: web.Request, params: dict[str, str], body: str) -> None:
        if security == "none":
            return
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if security == "key":
            return
        raw_query = request.rel_url.raw_query_string
        given = _signature(raw_query) or _signature(body)
        payload = _without_signature(raw_query) + _without_signature(body)
        expected = hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()
        if given is None or not hmac.compare_digest(given.lower(), expected):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        self._check_timestamp(params)

    def _check_timestamp(self, params: dict[str, str]) -> None:
        timestamp = _int(params, "timestamp")
        if timestamp is None:
            raise bad_param("Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        window = _int(params, "recvWindow", RECV_WINDOW_MS) or RECV_WINDOW_MS
        now = self.server_ms()
        if timestamp >= now + AHEAD_TOLERANCE_MS:
            raise BinanceError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - timestamp > window:
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _check_symbol(self, params: dict[str, str], required: bool = True) -> None:
        symbol = params.get("symbol")
        if symbol is None and not required:
            return
        if not symbol:
            raise bad_param("Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol.upper() != self.symbol:
            raise BinanceError(400, -1121, "Invalid symbol.")

    # -- REST: market data -------------------------------------------------------------------------------
    async def _ping(self, params: dict[str, str]) -> dict:
        return {}

    async def _time(self, params: dict[str, str]) -> dict:
        if self.faults.skew:
            self.dice.count("skew")
        return {"serverTime": self.server_ms()}

    async def _exchange_info(self, params: dict[str, str]) -> dict:
        now = self.server_ms()
        return {
            "timezone": "UTC",
            "serverTime": now,
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.limiter.limits.weight_1m,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": self.limiter.limits.orders_10s,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.limiter.limits.orders_1m,
                },
            ],
            "exchangeFilters": [],
            "assets": [{"asset": self.instrument.quote, "marginAvailable": True, "autoAssetExchange": "0"}],
            "symbols": [self._symbol_info()],
        }

    def _symbol_info(self) -> dict[str, Any]:
        inst = self.instrument
        step, min_qty = self._qty(inst.order_lots), self._qty(inst.min_size_lots)
        down, up = inst.price_band or (0.95, 1.05)
        lot = {"stepSize": step, "minQty": min_qty, "maxQty": MAX_QTY}
        return {
            "symbol": self.symbol,
            "pair": self.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "baseAsset": inst.base,
            "quoteAsset": inst.quote,
            "marginAsset": inst.quote,
            "pricePrecision": inst.price_decimals,
            "quantityPrecision": inst.size_decimals,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": self._px(1),
                    "maxPrice": MAX_PRICE,
                    "tickSize": self._px(1),
                },
                {"filterType": "LOT_SIZE", **lot},
                {"filterType": "MARKET_LOT_SIZE", **lot},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": _num(inst.min_notional)},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": f"{up:.4f}",
                    "multiplierDown": f"{down:.4f}",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": ["LIMIT"],
            "timeInForce": ["GTC", "GTX"],
        }

    async def _depth(self, params: dict[str, str]) -> dict:
        self._check_symbol(params)
        limit = _int(params, "limit", 500) or 500
        if not 1 <= limit <= MAX_DEPTH:
            raise bad_param(f"Illegal limit {limit}: 1 to {MAX_DEPTH}.", -1130)
        now = self.server_ms()
        return {
            "lastUpdateId": self._last_u,
            "E": now,
            "T": now,
            "bids": self._levels(BID, limit),
            "asks": self._levels(ASK, limit),
        }

    def _levels(self, side: int, n: int) -> list[list[str]]:
        prices, sizes = self.book.levels(side, n)
        return [[self._px(int(p)), self._qty(int(s))] for p, s in zip(prices, sizes, strict=True)]

    async def _book_ticker_rest(self, params: dict[str, str]) -> dict | list:
        self._check_symbol(params, required=False)
        t = self._book_ticker(self.server_ms())
        ticker = {
            "symbol": self.symbol,
            "bidPrice": t["b"],
            "bidQty": t["B"],
            "askPrice": t["a"],
            "askQty": t["A"],
            "time": t["E"],
            "lastUpdateId": self._last_u,
        }
        return ticker if "symbol" in params else [ticker]

    # -- REST: orders ------------------------------------------------------------------------------------
    async def _new_order(self, params: dict[str, str]) -> dict:
        self._check_symbol(params)
        side, tif = self._order_side(params), self._order_tif(params)
        price, size = self._order_price(params), self._order_size(params)
        self._check_notional(price, size)
        client_id = params.get("newClientOrderId") or f"emu-{secrets.token_hex(8)}"
        if client_id in self._by_client:
            raise BinanceError(400, -4116, "ClientOrderId is duplicated.")
        order_id = self.venue.place(side, price, size, post_only=tif == "GTX")
        now = self.server_ms()
        order = EmOrder(order_id, client_id, side, price, size, tif, now, update_ms=now)
        self.orders[order_id] = order
        self._by_client[client_id] = order
        self.open_orders[side] += 1
        self.peak_open_orders[side] = max(self.peak_open_orders[side], self.open_orders[side])
        answer = self._order_json(order)
        answer["status"] = "NEW"  # the answer reports the order as it was when placed
        if self.faults.ack_delay > 0:
            self.dice.count("ack_delay")
            await asyncio.sleep(self.faults.ack_delay)
        return answer

    def _order_side(self, params: dict[str, str]) -> int:
        side = params.get("side", "")
        if side not in ("BUY", "SELL"):
            raise bad_param(f"Invalid side {side!r}: BUY or SELL.", -1117)
        if params.get("type") != "LIMIT":
            raise bad_param(
                f"Invalid orderType {params.get('type')!r}: the emulator takes LIMIT orders.", -1116
            )
        if params.get("reduceOnly", "false").lower() == "true":
            raise bad_param("reduceOnly is not supported by the emulator.", -1106)
        return BID if side == "BUY" else ASK

    def _order_tif(self, params: dict[str, str]) -> str:
        tif = params.get("timeInForce", "")
        if tif not in ("GTC", "GTX"):
            raise bad_param(f"Invalid timeInForce {tif!r}: the emulator takes GTC or GTX (post-only).", -1115)
        return tif

    def _order_price(self, params: dict[str, str]) -> int:
        price = _decimal(params, "price")
        ticks = price / Decimal(repr(self.instrument.tick_size))
        if ticks != ticks.to_integral_value():
            raise BinanceError(
                400, -1013, f"Filter failure: PRICE_FILTER (price {price} is off the tick {self._px(1)})"
            )
        return int(ticks)

    def _order_size(self, params: dict[str, str]) -> int:
        qty = _decimal(params, "quantity")
        inst = self.instrument
        lots = qty / Decimal(repr(inst.lot_size))
        if lots != lots.to_integral_value() or int(lots) % inst.order_lots:
            raise BinanceError(
                400,
                -1013,
                f"Filter failure: LOT_SIZE (quantity {qty} is off the step {self._qty(inst.order_lots)})",
            )
        if int(lots) < inst.min_size_lots:
            raise BinanceError(
                400,
                -1013,
                f"Filter failure: LOT_SIZE (quantity {qty} is below {self._qty(inst.min_size_lots)})",
            )
        return int(lots)

    def _check_notional(self, price: int, size: int) -> None:
        minimum = self.instrument.min_notional
        if minimum > 0 and self.instrument.quote_notional(price, size) < minimum - 1e-9:
            raise BinanceError(
                400,
                -4164,
                f"Order's notional must be no smaller than {_num(minimum)} (unless you choose reduce only).",
            )

    def _find(self, params: dict[str, str], missing_code: int) -> EmOrder:
        self._check_symbol(params)
        order_id, client_id = _int(params, "orderId"), params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise bad_param("Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!")
        found = self.orders.get(order_id) if order_id is not None else self._client_order(client_id or "")
        if found is None or (client_id and found.client_id != client_id):
            msg = "Order does not exist." if missing_code == -2013 else "Unknown order sent."
            raise BinanceError(400, missing_code, msg)
        return found

    def _client_order(self, client_id: str) -> EmOrder | None:
        live = self._by_client.get(client_id)
        if live is not None:
            return live
        matches = [o for o in self.orders.values() if o.client_id == client_id]
        return matches[-1] if matches else None

    async def _query_order(self, params: dict[str, str]) -> dict:
        return self._order_json(self._find(params, -2013))

    async def _cancel_order(self, params: dict[str, str]) -> dict:
        order = self._find(params, -2011)
        if not order.open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        self.venue.cancel(order.order_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(order.done.wait(), CANCEL_WAIT_S)
        if order.status == "FILLED":
            raise BinanceError(400, -2011, "Unknown order sent.")
        return self._order_json(order)

    def cancel_all(self) -> int:
        """Ask the simulator to cancel every open order; how many were asked."""
        live = [o for o in self.orders.values() if o.open]
        for order in live:
            self.venue.cancel(order.order_id)
        return len(live)

    async def _cancel_all(self, params: dict[str, str]) -> dict:
        self._check_symbol(params)
        self.cancel_all()
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    async def _open_orders(self, params: dict[str, str]) -> list:
        self._check_symbol(params, required=False)
        return [self._order_json(o) for o in self.orders.values() if o.open]

    async def _all_orders(self, params: dict[str, str]) -> list:
        self._check_symbol(params)
        limit = min(_int(params, "limit", 500) or 500, MAX_TRADES)
        return [self._order_json(o) for o in list(self.orders.values())[-limit:]]

    async def _user_trades(self, params: dict[str, str]) -> list:
        self._check_symbol(params)
        limit = _int(params, "limit", 500) or 500
        if not 1 <= limit <= MAX_TRADES:
            raise bad_param(f"Illegal limit {limit}: 1 to {MAX_TRADES}.", -1130)
        trades = self.trades
        order_id, from_id = _int(params, "orderId"), _int(params, "fromId")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        if order_id is not None:
            trades = [t for t in trades if t["orderId"] == order_id]
        if from_id is not None:
            return [t for t in trades if t["id"] >= from_id][:limit]
        if start is not None or end is not None:
            lo, hi = start or 0, end if end is not None else 2**63
            return [t for t in trades if lo <= t["time"] <= hi][:limit]
        return trades[-limit:]

    async def _countdown_cancel_all(self, params: dict[str, str]) -> dict:
        self._check_symbol(params)
        countdown = _int(params, "countdownTime")
        if countdown is None or countdown < 0:
            raise bad_param("Mandatory parameter 'countdownTime' was not sent, was empty/null, or malformed.")
        if self._countdown is not None:
            self._countdown.cancel()
            self._countdown = None
        if countdown > 0:
            self._countdown = asyncio.get_running_loop().call_later(countdown / 1000, self._countdown_fired)
        return {"symbol": self.symbol, "countdownTime": str(countdown)}

    def _countdown_fired(self) -> None:
        self._countdown = None
        self.stats["countdown_cancels"] += self.cancel_all()

    # -- REST: account -----------------------------------------------------------------------------------
    def _asset(self) -> dict[str, Any]:
        wallet, upnl = self._wallet(), self._unrealized()
        margin = _num(wallet + upnl)
        return {
            "asset": self.instrument.quote,
            "walletBalance": _num(wallet),
            "unrealizedProfit": _num(upnl),
            "marginBalance": margin,
            "maintMargin": "0",
            "initialMargin": "0",
            "positionInitialMargin": "0",
            "openOrderInitialMargin": "0",
            "crossWalletBalance": _num(wallet),
            "crossUnPnl": _num(upnl),
            "availableBalance": margin,
            "maxWithdrawAmount": margin,
            "marginAvailable": True,
            "updateTime": self.server_ms(),
        }

    def _position_json(self) -> dict[str, Any]:
        pos, mark = self.position, self._mark()
        notional = pos.lots * self.instrument.lot_size * self.instrument.contract_size * mark
        return {
            "symbol": self.symbol,
            "positionSide": "BOTH",
            "positionAmt": self._qty(pos.lots),
            "entryPrice": _num(pos.entry),
            "breakEvenPrice": _num(pos.entry),
            "markPrice": _num(mark),
            "unRealizedProfit": _num(self._unrealized()),
            "unrealizedProfit": _num(self._unrealized()),
            "liquidationPrice": "0",
            "isolatedMargin": "0",
            "isolatedWallet": "0",
            "notional": _num(notional),
            "marginAsset": self.instrument.quote,
            "initialMargin": "0",
            "maintMargin": "0",
            "leverage": "1",
            "marginType": "cross",
            "isolated": False,
            "updateTime": self.server_ms(),
        }

    async def _account(self, params: dict[str, str]) -> dict:
        asset = self._asset()
        totals = {
            "totalWalletBalance": asset["walletBalance"],
            "totalUnrealizedProfit": asset["unrealizedProfit"],
            "totalMarginBalance": asset["marginBalance"],
            "totalCrossWalletBalance": asset["crossWalletBalance"],
            "totalCrossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "totalInitialMargin": "0",
            "totalMaintMargin": "0",
        }
        return {**totals, "canTrade": True, "assets": [asset], "positions": [self._position_json()]}

    async def _balance(self, params: dict[str, str]) -> list:
        a = self._asset()
        return [{"accountAlias": "emulator", "asset": a["asset"], "balance": a["walletBalance"], **a}]

    async def _position_risk(self, params: dict[str, str]) -> list:
        self._check_symbol(params, required=False)
        return [self._position_json()]

    async def _leverage(self, params: dict[str, str]) -> dict:
        self._check_symbol(params)
        leverage = _int(params, "leverage")
        if leverage is None or not 1 <= leverage <= 125:
            raise bad_param("Leverage must be an integer from 1 to 125.", -4028)
        return {"leverage": leverage, "maxNotionalValue": "1000000000", "symbol": self.symbol}

    async def _margin_type(self, params: dict[str, str]) -> dict:
        self._check_symbol(params)
        if params.get("marginType") not in ("CROSSED", "ISOLATED"):
            raise bad_param("Invalid marginType: CROSSED or ISOLATED.", -4046)
        return {"code": 200, "msg": "success"}

    async def _leverage_bracket(self, params: dict[str, str]) -> list:
        """One bracket with no margin requirement: the emulator does not margin positions."""
        self._check_symbol(params, required=False)
        bracket = {
            "bracket": 1,
            "initialLeverage": 125,
            "notionalCap": 1_000_000_000,
            "notionalFloor": 0,
            "maintMarginRatio": 0.0,
            "cum": 0.0,
        }
        return [{"symbol": self.symbol, "notionalCoef": 1.0, "brackets": [bracket]}]

    async def _dual(self, params: dict[str, str]) -> dict:
        return {"dualSidePosition": False}

    async def _commission(self, params: dict[str, str]) -> dict:
        self._check_symbol(params)
        inst = self.instrument
        return {
            "symbol": self.symbol,
            "makerCommissionRate": _num(inst.maker_fee),
            "takerCommissionRate": _num(inst.taker_fee),
        }

    # -- REST: the user-data stream's key ----------------------------------------------------------------
    async def _new_listen_key(self, params: dict[str, str]) -> dict:
        self._listen_key = self._listen_key or secrets.token_urlsafe(48)
        return {"listenKey": self._listen_key}

    async def _keep_listen_key(self, params: dict[str, str]) -> dict:
        if self._listen_key is None:
            raise BinanceError(400, -1125, "This listenKey does not exist.")
        return {"listenKey": self._listen_key}

    async def _close_listen_key(self, params: dict[str, str]) -> dict:
        self._listen_key = None
        for conn in [c for c in self._conns if c.user]:
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"listenKey closed")
        return {}

    async def _no_spot(self, params: dict[str, str]) -> list:
        """The spot wallet's coins and margin pairs, which ccxt loads with the markets when it has
        keys: none here (ccxt then names the currencies from the markets)."""
        return []

    async def _stats(self, request: web.Request) -> web.Response:
        stats = {
            **self.stats,
            "faults": self.fault_counts,
            "throttled": self.limiter.throttled,
            "banned": self.limiter.banned,
            "orders": len(self.orders),
            "trades": len(self.trades),
            "last_update_id": self._last_u,
            "connections": len(self._conns),
            "open_orders": {"bid": self.open_orders[BID], "ask": self.open_orders[ASK]},
            "peak_open_orders": {"bid": self.peak_open_orders[BID], "ask": self.peak_open_orders[ASK]},
        }
        return web.json_response(stats)

    # -- websockets --------------------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        match = WS_PATH.fullmatch(request.path)
        if match is None:
            return web.json_response({"code": -5000, "msg": f"Path {request.path} not found"}, status=404)
        tail = match.group(2) or ""
        streams = [s for s in request.query.get("streams", "").split("/") if s]
        listen_key = request.query.get("listenKey")
        if "@" in tail:
            streams += tail.split("/")
        elif tail and not tail.isdigit():
            listen_key = tail
        if listen_key is not None and listen_key != self._listen_key:
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        combined = match.group(1) == "stream" or "streams" in request.query
        conn = Connection(ws, combined, user=listen_key is not None)
        conn.subscribe(streams)
        await self._serve(conn)
        return ws

    async def _serve(self, conn: Connection) -> None:
        self._conns.add(conn)
        pump = asyncio.create_task(self._pump(conn))
        try:
            async for msg in conn.ws:
                if msg.type == WSMsgType.TEXT:
                    conn.queue.put_nowait((json.dumps(self._control(conn, msg.data)), True))
        finally:
            self._conns.discard(conn)
            pump.cancel()

    def _control(self, conn: Connection, text: str) -> dict[str, Any]:
        """Answer a SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS request."""
        try:
            request = json.loads(text)
            method, params, request_id = request["method"], request.get("params", []), request.get("id")
        except (ValueError, KeyError, TypeError):
            return {"error": {"code": 3, "msg": "Invalid JSON: expected {method, params, id}"}, "id": None}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.subs.values()), "id": request_id}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
            return {
                "error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"},
                "id": request_id,
            }
        (conn.subscribe if method == "SUBSCRIBE" else conn.unsubscribe)([str(p) for p in params])
        return {"result": None, "id": request_id}

    async def _pump(self, conn: Connection) -> None:
        """Send a connection's queue in order, with the dup and reorder faults."""
        held: str | None = None
        while True:
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancel that comes as
                # the queue yields, and this loop then waited forever (a hang at asyncio.run's end)
                async with asyncio.timeout(REORDER_HOLD_S if held else None):
                    text, control = await conn.queue.get()
            except TimeoutError:
                await self._send(conn, held or "")
                held = None
                continue
            if control:
                await self._send(conn, text)
            elif held is not None:
                await self._send(conn, text)
                await self._send(conn, held)
                held = None
            elif self.dice.hit("reorder", self.faults.reorder):
                held = text
            else:
                await self._send(conn, text)
                if self.dice.hit("dup", self.faults.dup):
                    await self._send(conn, text)

    async def _send(self, conn: Connection, text: str) -> None:
        if not conn.ws.closed:
            with contextlib.suppress(ConnectionError):
                await conn.ws.send_str(text)

    async def _dropper(self) -> None:
        """The drop fault: close every websocket connection every ``drop`` seconds."""
        while True:
            await asyncio.sleep(self.faults.drop_every)
            for conn in list(self._conns):
                self.dice.count("drop")
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator fault: drop")


def _depth_weight(params: dict[str, str]) -> int:
    limit = _int(params, "limit", 500) or 500
    return next((w for top, w in DEPTH_WEIGHTS if limit <= top), DEPTH_WEIGHT_MAX)


def _side_name(side: int) -> str:
    return "BUY" if side == BID else "SELL"


def _num(value: float) -> str:
    """A money figure as Binance writes it: plain decimal text, no exponent, no binary noise."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
