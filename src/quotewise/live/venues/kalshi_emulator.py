"""A local Kalshi exchange: Trade API v2 (REST and the websocket, RSA-PSS signed requests) in front
of our own exchange simulator, driven in real time by a market data file (a Kalshi capture, or any
binary market on a 0.01 tick).

It is the Binance emulator (:mod:`.binance_emulator`) with Kalshi's wire protocol: the replay, the
clocks, the websocket pump (dup and reorder faults), the drop fault and the shutdown are that
emulator's; the faults are parsed by :mod:`.binance_faults` (``drop``, ``429``, ``5xx``,
``ack_delay``, ``dup``, ``reorder``, ``gap``, ``skew``, ``seed``).

What a client sees:

- every request's signature is verified with the key's public half; a wrong key id, a bad signature
  or a timestamp more than 5 s from the server's clock is answered 401;
- Kalshi's book is two lists of bids in cents, YES and NO; the simulator's book is the YES book in
  dollars on a 0.01 tick. A NO bid at ``p`` cents is a YES ask at ``100 - p``: buying NO at ``p`` is
  selling YES at ``1 - p/100`` (as :mod:`quotewise.data.kalshi` reads captures);
- a new order is answered at once (status ``resting``); what the simulator then does arrives on the
  ``user_orders`` channel (``user_order`` messages) and ``fill`` channel, and shows in REST queries.
  A post-only order that would cross the published book is refused (400 ``post_only_cross``); one the
  simulator refuses on arrival (the book moved) ends ``canceled``;
- fees are Kalshi's (:func:`~quotewise.live.venues.kalshi_client.kalshi_fee`): the taker fee
  ``ceil_to_cent(0.07 x C x P x (1 - P))`` on every taker fill, the maker fee
  ``ceil_to_cent(0.0175 x C x P x (1 - P))`` on maker fills when ``maker_fees`` (the markets that
  charge makers), per Kalshi's fee schedule (https://kalshi.com/docs/kalshi-fee-schedule.pdf);
- the published book is the data's market; our own resting orders are not added to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from quotewise.errors import ConfigError
from quotewise.live.venues.binance_emulator import (
    CANCEL_WAIT_S,
    BinanceEmulator,
    Connection,
    EmOrder,
)
from quotewise.live.venues.binance_faults import Faults
from quotewise.live.venues.kalshi_client import (
    API_PREFIX,
    MAKER_RATE,
    TAKER_RATE,
    WS_PATH,
    iso_ms,
    kalshi_fee,
    load_public_key,
    verify,
)
from quotewise.model.events import ASK, BID, EXECUTE, TRADE
from quotewise.model.response import Response
from quotewise.settings import VenueSettings

CENTS = 100
STALE_MS = 5_000  # a signature's timestamp further than this from the server's clock is refused
INITIAL_BALANCE_CENTS = 10_000_000  # $100,000
PAGE_MAX = 1000
CHANNELS = ("orderbook_delta", "trade", "fill", "user_orders")
STATUS = {"NEW": "resting", "PARTIALLY_FILLED": "resting", "FILLED": "executed"}  # else canceled


class KalshiHTTPError(Exception):
    """A Kalshi-shaped error answer: ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    def response(self) -> web.Response:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        body = {"error": {"code": self.code, "message": self.message}}
        return web.json_response(body, status=self.status, headers=headers)


def bad_request(message: str, code: str = "invalid_parameters") -> KalshiHTTPError:
    return KalshiHTTPError(400, code, message)


@dataclass(eq=False)
class KOrder(EmOrder):
    """An order with Kalshi's view of it: its id, side (yes/no), action and fees paid (cents)."""

    kalshi_id: str = ""
    kside: str = "yes"
    action: str = "buy"
    taker_fees: Decimal = Decimal(0)  # cents
    maker_fees: Decimal = Decimal(0)
    taker_fills: int = 0
    maker_fills: int = 0


@dataclass(eq=False)
class KConn(Connection):
    """A websocket client: its subscriptions (channel -> sid) and each sid's last ``seq``."""

    sids: dict[str, int] = field(default_factory=dict)
    seqs: dict[int, int] = field(default_factory=dict)


