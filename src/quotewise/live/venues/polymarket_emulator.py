"""A local Polymarket CLOB: the wire protocol (REST with L1/L2 auth, the market and user websocket
channels, the relayer's wallet check and a JSON-RPC stub) in front of our exchange simulator, driven
in real time by a market data file.

Why: the official SDK (``polymarket-client``), its hosts moved here
(:func:`quotewise.live.venues.polymarket_exchange.environment_at`), runs unchanged against a market we
control, so the code that trades on Polymarket is proven without the internet, with the backtest's
fill rules and under injected faults.

It is the Binance emulator's machinery (:class:`~.binance_emulator.BinanceEmulator`: the replay in a
:class:`~quotewise.live.paper.PaperVenue`, the clock shifted so the replay starts at :meth:`start`, the
book kept from the replayed events, the websocket pump with the dup/reorder faults, the drop fault)
with Polymarket's protocol in front. What a client sees:

- one binary market: condition ``market`` with two outcome tokens, YES (``symbol``: the data's token,
  or the one given) and NO (``complement``: given, or :func:`default_complement`), its tick and minimum
  size from the data, not neg-risk, a fee curve ``fee_rate`` / ``fee_exponent``. The simulator's book
  is YES's; NO's is its mirror (a YES ask at p is a NO bid at 1 - p, a YES bid a NO ask), served
  (``/book``, the market channel to NO's subscribers) as a book of its own. An order on NO goes to the
  simulator as the mirrored YES order (BUY NO at q = SELL YES at 1 - q) and is reported on NO at NO's
  prices;
- balances: USDC (``collateral``) and each token's shares (none at the start), moved by our fills (a
  BUY gets the shares and pays price x size and the fee, a SELL the reverse) and read with
  ``/balance-allowance``. As on Polymarket, a SELL of more shares than held less what the token's open
  SELLs offer, or a BUY costing more USDC than open BUYs leave, is refused (400, ``not enough balance
  / allowance: the balance is not enough -> balance: B, order amount: A``, base units);
- the market channel: ``book`` on subscribing, then ``price_change`` per batch of level changes,
  ``last_trade_price`` per replayed trade, ``best_bid_ask`` (with ``custom_feature_enabled``: on
  subscribing and whenever the touch moves) and
  ``tick_size_change`` (:meth:`PolymarketEmulator.change_tick`); ``PING`` is answered ``PONG``;
- orders: an order is answered ``live`` at once (its id the EIP-712 hash of the signed order); what
  the simulator then does arrives on the user channel (``order`` PLACEMENT / UPDATE / CANCELLATION,
  ``trade``) and shows in ``/data/orders``, ``/data/order/{id}`` and ``/data/trades``. A post-only
  order that would cross the published book is refused (400, ``invalid post-only order: order crosses
  book``); one the simulator refuses later (the book moved) ends CANCELED;
- fees: takers pay ``C * fee_rate * (p * (1 - p)) ** fee_exponent``, makers nothing; a trade carries
  the rate as ``fee_rate_bps`` (what Polymarket reports) and the emulator sums the fees in its stats;
- auth: L1 (an EIP-712 ClobAuth signature) creates / derives the one account's credentials; L2 (HMAC
  of timestamp, method, path and body with the base64url secret) guards every private endpoint, and a
  wrong one is answered 401 ``{"error": "Unauthorized/Invalid api key"}``.

Not modelled: order signatures are not verified (an order is taken as its maker's), allowances
(unlimited), the fee on a BUY taken in USDC (Polymarket takes it in shares), merging or redeeming
shares, settlement (trades are MATCHED on the stream, CONFIRMED in REST at once), the
``gap`` fault (the market channel has no sequence numbers: refused). The published book is the data's market;
our own resting orders are not added to it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web
from eth_account import Account
from eth_account.messages import encode_typed_data

from quotewise.errors import ConfigError
from quotewise.live.venues.binance_emulator import CANCEL_WAIT_S, BinanceEmulator, Connection
from quotewise.live.venues.binance_faults import Faults, parse_faults
from quotewise.live.venues.polymarket_exchange import order_domain, order_hash, taker_fee
from quotewise.model.events import ASK, BID
from quotewise.model.response import Response
from quotewise.settings import VenueSettings

CHAIN_ID = 137
DEFAULT_TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
OUTCOME = "Yes"
COMPLEMENT_OUTCOME = "No"
COLLATERAL = "USDC"
UNITS = Decimal(1_000_000)  # order amounts are in 6-decimal base units
MARKET_OWNER = "00000000-0000-0000-0000-00000000beef"  # the replayed market's side of our trades
MARKET_ADDRESS = "0x000000000000000000000000000000000000bEEF"
ZERO_HASH = "0x" + "00" * 32
END_CURSOR = "LTE="
UNAUTHORIZED = "Unauthorized/Invalid api key"
CLOB_AUTH = "This message attests that I control the given wallet"
SIDE_NAMES = {BID: "BUY", ASK: "SELL"}
FLIP_SIDE = {"BUY": "SELL", "SELL": "BUY"}
NOT_ENOUGH = "not enough balance / allowance: the balance is not enough"  # Polymarket's 400 text


class PolyError(Exception):
    """A Polymarket-shaped error answer: HTTP status and ``{"error": message}``."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after

    def response(self) -> web.Response:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return web.json_response({"error": self.message}, status=self.status, headers=headers)