def yes_side(kside: str, action: str) -> int:
    """The YES book side of an order: buying YES or selling NO bids for YES; the others ask."""
    return BID if (kside == "yes") == (action == "buy") else ASK


class KalshiEmulator(BinanceEmulator):
    """Kalshi on a local port; see the module docstring."""

    def __init__(
        self,
        data: str,
        api_key_id: str,
        public_key_pem: bytes,
        speed: float = 1.0,
        faults: str | Faults | None = None,
        ticker: str | None = None,
        settings: VenueSettings | None = None,
        maker_fees: bool = False,
    ) -> None:
        if not api_key_id or not public_key_pem:
            raise ConfigError("the Kalshi emulator needs an API key id and the key's public half (PEM)")
        try:
            self.public_key = load_public_key(public_key_pem)
        except ValueError as exc:
            raise ConfigError(
                f"the Kalshi emulator's public key is not an RSA public key in PEM: {exc}"
            ) from exc
        super().__init__(data, api_key_id, "rsa-pss", speed, faults, None, settings)
        inst = self.instrument
        if abs(inst.tick_size - 0.01) > 1e-12 or abs(inst.lot_size - 1.0) > 1e-12:
            raise ConfigError(
                f"{data}: a Kalshi market trades whole contracts on a 0.01 tick; this data has tick "
                f"{inst.tick_size} and lot {inst.lot_size}"
            )
        start = self.venue.start_price
        if start is None or not 0 < start < CENTS:
            self.store.close()
            self._state.cleanup()
            raise ConfigError(f"{data}: not a binary market (its prices must lie between 0.01 and 0.99)")
        update = {"symbol": ticker or inst.symbol, "venue": "kalshi", "quote": "USD", "settle": "USD"}
        self.instrument = inst.model_copy(update=update)
        self.maker_fees = maker_fees
        self.orders: dict[int, KOrder] = {}  # type: ignore[assignment]  # by the simulator's id
        self._by_kalshi: dict[str, KOrder] = {}
        self.fills: list[dict[str, Any]] = []
        self.market_trades = 0
        self._cash_cents = Decimal(0)
        self._sid = 0
        self.stats.update(orderbook_deltas=0, rejected_post_only=0, auth_failures=0)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        """Trade API v2 under ``/trade-api/v2`` (portfolio routes signed) and the websocket."""
        app.router.add_get(WS_PATH, self._websocket)
        routes = [
            ("GET", "/exchange/status", self._exchange_status, False),
            ("GET", "/markets", self._markets, False),
            ("GET", "/markets/{ticker}", self._market, False),
            ("GET", "/markets/{ticker}/orderbook", self._orderbook, False),
            ("POST", "/portfolio/orders", self._create_order, True),
            ("GET", "/portfolio/orders", self._get_orders, True),
            ("DELETE", "/portfolio/orders/batched", self._batch_cancel, True),
            ("GET", "/portfolio/orders/{order_id}", self._get_order, True),
            ("DELETE", "/portfolio/orders/{order_id}", self._cancel_order, True),
            ("GET", "/portfolio/fills", self._get_fills, True),
            ("GET", "/portfolio/balance", self._balance, True),
            ("GET", "/portfolio/positions", self._positions, True),
        ]
        for method, path, handler, private in routes:
            app.router.add_route(method, API_PREFIX + path, self._endpoint(handler, private))

    # -- REST: the dispatcher ----------------------------------------------------------------------------
    def _endpoint(self, handler: Any, private: bool) -> Any:
        async def serve(request: web.Request) -> web.Response:
            try:
                self._authorize(request, private)
                if self.dice.hit("429", self.faults.throttle):
                    raise KalshiHTTPError(429, "too_many_requests", "emulator fault 429", retry_after=1)
                if self.dice.hit("5xx", self.faults.server_error):
                    raise KalshiHTTPError(503, "service_unavailable", "emulator fault 5xx")
                body = await request.json() if request.can_read_body else {}
                status, result = await handler(request, body if isinstance(body, dict) else {})
            except KalshiHTTPError as exc:
                return exc.response()
            except ValueError as exc:  # a body that is not JSON
                return bad_request(f"malformed request: {exc}").response()
            return web.json_response(result, status=status)

        return serve

    def _authorize(self, request: web.Request, required: bool) -> None:
        """The signature's checks (made whenever one is given; public market data may go without)."""
        headers = request.headers
        key, stamp, signature = (
            headers.get("KALSHI-ACCESS-KEY"),
            headers.get("KALSHI-ACCESS-TIMESTAMP"),
            headers.get("KALSHI-ACCESS-SIGNATURE"),
        )
        if not required and key is None and stamp is None and signature is None:
            return
        why = ""
        if key != self.api_key:
            why = "unknown API key id"
        elif not stamp or not stamp.isdigit() or abs(self.server_ms() - int(stamp)) > STALE_MS:
            why = f"timestamp {stamp!r} is missing or more than {STALE_MS} ms from the server's clock"
        elif not signature or not verify(self.public_key, signature, stamp, request.method, request.path):
            why = "the signature does not verify"
        if why:
            self.stats["auth_failures"] += 1
            raise KalshiHTTPError(401, "authentication_error", why)

    def _check_ticker(self, ticker: str | None) -> None:
        if ticker != self.symbol:
            raise KalshiHTTPError(
                404, "not_found", f"market {ticker!r} not found (this emulator lists {self.symbol})"
            )

    # -- REST: market data -------------------------------------------------------------------------------
    async def _exchange_status(self, request: web.Request, body: dict) -> tuple[int, dict]:
        return 200, {"exchange_active": True, "trading_active": not self.venue.ended}

    def _touch_cents(self) -> tuple[int, int]:
        bid, ask = self.book.best_bid, self.book.best_ask
        return (bid or 0), (ask or CENTS)

    async def _markets(self, request: web.Request, body: dict) -> tuple[int, dict]:
        market = self._market_json()
        wanted = request.query.get("status")
        listed = wanted in (None, "open") if market["status"] == "active" else wanted in (None, "closed")
        return 200, {"markets": [market] if listed else [], "cursor": ""}

    async def _market(self, request: web.Request, body: dict) -> tuple[int, dict]:
        self._check_ticker(request.match_info["ticker"])
        return 200, {"market": self._market_json()}

    def _market_json(self) -> dict[str, Any]:
        bid, ask = self._touch_cents()
        market = {
            "ticker": self.symbol,
            "event_ticker": self.symbol.rsplit("-", 1)[0],
            "market_type": "binary",
            "title": f"{self.symbol} (emulated)",
            "status": "closed" if self.venue.ended else "active",
            "yes_bid": bid,
            "yes_ask": ask,
            "no_bid": CENTS - ask,
            "no_ask": CENTS - bid,
            "last_price": bid,
            "tick_size": 1,
            "response_price_units": "usd_cent",
            "notional_value": CENTS,
            "volume": self.market_trades,
            "open_interest": 0,
        }
        return market

    def _bids(self, depth: int) -> dict[str, list[list[int]]]:
        """The book as Kalshi lists it: YES bids and NO bids, each ascending by price."""
        n = depth or CENTS
        yes_p, yes_q = self.book.levels(BID, n)
        no_p, no_q = self.book.levels(ASK, n)
        yes = sorted([int(p), int(q)] for p, q in zip(yes_p, yes_q, strict=True) if 0 < p < CENTS)
        no = sorted([CENTS - int(p), int(q)] for p, q in zip(no_p, no_q, strict=True) if 0 < p < CENTS)
        return {"yes": yes, "no": no}

    async def _orderbook(self, request: web.Request, body: dict) -> tuple[int, dict]:
        self._check_ticker(request.match_info["ticker"])
        depth = _int(request.query.get("depth"), "depth", 0)
        return 200, {"orderbook": self._bids(depth)}

    # -- REST: orders ------------------------------------------------------------------------------------
    async def _create_order(self, request: web.Request, body: dict) -> tuple[int, dict]:
        self._check_ticker(body.get("ticker"))
        kside, action = body.get("side"), body.get("action")
        if kside not in ("yes", "no") or action not in ("buy", "sell"):
            raise bad_request(f"side must be yes/no and action buy/sell, got {kside!r} {action!r}")
        if body.get("type", "limit") != "limit":
            raise bad_request("the emulator takes limit orders only", "invalid_order")
        if body.get("time_in_force") not in (None, "good_till_canceled", "gtc"):
            raise bad_request(f"time_in_force {body['time_in_force']!r}: the emulator rests orders (GTC)")
        count = _int(body.get("count"), "count", 0)
        if count < 1:
            raise bad_request("count must be a whole number of contracts, at least 1")
        side, price = yes_side(kside, action), self._yes_cents(body)
        client_id = str(body.get("client_order_id") or uuid.uuid4())
        if client_id in self._by_client:
            raise KalshiHTTPError(409, "order_already_exists", f"client_order_id {client_id!r} is resting")
        if body.get("post_only") and self._crosses(side, price):
            self.stats["rejected_post_only"] += 1
            raise bad_request("post-only order would cross the book", "post_only_cross")
        order_id = self.venue.place(side, price, count, post_only=bool(body.get("post_only")))
        now = self.server_ms()
        order = KOrder(order_id, client_id, side, price, count, "GTC", now, update_ms=now)
        order.kalshi_id, order.kside, order.action = str(uuid.uuid4()), kside, action
        self.orders[order_id] = order
        self._by_kalshi[order.kalshi_id] = order
        self._by_client[client_id] = order
        self.open_orders[side] += 1
        self.peak_open_orders[side] = max(self.peak_open_orders[side], self.open_orders[side])
        answer = self._order_json(order)
        if self.faults.ack_delay > 0:
            self.dice.count("ack_delay")
            await asyncio.sleep(self.faults.ack_delay)
        return 201, {"order": answer}

    def _yes_cents(self, body: dict) -> int:
        yes, no = body.get("yes_price"), body.get("no_price")
        if (yes is None) == (no is None):
            raise bad_request("give exactly one of yes_price and no_price (cents)")
        cents = _int(yes if yes is not None else no, "yes_price" if yes is not None else "no_price", 0)
        if not 1 <= cents <= CENTS - 1:
            raise bad_request(f"a price is 1 to 99 cents, got {cents}", "invalid_price")
        return cents if yes is not None else CENTS - cents

    def _crosses(self, side: int, price: int) -> bool:
        bid, ask = self.book.best_bid, self.book.best_ask
        return (ask is not None and price >= ask) if side == BID else (bid is not None and price <= bid)

    def _find(self, order_id: str) -> KOrder:
        found = self._by_kalshi.get(order_id)
        if found is None:
            raise KalshiHTTPError(404, "not_found", f"order {order_id} not found")
        return found

    async def _get_order(self, request: web.Request, body: dict) -> tuple[int, dict]:
        return 200, {"order": self._order_json(self._find(request.match_info["order_id"]))}

    async def _get_orders(self, request: web.Request, body: dict) -> tuple[int, dict]:
        q = request.query
        if q.get("ticker") not in (None, self.symbol):
            return 200, {"orders": [], "cursor": ""}
        orders = [self._order_json(o) for o in self.orders.values()]
        if q.get("status"):
            orders = [o for o in orders if o["status"] == q["status"]]
        return 200, _page(orders, "orders", q)

    async def _cancel(self, order: KOrder) -> dict[str, Any]:
        """Cancel one order, waiting a little for the simulator; the answer of a cancel."""
        if not order.open:
            raise KalshiHTTPError(404, "not_found", f"order {order.kalshi_id} is not resting")
        self.venue.cancel(order.order_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(order.done.wait(), CANCEL_WAIT_S)
        if order.status == "FILLED":
            raise KalshiHTTPError(404, "not_found", f"order {order.kalshi_id} executed before the cancel")
        return {"order": self._order_json(order), "reduced_by": order.size - order.filled}

    async def _cancel_order(self, request: web.Request, body: dict) -> tuple[int, dict]:
        return 200, await self._cancel(self._find(request.match_info["order_id"]))

    async def _batch_cancel(self, request: web.Request, body: dict) -> tuple[int, dict]:
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or len(ids) > 20:
            raise bad_request("ids: a list of 1 to 20 order ids")
        answers = []
        for order_id in ids:
            try:
                answers.append({"order_id": order_id, **await self._cancel(self._find(str(order_id)))})
            except KalshiHTTPError as exc:
                answers.append({"order_id": order_id, "error": {"code": exc.code, "message": exc.message}})
        return 200, {"orders": answers}

    async def _get_fills(self, request: web.Request, body: dict) -> tuple[int, dict]:
        q = request.query
        fills = self.fills if q.get("ticker") in (None, self.symbol) else []
        lo, hi = _int(q.get("min_ts"), "min_ts", 0), _int(q.get("max_ts"), "max_ts", 2**62)
        fills = [f for f in fills if lo <= f["ts"] <= hi]
        if q.get("order_id"):
            fills = [f for f in fills if f["order_id"] == q["order_id"]]
        return 200, _page(fills, "fills", q)

    # -- REST: the account -------------------------------------------------------------------------------
    def _fees_cents(self) -> Decimal:
        return sum((o.taker_fees + o.maker_fees for o in self.orders.values()), Decimal(0))

    async def _balance(self, request: web.Request, body: dict) -> tuple[int, dict]:
        """Cash: start + YES sold - YES bought - fees - $1 held for each NO contract held."""
        held_no = max(-self.position.lots, 0)
        cents = INITIAL_BALANCE_CENTS + self._cash_cents - self._fees_cents() - CENTS * held_no
        bid, ask = self._touch_cents()
        mark = (bid + ask) / 2
        lots = self.position.lots
        value = lots * mark if lots > 0 else -lots * (CENTS - mark)
        return 200, {"balance": int(cents), "portfolio_value": round(value)}

    async def _positions(self, request: web.Request, body: dict) -> tuple[int, dict]:
        pos = self.position
        traded = sum(o.filled * o.price for o in self.orders.values())
        row = {
            "ticker": self.symbol,
            "position": pos.lots,  # YES contracts; negative: NO contracts
            "market_exposure": abs(pos.lots) * round(pos.entry),
            "realized_pnl": round(pos.realized),
            "fees_paid": int(self._fees_cents()),
            "total_traded": traded,
            "resting_orders_count": sum(o.open for o in self.orders.values()),
        }
        rows = [row] if pos.lots or self.fills else []
        return 200, {"market_positions": rows, "event_positions": [], "cursor": ""}

    async def _stats(self, request: web.Request) -> web.Response:
        stats = {
            **self.stats,
            "faults": self.fault_counts,
            "orders": len(self.orders),
            "trades": len(self.fills),
            "market_trades": self.market_trades,
            "connections": len(self._conns),
            "open_orders": {"bid": self.open_orders[BID], "ask": self.open_orders[ASK]},
            "peak_open_orders": {"bid": self.peak_open_orders[BID], "ask": self.peak_open_orders[ASK]},
        }
        return web.json_response(stats)

    # -- the simulator's answers -------------------------------------------------------------------------
    def on_responses(self, responses: list[tuple[Response, int]]) -> None:
        for r, _seq in responses:
            order = self.orders.get(r.order_id)
            if order is None:
                continue
            order.update_ms = self._wall_ms(r.exch_ts)
            if r.kind == "accepted":
                self._publish_channel("user_orders", "user_order", self._order_json(order))
            elif r.kind in ("rejected", "cancelled"):
                self._close(order, "EXPIRED" if r.kind == "rejected" else "CANCELED")
            elif r.kind == "fill":
                self._fill(order, r)

    def _close(self, order: KOrder, status: str, trade: dict[str, Any] | None = None) -> None:  # type: ignore[override]
        if order.open:
            self.open_orders[order.side] -= 1
        order.status = status
        order.done.set()
        self._by_client.pop(order.client_id, None)
        self._publish_channel("user_orders", "user_order", self._order_json(order))

    def _fill(self, order: KOrder, r: Response) -> None:  # type: ignore[override]
        cents = int(r.price)
        self.position.fill(r.side, float(cents), r.qty, 1.0)
        self._cash_cents += -cents * r.qty if r.side == BID else cents * r.qty
        taker = not r.maker
        fee = Decimal(0)
        if taker or self.maker_fees:
            fee = kalshi_fee(r.qty, cents, TAKER_RATE if taker else MAKER_RATE)
        order.filled += r.qty
        if taker:
            order.taker_fills += r.qty
            order.taker_fees += fee * CENTS
        else:
            order.maker_fills += r.qty
            order.maker_fees += fee * CENTS
        fill = {
            "trade_id": str(uuid.uuid4()),
            "order_id": order.kalshi_id,
            "client_order_id": order.client_id,
            "ticker": self.symbol,
            "market_ticker": self.symbol,
            "side": order.kside,
            "action": order.action,
            "count": r.qty,
            "yes_price": cents,
            "no_price": CENTS - cents,
            "yes_price_fixed": f"{cents / CENTS:.4f}",
            "no_price_fixed": f"{(CENTS - cents) / CENTS:.4f}",
            "is_taker": taker,
            "fee_cost": f"{fee:.2f}",  # the emulator's: the fee schedule's charge for this fill
            "created_time": iso_ms(order.update_ms),
            "ts": order.update_ms // 1000,
            "post_position": self.position.lots,
        }
        fill["fill_id"] = fill["trade_id"]
        self.fills.append(fill)
        self._publish_channel("fill", "fill", {k: v for k, v in fill.items() if k != "ticker"})
        if r.left <= 0:
            self._close(order, "FILLED")
        else:
            order.status = "PARTIALLY_FILLED"
            self._publish_channel("user_orders", "user_order", self._order_json(order))

    def _order_json(self, order: KOrder) -> dict[str, Any]:  # type: ignore[override]
        status = STATUS.get(order.status, "canceled")
        yes = order.price
        remaining = order.size - order.filled if status == "resting" else 0
        return {
            "order_id": order.kalshi_id,
            "user_id": "emulator",
            "client_order_id": order.client_id,
            "ticker": self.symbol,
            "side": order.kside,
            "action": order.action,
            "type": "limit",
            "status": status,
            "yes_price": yes,
            "no_price": CENTS - yes,
            "yes_price_dollars": f"{yes / CENTS:.4f}",
            "no_price_dollars": f"{(CENTS - yes) / CENTS:.4f}",
            "initial_count": order.size,
            "fill_count": order.filled,
            "remaining_count": remaining,
            "taker_fill_count": order.taker_fills,
            "maker_fill_count": order.maker_fills,
            "taker_fees": int(order.taker_fees),
            "maker_fees": int(order.maker_fees),
            "created_time": iso_ms(order.time_ms),
            "last_update_time": iso_ms(order.update_ms),
            "time_in_force": "good_till_canceled",
        }

    # -- the market from the replay ----------------------------------------------------------------------
    def on_market(self, events: np.ndarray) -> None:
        """Publish what this batch did to the book (one ``orderbook_delta`` per level changed) and
        its trades."""
        before = {BID: self.book.bid.copy(), ASK: self.book.ask.copy()}
        self.book.apply(events)
        after = {BID: self.book.bid, ASK: self.book.ask}
        lo = self.book.lo_tick
        deltas = []
        for side, kside in ((BID, "yes"), (ASK, "no")):
            for i in np.flatnonzero(before[side] != after[side]):
                ticks = lo + int(i)
                if 0 < ticks < CENTS:
                    cents = ticks if side == BID else CENTS - ticks
                    change = int(after[side][i]) - int(before[side][i])
                    deltas.append({"price": cents, "delta": change, "side": kside})
        gap = self.faults.gap_every > 0 and time.monotonic() >= self._next_gap and deltas
        if gap:
            self._next_gap = time.monotonic() + self.faults.gap_every
            self.dice.count("gap")
        for i, delta in enumerate(deltas):
            self.stats["orderbook_deltas"] += 1
            msg = {"market_ticker": self.symbol, **delta}
            self._publish_channel("orderbook_delta", "orderbook_delta", msg, lost=bool(gap) and i == 0)
        kinds = events["kind"]
        for ev in events[(kinds == TRADE) | (kinds == EXECUTE)]:
            self._publish_trade(ev)

    def _publish_trade(self, ev: np.void) -> None:
        cents = int(ev["price"])
        if not 0 < cents < CENTS:
            return
        self.market_trades += 1
        msg = {
            "trade_id": str(uuid.uuid4()),
            "market_ticker": self.symbol,
            "yes_price": cents,
            "no_price": CENTS - cents,
            "count": int(ev["size"]),
            "taker_side": "yes" if ev["side"] == ASK else "no",  # a YES taker lifted the ask
            "ts": self._wall_ms(int(ev["exch_ts"])) // 1000,
        }
        self._publish_channel("trade", "trade", msg)

    # -- websockets --------------------------------------------------------------------------------------
    def _message(self, conn: KConn, channel: str, kind: str, msg: dict[str, Any]) -> str | None:
        """The message for ``conn`` (None: not subscribed), its ``seq`` counted."""
        sid = conn.sids.get(channel)
        if sid is None:
            return None
        conn.seqs[sid] = conn.seqs.get(sid, 0) + 1
        return json.dumps(
            {"type": kind, "sid": sid, "seq": conn.seqs[sid], "msg": msg}, separators=(",", ":")
        )

    def _publish_channel(self, channel: str, kind: str, msg: dict[str, Any], lost: bool = False) -> None:
        for conn in list(self._conns):
            text = self._message(conn, channel, kind, msg)  # type: ignore[arg-type]
            if text is not None and not lost:
                conn.queue.put_nowait((text, False))

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authorize(request, required=True)
        except KalshiHTTPError as exc:
            return exc.response()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = KConn(ws, combined=False, user=True)
        await self._serve(conn)
        return ws

    def _command(self, conn: KConn, text: str) -> list[str]:
        """The answers to a command, in order (a subscription's: one per channel, then the book's
        snapshot)."""
        try:
            command = json.loads(text)
            cmd, params, cmd_id = command["cmd"], command.get("params") or {}, command.get("id")
        except (ValueError, KeyError, TypeError, AttributeError):
            return [_ws_error(None, 1, "Unable to process message")]
        if cmd == "subscribe":
            return self._subscribe(conn, cmd_id, params)
        if cmd == "unsubscribe":
            sids = params.get("sids") or []
            for channel, sid in list(conn.sids.items()):
                if sid in sids:
                    del conn.sids[channel]
            return [json.dumps({"id": cmd_id, "type": "unsubscribed", "msg": {"sids": sids}})]
        return [_ws_error(cmd_id, 5, "Unknown command")]

    def _subscribe(self, conn: KConn, cmd_id: Any, params: dict[str, Any]) -> list[str]:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            return [_ws_error(cmd_id, 3, "Channels required")]
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            return [_ws_error(cmd_id, 8, f"Unknown channel name: {unknown[0]}")]
        tickers = params.get("market_tickers") or [params.get("market_ticker") or self.symbol]
        if self.symbol not in tickers:
            return [_ws_error(cmd_id, 11, f"Invalid parameter: this emulator lists {self.symbol} only")]
        answers = []
        for channel in channels:
            self._sid += 1
            conn.sids[channel] = self._sid
            conn.seqs[self._sid] = 0
            subscribed = {"id": cmd_id, "type": "subscribed", "msg": {"channel": channel, "sid": self._sid}}
            answers.append(json.dumps(subscribed))
        if "orderbook_delta" in channels:
            snapshot = {"market_ticker": self.symbol, "market_id": self.symbol, **self._bids(0)}
            answers.append(self._message(conn, "orderbook_delta", "orderbook_snapshot", snapshot) or "")
        return answers

    async def _serve(self, conn: Connection) -> None:  # type: ignore[override]
        """The connection's commands in (answered in order, ahead of what follows), its queue out
        through the pump (the dup and reorder faults)."""
        assert isinstance(conn, KConn)
        self._conns.add(conn)
        pump = asyncio.create_task(self._pump(conn))
        try:
            async for msg in conn.ws:
                if msg.type == WSMsgType.TEXT:
                    for text in self._command(conn, msg.data):
                        conn.queue.put_nowait((text, True))
        finally:
            self._conns.discard(conn)
            pump.cancel()


def _ws_error(cmd_id: Any, code: int, text: str) -> str:
    return json.dumps({"id": cmd_id, "type": "error", "msg": {"code": code, "msg": text}})


def _int(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"{name} must be an integer, got {value!r}") from exc


def _page(rows: list[dict[str, Any]], key: str, query: Any) -> dict[str, Any]:
    """One page of ``rows`` from ``cursor`` (an offset), ``limit`` long; the next cursor or ''."""
    start = _int(query.get("cursor"), "cursor", 0)
    limit = min(max(_int(query.get("limit"), "limit", 100), 1), PAGE_MAX)
    end = start + limit
    return {key: rows[start:end], "cursor": str(end) if end < len(rows) else ""}