@dataclass(eq=False)
class PmOrder:
    """One of our orders as the emulator reports it (fed by the simulator's responses)."""

    order_id: int  # the simulator's
    hash: str
    side: int
    price: int
    size: int
    maker: str
    order_type: str
    created_s: int
    token: str  # the outcome token it was placed on (side and price above are the YES book's)
    status: str = "LIVE"
    filled: int = 0
    trades: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def open(self) -> bool:
        return self.status == "LIVE"


Handler = Callable[[web.Request, str], Awaitable[Any]]


def default_complement(token: str) -> str:
    """The NO token's id when none is given: a fixed decimal id derived from the YES token's."""
    return str(int(hashlib.sha256(f"complement/{token}".encode()).hexdigest(), 16))


def secret_key(secret: str) -> bytes:
    """An API secret's key bytes (base64url text, its padding optional)."""
    return base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))


def hmac_signature(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    """Polymarket's L2 signature: base64url HMAC-SHA256 of timestamp + method + path + body, keyed
    with the base64url-decoded secret."""
    digest = hmac.new(
        secret_key(secret), f"{timestamp}{method}{path}{body}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode()


def clob_auth_signer(address: str, timestamp: str, nonce: int, signature: str) -> str:
    """Who signed an L1 ClobAuth message (EIP-712, Polymarket's auth domain on Polygon)."""
    typed = {
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": CHAIN_ID},
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "primaryType": "ClobAuth",
        "message": {"address": address, "timestamp": timestamp, "nonce": nonce, "message": CLOB_AUTH},
    }
    return Account.recover_message(encode_typed_data(full_message=typed), signature=signature)


class PolymarketEmulator(BinanceEmulator):
    """Polymarket's CLOB on a local port; see the module docstring."""

    def __init__(
        self,
        data: str,
        api_key: str,
        secret: str,
        passphrase: str,
        speed: float = 1.0,
        faults: str | Faults | None = None,
        token: str | None = None,
        settings: VenueSettings | None = None,
        fee_rate: float = 0.0,
        fee_exponent: float = 1.0,
        complement: str | None = None,
        collateral: float = 1_000_000,
    ) -> None:
        if not passphrase:
            raise ConfigError("the emulator needs a passphrase with its API key and secret")
        try:
            secret_key(secret)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError("a Polymarket API secret is base64url text") from exc
        if not 0 <= fee_rate < 1 or fee_exponent < 0:
            raise ConfigError(
                f"fee rate {fee_rate} / exponent {fee_exponent}: a rate in [0, 1), exponent >= 0"
            )
        faults = faults if isinstance(faults, Faults) else parse_faults(faults)
        if faults.gap_every > 0:
            raise ConfigError("--faults gap: Polymarket's market channel has no sequence numbers to skip")
        super().__init__(data, api_key, secret, speed, faults, None, settings)
        self.passphrase = passphrase
        self.secret_text = secret
        self.fee_rate, self.fee_exponent = float(fee_rate), float(fee_exponent)
        inst = self.venue.instrument
        listed_token = token or (inst.symbol if inst.symbol.isdigit() else DEFAULT_TOKEN)
        self.instrument = inst.model_copy(update={"symbol": listed_token, "base": OUTCOME, "quote": "USDC"})
        self.market = "0x" + hashlib.sha256(listed_token.encode()).hexdigest()
        self.complement = complement or default_complement(listed_token)
        if self.complement == listed_token or collateral < 0:
            raise ConfigError(f"complement {self.complement}: another token than {listed_token}, funded")
        self.tokens = (listed_token, self.complement)
        self.outcomes = {listed_token: OUTCOME, self.complement: COMPLEMENT_OUTCOME}
        self.unit = round(1 / self.instrument.tick_size)  # the simulator's ticks in 1 USDC
        self.tick = Decimal(repr(self.instrument.tick_size))
        self.domains = {t: self._order_domain(t) for t in self.tokens}
        self.balances = {COLLATERAL: Decimal(repr(collateral)), **{t: Decimal(0) for t in self.tokens}}
        self.orders: dict[int, PmOrder] = {}  # type: ignore[assignment]  (by the simulator's id)
        self.by_hash: dict[str, PmOrder] = {}
        self.signer: str | None = None  # the address that derived the credentials (L1)
        self.fees = 0.0
        self._last_trade: str | None = None
        self.stats.update(l1_auths=0, unauthorized=0, posted=0, refused=0, unfunded=0)

    def _order_domain(self, token: str) -> tuple[int, str, str]:
        from polymarket._internal.environment import PRODUCTION_CONFIG

        return order_domain(PRODUCTION_CONFIG, token, neg_risk=False)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        """The CLOB's REST routes (each with its auth), the relayer's and RPC's, and the two channels."""
        app.router.add_get("/ws/market", self._websocket)
        app.router.add_get("/ws/user", self._websocket)
        for (method, path), (handler, auth) in self._route_table().items():
            app.router.add_route(method, path, self._endpoint(handler, auth))

    # -- REST: the dispatcher ----------------------------------------------------------------------------
    def _route_table(self) -> dict[tuple[str, str], tuple[Handler, str]]:  # type: ignore[override]
        return {
            ("GET", "/"): (self._ok, "none"),
            ("GET", "/time"): (self._time, "none"),
            ("GET", "/deployed"): (self._deployed, "none"),
            ("POST", "/rpc"): (self._rpc, "none"),
            ("POST", "/auth/api-key"): (self._api_key, "l1"),
            ("GET", "/auth/derive-api-key"): (self._api_key, "l1"),
            ("GET", "/auth/api-keys"): (self._api_keys, "l2"),
            ("GET", "/auth/ban-status/closed-only"): (self._closed_only, "l2"),
            ("GET", "/book"): (self._book_rest, "none"),
            ("GET", "/tick-size"): (self._tick_size, "none"),
            ("GET", "/neg-risk"): (self._neg_risk, "none"),
            ("GET", "/fee-rate"): (self._fee_rate, "none"),
            ("GET", "/markets-by-token/{token}"): (self._market_by_token, "none"),
            ("GET", "/clob-markets/{condition}"): (self._clob_market, "none"),
            ("POST", "/order"): (self._post_order, "l2"),
            ("DELETE", "/order"): (self._cancel_one, "l2"),
            ("DELETE", "/orders"): (self._cancel_many, "l2"),
            ("DELETE", "/cancel-all"): (self._cancel_all_rest, "l2"),
            ("DELETE", "/cancel-market-orders"): (self._cancel_market, "l2"),
            ("GET", "/data/orders"): (self._open_orders_rest, "l2"),
            ("GET", "/data/order/{order_id}"): (self._get_order, "l2"),
            ("GET", "/data/trades"): (self._trades_rest, "l2"),
            ("GET", "/balance-allowance"): (self._balance, "l2"),
            ("GET", "/balance-allowance/update"): (self._balance, "l2"),
        }

    def _endpoint(self, handler: Handler, auth: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            fault = self._http_fault()
            if fault is not None:
                return fault
            body = await request.text()
            try:
                if auth == "l1":
                    self._check_l1(request)
                elif auth == "l2":
                    self._check_l2(request, body)
                return web.json_response(await handler(request, body))
            except PolyError as exc:
                return exc.response()

        return serve

    def _http_fault(self) -> web.Response | None:
        """The 429 and 5xx faults: the request is answered without being processed."""
        if self.dice.hit("429", self.faults.throttle):
            return PolyError(429, "Too Many Requests", retry_after=1).response()
        if self.dice.hit("5xx", self.faults.server_error):
            return PolyError(500, "Internal server error").response()
        return None

    def _check_l1(self, request: web.Request) -> None:
        h = request.headers
        try:
            address, timestamp = h["POLY_ADDRESS"], h["POLY_TIMESTAMP"]
            signer = clob_auth_signer(address, timestamp, int(h.get("POLY_NONCE", "0")), h["POLY_SIGNATURE"])
        except (KeyError, ValueError, TypeError) as exc:
            self.stats["unauthorized"] += 1
            raise PolyError(401, "Invalid L1 Request headers") from exc
        if signer.lower() != address.lower():
            self.stats["unauthorized"] += 1
            raise PolyError(401, "Invalid L1 Request headers")
        self.signer = address
        self.stats["l1_auths"] += 1

    def _check_l2(self, request: web.Request, body: str) -> None:
        h = request.headers
        given = h.get("POLY_SIGNATURE", "")
        stamp = h.get("POLY_TIMESTAMP", "")
        wanted = hmac_signature(self.secret_text, stamp, request.method, request.path, body)
        good = (
            h.get("POLY_API_KEY") == self.api_key
            and h.get("POLY_PASSPHRASE") == self.passphrase
            and bool(h.get("POLY_ADDRESS"))
            and stamp.isdigit()
            and hmac.compare_digest(given.encode(), wanted.encode())
        )
        if not good:
            self.stats["unauthorized"] += 1
            raise PolyError(401, UNAUTHORIZED)

    # -- REST: public ------------------------------------------------------------------------------------
    async def _ok(self, request: web.Request, body: str) -> str:
        return "OK"

    async def _time(self, request: web.Request, body: str) -> int:
        if self.faults.skew:
            self.dice.count("skew")
        return self.server_ms() // 1000

    async def _deployed(self, request: web.Request, body: str) -> dict:
        """The relayer's wallet check: every wallet is deployed here."""
        return {"deployed": True}

    async def _rpc(self, request: web.Request, body: str) -> dict:
        """A JSON-RPC stub for the SDK's chain reads: chain id, a block, no code, zero answers."""
        try:
            call = json.loads(body)
        except ValueError:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
        answers = {
            "eth_chainId": hex(CHAIN_ID),
            "net_version": str(CHAIN_ID),
            "eth_blockNumber": hex(self.server_ms() // 2000),
            "eth_getCode": "0x",
            "eth_call": "0x" + "00" * 32,
            "eth_getBalance": "0x0",
            "eth_getTransactionCount": "0x0",
            "eth_gasPrice": hex(30 * 10**9),
        }
        method = call.get("method") if isinstance(call, dict) else None
        if method not in answers:
            error = {"code": -32601, "message": f"the emulator's RPC stub has no {method}"}
            return {
                "jsonrpc": "2.0",
                "id": call.get("id") if isinstance(call, dict) else None,
                "error": error,
            }
        return {"jsonrpc": "2.0", "id": call.get("id"), "result": answers[method]}

    def _check_token(self, token: str | None) -> str:
        if not token:
            raise PolyError(400, "Invalid token id")
        if token not in self.tokens:
            raise PolyError(404, "No orderbook exists for the requested token id")
        return token

    async def _book_rest(self, request: web.Request, body: str) -> dict:
        token = self._check_token(request.query.get("token_id"))
        book = self._book_of(token, self.server_ms())
        last = self._last_trade or ""
        if last and token == self.complement:
            last = self._flip(last)
        return {
            "market": self.market,
            "asset_id": token,
            "timestamp": book["timestamp"],
            "hash": book["hash"],
            "bids": book["bids"][::-1],  # REST: ascending, the best bid last
            "asks": book["asks"][::-1],  # descending, the best ask last
            "min_order_size": self._qty(self.instrument.min_size_lots),
            "tick_size": str(self.tick),
            "neg_risk": False,
            "last_trade_price": last,
        }

    async def _tick_size(self, request: web.Request, body: str) -> dict:
        self._check_token(request.query.get("token_id"))
        return {"minimum_tick_size": float(self.tick)}

    async def _neg_risk(self, request: web.Request, body: str) -> dict:
        self._check_token(request.query.get("token_id"))
        return {"neg_risk": False}

    async def _fee_rate(self, request: web.Request, body: str) -> dict:
        self._check_token(request.query.get("token_id"))
        return {"base_fee": round(self.fee_rate * 10_000)}

    async def _market_by_token(self, request: web.Request, body: str) -> dict:
        self._check_token(request.match_info["token"])
        return {"condition_id": self.market, "primary_token_id": self.symbol}

    async def _clob_market(self, request: web.Request, body: str) -> dict:
        if request.match_info["condition"].lower() != self.market:
            raise PolyError(404, "market not found")
        return {
            "c": self.market,
            "t": [{"t": token, "o": outcome} for token, outcome in self.outcomes.items()],
            "mts": float(self.tick),
            "mos": float(self._qty(self.instrument.min_size_lots)),
            "nr": False,
            "fd": {"r": self.fee_rate, "e": self.fee_exponent},
        }

    # -- REST: the account -------------------------------------------------------------------------------
    async def _api_key(self, request: web.Request, body: str) -> dict:
        return {"apiKey": self.api_key, "secret": self.secret_text, "passphrase": self.passphrase}

    async def _api_keys(self, request: web.Request, body: str) -> dict:
        return {"apiKeys": [self.api_key]}

    async def _closed_only(self, request: web.Request, body: str) -> dict:
        return {"closed_only": False}

    async def _balance(self, request: web.Request, body: str) -> dict:
        """USDC (``asset_type=COLLATERAL``) or one token's shares, in base units; allowances unlimited."""
        q = request.query
        asset = COLLATERAL
        if q.get("asset_type", "COLLATERAL").upper() != "COLLATERAL":
            asset = self._check_token(q.get("token_id"))
        unlimited = str(2**256 - 1)
        return {
            "balance": str(int(self.balances[asset] * UNITS)),
            "allowances": {domain[1]: unlimited for domain in self.domains.values()},
        }

    def _shares(self, lots: int) -> Decimal:
        return Decimal(self._qty(lots))

    def _usdc(self, price: int, lots: int) -> Decimal:
        return Decimal(self._px(price)) * self._shares(lots)

    def _own_price(self, token: str, ticks: int) -> int:
        """A YES price (the simulator's ticks) on ``token``: 1 - p on the NO token."""
        return self.unit - ticks if token == self.complement else ticks

    def _own_terms(self, order: PmOrder) -> tuple[int, int]:
        """An order's side and price on its own token: a NO order is the mirrored YES order in the
        simulator."""
        side = -order.side if order.token == self.complement else order.side
        return side, self._own_price(order.token, order.price)

    def _check_funds(self, token: str, side: int, price: int, size: int) -> None:
        """Polymarket's balance check: a SELL needs the token's shares not already offered by its open
        SELLs, a BUY the USDC not already committed to open BUYs."""
        reserved = Decimal(0)
        for o in self.by_hash.values():
            o_side, o_price = self._own_terms(o)
            if not o.open or o_side != side:
                continue
            if side == ASK and o.token == token:
                reserved += self._shares(o.size - o.filled)
            elif side == BID:
                reserved += self._usdc(o_price, o.size - o.filled)
        held = self.balances[token if side == ASK else COLLATERAL]
        need = self._shares(size) if side == ASK else self._usdc(price, size)
        if need > held - reserved:
            self.stats["unfunded"] += 1
            free = int(max(held - reserved, Decimal(0)) * UNITS)
            raise PolyError(400, f"{NOT_ENOUGH} -> balance: {free}, order amount: {int(need * UNITS)}")

    # -- REST: orders ------------------------------------------------------------------------------------
    async def _post_order(self, request: web.Request, body: str) -> dict:
        try:
            payload = json.loads(body)
            order = payload["order"]
            owner, order_type = payload["owner"], payload.get("orderType", "GTC")
            side, price, size = self._terms(order)
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            raise PolyError(400, "Invalid order payload") from exc
        post_only = bool(payload.get("postOnly"))
        token = str(order["tokenId"])
        if owner != self.api_key:
            raise PolyError(400, "the order owner has to be the owner of the API KEY")
        if token not in self.tokens:
            raise PolyError(400, "Invalid token id")
        if order_type not in ("GTC", "GTD"):
            raise PolyError(400, f"order type {order_type} is not supported by the emulator (GTC, GTD)")
        order_id = order_hash(order, *self.domains[token])
        if order_id in self.by_hash:
            raise PolyError(400, f"order {order_id} is invalid. Duplicated.")
        self._check_funds(token, side, price, size)
        if token == self.complement:  # BUY NO at q is SELL YES at 1 - q, and the reverse
            side, price = -side, self._own_price(token, price)
        if post_only and self._crosses(side, price):
            self.stats["refused"] += 1
            raise PolyError(400, "invalid post-only order: order crosses book")
        venue_id = self.venue.place(side, price, size, post_only=post_only)
        placed = PmOrder(
            venue_id,
            order_id,
            side,
            price,
            size,
            str(order["maker"]),
            order_type,
            self.server_ms() // 1000,
            token,
        )
        self.orders[venue_id] = placed
        self.by_hash[order_id] = placed
        self.open_orders[side] += 1
        self.peak_open_orders[side] = max(self.peak_open_orders[side], self.open_orders[side])
        self.stats["posted"] += 1
        if self.faults.ack_delay > 0:
            self.dice.count("ack_delay")
            await asyncio.sleep(self.faults.ack_delay)
        return {
            "errorMsg": "",
            "makingAmount": "",
            "orderID": order_id,
            "status": "live",
            "success": True,
            "takingAmount": "",
            "transactionsHashes": [],
            "tradeIDs": [],
        }

    def _terms(self, order: dict[str, Any]) -> tuple[int, int, int]:
        """Side, price in ticks and size in lots of a signed order's amounts; off-grid is refused."""
        side = {"BUY": BID, "SELL": ASK}[str(order["side"]).upper()]
        maker, taker = Decimal(str(order["makerAmount"])) / UNITS, Decimal(str(order["takerAmount"])) / UNITS
        shares, usdc = (taker, maker) if side == BID else (maker, taker)
        if shares <= 0 or usdc <= 0:
            raise PolyError(400, "Invalid order payload: amounts must be positive")
        price = usdc / shares
        ticks = price / self.tick
        if ticks != ticks.to_integral_value() or not 1 <= ticks < 1 / self.tick:
            raise PolyError(
                400, f"invalid price ({price.normalize()}), min: {self.tick} - max: {1 - self.tick}"
            )
        lots = shares / Decimal(repr(self.instrument.lot_size))
        if lots != lots.to_integral_value():
            raise PolyError(400, f"invalid size ({shares.normalize()}): not a multiple of {self._qty(1)}")
        if int(lots) < self.instrument.min_size_lots:
            minimum = self._qty(self.instrument.min_size_lots)
            raise PolyError(400, f"Size ({shares.normalize()}) lower than the minimum: {minimum}")
        return side, self._sim_ticks(int(ticks)), int(lots)

    def _sim_ticks(self, ticks: int) -> int:
        """A price in served ticks as the simulator's ticks (the data's grid; a coarser tick served
        after :meth:`change_tick` is a whole number of them)."""
        return round(ticks * float(self.tick) / self.instrument.tick_size)

    def _crosses(self, side: int, price: int) -> bool:
        best = self.book.best_ask if side == BID else self.book.best_bid
        return best is not None and (price >= best if side == BID else price <= best)

    async def _cancel(self, ids: list[str]) -> dict:
        """Cancel these orders (waiting a little for the simulator); Polymarket's answer."""
        asked, not_canceled = [], {}
        for order_id in ids:
            order = self.by_hash.get(order_id)
            if order is None:
                not_canceled[order_id] = "order not found"
            elif not order.open:
                not_canceled[order_id] = "order can't be canceled: already canceled or matched"
            else:
                self.venue.cancel(order.order_id)
                asked.append(order)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(o.done.wait() for o in asked)), CANCEL_WAIT_S)
        canceled = []
        for order in asked:
            if order.status == "MATCHED":
                not_canceled[order.hash] = "order can't be canceled: already canceled or matched"
            else:
                canceled.append(order.hash)
        return {"canceled": canceled, "not_canceled": not_canceled}

    async def _cancel_one(self, request: web.Request, body: str) -> dict:
        try:
            order_id = str(json.loads(body)["orderID"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PolyError(400, "Invalid order payload") from exc
        return await self._cancel([order_id])

    async def _cancel_many(self, request: web.Request, body: str) -> dict:
        try:
            ids = [str(i) for i in json.loads(body)]
        except (ValueError, TypeError) as exc:
            raise PolyError(400, "Invalid order payload") from exc
        return await self._cancel(ids)

    async def _cancel_all_rest(self, request: web.Request, body: str) -> dict:
        return await self._cancel([o.hash for o in self.by_hash.values() if o.open])

    async def _cancel_market(self, request: web.Request, body: str) -> dict:
        try:
            wanted = json.loads(body) if body else {}
        except ValueError as exc:
            raise PolyError(400, "Invalid order payload") from exc
        if wanted.get("market") not in (None, self.market):
            return {"canceled": [], "not_canceled": {}}
        asset = wanted.get("asset_id")
        return await self._cancel(
            [o.hash for o in self.by_hash.values() if o.open and asset in (None, o.token)]
        )

    def _order_json(self, order: PmOrder) -> dict[str, Any]:  # type: ignore[override]
        side, price = self._own_terms(order)
        return {
            "associate_trades": list(order.trades),
            "id": order.hash,
            "status": order.status,
            "market": self.market,
            "original_size": self._qty(order.size),
            "outcome": self.outcomes[order.token],
            "maker_address": order.maker,
            "owner": self.api_key,
            "price": self._px(price),
            "side": SIDE_NAMES[side],
            "size_matched": self._qty(order.filled),
            "asset_id": order.token,
            "expiration": "0",
            "order_type": order.order_type,
            "created_at": order.created_s,
        }

    def _scoped(self, q: Any, token: str) -> bool:
        """Whether an order or trade on ``token`` is in a listing's ``asset_id`` / ``market`` filter."""
        return q.get("asset_id", token) == token and q.get("market", self.market) == self.market

    async def _open_orders_rest(self, request: web.Request, body: str) -> dict:
        q = request.query
        orders = [o for o in self.by_hash.values() if o.open and self._scoped(q, o.token)]
        if q.get("id"):
            orders = [o for o in orders if o.hash == q["id"]]
        return {"data": [self._order_json(o) for o in orders], "next_cursor": END_CURSOR}

    async def _get_order(self, request: web.Request, body: str) -> dict:
        order = self.by_hash.get(request.match_info["order_id"])
        if order is None:
            raise PolyError(404, "order not found")
        return self._order_json(order)

    async def _trades_rest(self, request: web.Request, body: str) -> dict:
        q = request.query
        trades = [{**t, "status": "CONFIRMED"} for t in self.trades if self._scoped(q, t["asset_id"])]
        if q.get("id"):
            trades = [t for t in trades if t["id"] == q["id"]]
        if q.get("after", "").isdigit():
            trades = [t for t in trades if int(t["match_time"]) >= int(q["after"])]
        if q.get("before", "").isdigit():
            trades = [t for t in trades if int(t["match_time"]) <= int(q["before"])]
        return {"data": trades, "next_cursor": END_CURSOR}

    # -- the market channel from the replay --------------------------------------------------------------
    def _head(self, kind: str) -> dict[str, Any]:
        return {"event_type": kind, "market": self.market, "asset_id": self.symbol}

    def _levels_json(self, side: int) -> list[dict[str, str]]:
        prices, sizes = self.book.levels(side, 10_000)
        return [
            {"price": self._px(int(p)), "size": self._qty(int(s))} for p, s in zip(prices, sizes, strict=True)
        ]

    @staticmethod
    def _digest(bids: list, asks: list) -> str:
        return hashlib.sha1(json.dumps([bids, asks]).encode()).hexdigest()

    def _book_message(self, ts_ms: int) -> dict[str, Any]:
        """The ``book`` message: both sides best first, as the channel sends them."""
        bids, asks = self._levels_json(BID), self._levels_json(ASK)
        digest = self._digest(bids, asks)
        return {**self._head("book"), "bids": bids, "asks": asks, "timestamp": str(ts_ms), "hash": digest}

    def _book_of(self, token: str, ts_ms: int) -> dict[str, Any]:
        return self._as_token(token, self._book_message(ts_ms))

    def _as_token(self, token: str, message: dict[str, Any]) -> dict[str, Any]:
        """A YES market-channel message as ``token``'s (the NO token's is its mirror)."""
        return message if token == self.symbol else self._mirrored(message)

    def _flip(self, price: str) -> str:
        """A price on the other token: 1 - p."""
        return f"{1 - Decimal(price):.{self.instrument.price_decimals}f}"

    def _flip_levels(self, levels: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{**lv, "price": self._flip(lv["price"])} for lv in levels]

    def _mirrored(self, message: dict[str, Any]) -> dict[str, Any]:
        """A YES market-channel message as the NO token's: prices 1 - p, bids and asks swapped, sides
        flipped (a YES ask at p is a NO bid at 1 - p)."""
        out = {**message, "asset_id": self.complement} if "asset_id" in message else dict(message)
        kind = message.get("event_type")
        if kind == "book":
            out.update(bids=self._flip_levels(message["asks"]), asks=self._flip_levels(message["bids"]))
            out["hash"] = self._digest(out["bids"], out["asks"])
        elif kind == "price_change":
            out["price_changes"] = [
                {
                    **c,
                    "asset_id": self.complement,
                    "price": self._flip(c["price"]),
                    "side": FLIP_SIDE[c["side"]],
                    "best_bid": self._flip(c["best_ask"]),
                    "best_ask": self._flip(c["best_bid"]),
                }
                for c in message["price_changes"]
            ]
        elif kind == "last_trade_price":
            out.update(price=self._flip(message["price"]), side=FLIP_SIDE[message["side"]])
        elif kind == "best_bid_ask":
            out.update(best_bid=self._flip(message["best_ask"]), best_ask=self._flip(message["best_bid"]))
        return out

    def _publish_depth(self, bids: list, asks: list, exch_ms: int, n_events: int) -> None:
        best_bid, best_ask = self.book.best_bid, self.book.best_ask
        digest = hashlib.sha1(f"{self.symbol}:{exch_ms}:{bids}:{asks}".encode()).hexdigest()
        changes = [
            {
                "asset_id": self.symbol,
                "price": price,
                "side": SIDE_NAMES[side],
                "size": size,
                "hash": digest,
                "best_bid": self._px(best_bid) if best_bid is not None else "0",
                "best_ask": self._px(best_ask) if best_ask is not None else "1",
            }
            for side, levels in ((BID, bids), (ASK, asks))
            for price, size in levels
        ]
        message = {"event_type": "price_change", "market": self.market, "price_changes": changes}
        self.stats["depth_updates"] += 1
        self._publish("market", {**message, "timestamp": str(exch_ms)})

    def _publish_trade(self, ev: np.void) -> None:
        self.stats["market_trades"] += 1
        self._last_trade = self._px(int(ev["price"]))
        message = {
            **self._head("last_trade_price"),
            "fee_rate_bps": str(round(self.fee_rate * 10_000)),
            "price": self._last_trade,
            "side": "SELL" if ev["side"] == BID else "BUY",  # the taker's: a trade on the bid was a sell
            "size": self._qty(int(ev["size"])),
            "timestamp": str(self._wall_ms(int(ev["exch_ts"]))),
        }
        self._publish("market", message)

    def _book_ticker(self, t_ms: int) -> dict[str, Any]:
        bb, ba = self._touch
        bid = self._px(bb) if bb is not None else "0"
        ask = self._px(ba) if ba is not None else "1"
        spread = self._px(ba - bb) if bb is not None and ba is not None else "1"
        return {
            **self._head("best_bid_ask"),
            "best_bid": bid,
            "best_ask": ask,
            "spread": spread,
            "timestamp": str(t_ms),
        }

    def change_tick(self, new_tick: float) -> None:
        """The market's tick changes (a multiple of the data's): announced on the market channel."""
        tick = Decimal(repr(new_tick))
        steps = tick / Decimal(repr(self.instrument.tick_size))
        if steps != steps.to_integral_value() or steps < 1:
            raise ConfigError(f"tick {new_tick}: a multiple of the data's tick {self.instrument.tick_size}")
        old, self.tick = self.tick, tick
        now = self.server_ms()
        message = {**self._head("tick_size_change"), "old_tick_size": str(old), "new_tick_size": str(tick)}
        self._publish("market", {**message, "timestamp": str(now)})

    def _publish(self, kind: str, message: dict[str, Any]) -> None:
        """A YES market-channel message to the connections subscribed to the YES token, its mirror to
        those subscribed to the NO token (``best_bid_ask`` only to those with the custom feature)."""
        channel = "custom" if message.get("event_type") == "best_bid_ask" else "market"
        for token in self.tokens:
            conns = [c for c in self._conns if not c.user and (channel, token) in c.subs]
            if conns:
                text = json.dumps(self._as_token(token, message), separators=(",", ":"))
                for conn in conns:
                    conn.queue.put_nowait((text, False))

    def _publish_user(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, separators=(",", ":"))
        for conn in self._conns:
            if (
                conn.user
                and ("auth", "ok") in conn.subs
                and (("all", "") in conn.subs or ("market", self.market) in conn.subs)
            ):
                conn.queue.put_nowait((text, False))

    # -- the simulator's answers -------------------------------------------------------------------------
    def on_responses(self, responses: list[tuple[Response, int]]) -> None:
        """Each answer about one of our orders as its new state, an ``order`` and a ``trade`` event."""
        for r, _seq in responses:
            order = self.orders.get(r.order_id)
            if order is None:
                continue
            if r.kind == "accepted":
                self._publish_user(self._order_event(order, "PLACEMENT", r.exch_ts))
            elif r.kind in ("rejected", "cancelled"):
                self._end(order, "CANCELED")
                self._publish_user(self._order_event(order, "CANCELLATION", r.exch_ts))
            elif r.kind == "fill":
                self._fill(order, r)

    def _end(self, order: PmOrder, status: str) -> None:
        if order.open:
            self.open_orders[order.side] -= 1
        order.status = status
        order.done.set()

    def _fill(self, order: PmOrder, r: Response) -> None:  # type: ignore[override]
        """A fill on the order's own token (a NO order's at 1 - p): the trade reported, the balances moved."""
        taker = not r.maker
        side, px = self._own_terms(order)[0], self._own_price(order.token, r.price)
        fee = taker_fee(self.instrument.qty(r.qty), self.instrument.px(px), self.fee_rate, self.fee_exponent)
        fee = fee if taker else 0.0
        self.fees += fee
        self._settle(order.token, side, self._shares(r.qty), self._usdc(px, r.qty), Decimal(repr(fee)))
        ts_ms = self._wall_ms(r.exch_ts)
        trade_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"polymarket-emulator/{self.symbol}/{len(self.trades) + 1}")
        )
        outcome = self.outcomes[order.token]
        ours = {
            "order_id": order.hash,
            "owner": self.api_key,
            "maker_address": order.maker,
            "matched_amount": self._qty(r.qty),
            "price": self._px(px),
            "fee_rate_bps": "0",
            "asset_id": order.token,
            "outcome": outcome,
            "side": SIDE_NAMES[side],
        }
        counterparty = {
            **ours,
            "order_id": "0x" + hashlib.sha256(trade_id.encode()).hexdigest(),
            "owner": MARKET_OWNER,
            "maker_address": MARKET_ADDRESS,
            "side": SIDE_NAMES[-side],
        }
        trade = {
            "id": trade_id,
            "taker_order_id": order.hash if taker else counterparty["order_id"],
            "market": self.market,
            "asset_id": order.token,
            "side": SIDE_NAMES[side if taker else -side],  # the taker's
            "size": self._qty(r.qty),
            "fee_rate_bps": str(round(self.fee_rate * 10_000)),
            "price": self._px(px),
            "status": "MATCHED",
            "match_time": str(ts_ms // 1000),
            "last_update": str(ts_ms // 1000),
            "outcome": outcome,
            "bucket_index": 0,
            "owner": self.api_key if taker else MARKET_OWNER,
            "maker_address": order.maker if taker else MARKET_ADDRESS,
            "transaction_hash": "0x" + hashlib.sha256(f"tx/{trade_id}".encode()).hexdigest(),
            "maker_orders": [counterparty] if taker else [ours],
            "trader_side": "TAKER" if taker else "MAKER",
        }
        self.trades.append(trade)
        order.filled += r.qty
        order.trades.append(trade_id)
        event = {
            "event_type": "trade",
            **trade,
            "timestamp": str(ts_ms),
            "trade_owner": self.api_key,
            "type": "TRADE",
        }
        self._publish_user(event)
        if r.left <= 0:
            self._end(order, "MATCHED")
        self._publish_user(self._order_event(order, "UPDATE", r.exch_ts))

    def _settle(self, token: str, side: int, shares: Decimal, cost: Decimal, fee: Decimal) -> None:
        """A fill's balances: a BUY gets the shares and pays their cost and the fee, a SELL the reverse."""
        sign = 1 if side == BID else -1
        self.balances[token] += sign * shares
        self.balances[COLLATERAL] -= sign * cost + fee

    def _order_event(self, order: PmOrder, kind: str, exch_ts: int) -> dict[str, Any]:
        message = {"event_type": "order", **self._order_json(order), "order_owner": self.api_key}
        return {**message, "timestamp": str(self._wall_ms(exch_ts)), "type": kind}

    # -- websockets --------------------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self._serve(Connection(ws, combined=False, user=request.path == "/ws/user"))
        return ws

    async def _serve(self, conn: Connection) -> None:
        self._conns.add(conn)
        pump = asyncio.create_task(self._pump(conn))
        try:
            async for msg in conn.ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                for reply in self._frame(conn, msg.data):
                    conn.queue.put_nowait((reply, True))
                if conn.user and ("auth", "refused") in conn.subs:
                    await asyncio.sleep(0.05)  # the refusal goes out first
                    await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Unauthorized")
        finally:
            self._conns.discard(conn)
            pump.cancel()

    def _frame(self, conn: Connection, text: str) -> list[str]:
        """What a client frame is answered with: PONG, the books subscribed to, an error."""
        if text == "PING":
            return ["PONG"]
        try:
            frame = json.loads(text)
        except ValueError:
            return [json.dumps({"error": "invalid message"})]
        if not isinstance(frame, dict):
            return [json.dumps({"error": "invalid message"})]
        if conn.user:
            return self._user_frame(conn, frame)
        assets = [str(a) for a in frame.get("assets_ids") or frame.get("asset_ids") or ()]
        if frame.get("operation") == "unsubscribe":
            for asset in assets:
                conn.subs.pop(("market", asset), None)
                conn.subs.pop(("custom", asset), None)
            return []
        new = [a for a in assets if a in self.tokens and ("market", a) not in conn.subs]
        for asset in new:
            conn.subs[("market", asset)] = asset
            if frame.get("custom_feature_enabled"):
                conn.subs[("custom", asset)] = asset
        if not new:
            return []
        now = self.server_ms()
        replies = [json.dumps([self._book_of(a, now) for a in new])]
        if frame.get("custom_feature_enabled"):  # the top of book now, as the custom feature streams it
            replies += [json.dumps(self._as_token(a, self._book_ticker(now))) for a in new]
        return replies

    def _user_frame(self, conn: Connection, frame: dict[str, Any]) -> list[str]:
        if "auth" in frame:
            auth = frame.get("auth") or {}
            good = (
                auth.get("apiKey") == self.api_key
                and auth.get("secret") == self.secret_text
                and auth.get("passphrase") == self.passphrase
            )
            if not good:
                self.stats["unauthorized"] += 1
                conn.subs[("auth", "refused")] = "1"
                return [json.dumps({"error": UNAUTHORIZED})]
            conn.subs[("auth", "ok")] = "1"
        markets = [str(m).lower() for m in frame.get("markets") or ()]
        if frame.get("operation") == "unsubscribe":
            for market in markets:
                conn.subs.pop(("market", market), None)
            return []
        if not markets and "auth" in frame:
            conn.subs[("all", "")] = "1"
        for market in markets:
            conn.subs[("market", market)] = market
        return []

    async def _stats(self, request: web.Request) -> web.Response:
        stats = {
            **self.stats,
            "faults": self.fault_counts,
            "orders": len(self.by_hash),
            "trades": len(self.trades),
            "fees": round(self.fees, 6),
            "balances": {asset: float(amount) for asset, amount in self.balances.items()},
            "connections": len(self._conns),
            "open_orders": {"bid": self.open_orders[BID], "ask": self.open_orders[ASK]},
            "peak_open_orders": {"bid": self.peak_open_orders[BID], "ask": self.peak_open_orders[ASK]},
        }
        return web.json_response(stats)
