"""Polymarket through its official Python SDK (``polymarket-client``), shaped like the part of the
ccxt / ccxt.pro unified API that :class:`~quotewise.live.venues.ccxt_venue.CcxtVenue` and
:class:`~quotewise.live.venues.feeds.CcxtBookFeed` use, so the venue's safety rules (client order ids,
reconciliation, rate-limit backoff) apply to Polymarket unchanged.

What is special about Polymarket, and how it is bridged:

- **A market is one outcome token.** ``symbol`` and ``id`` are the token id; the markets listed are
  the tokens given at construction (``tokens``) or added with :meth:`PolymarketExchange.add_market`.
- **No selling what is not held: inventory is netted over the two tokens.** Polymarket refuses a SELL
  of more shares than the account holds (less what its open SELLs offer), and one YES share plus one
  NO share is 1 USDC, so a listed token's complement (the other token of its binary market, from the
  market metadata) stands in: a ``sell`` of q at p is a SELL of the token when our shares of it, less
  our open SELLs, cover q, else a BUY of the complement at 1 - p; a ``buy`` is a SELL of the
  complement at 1 - p when its shares cover q, else a BUY of the token. The shares are read from the
  venue at ``load_markets`` (and again after a refusal), then kept from our fills. What the venue says
  about the complement (orders, trades, on REST and the user channel, subscribed by the condition: both
  tokens) is reported as the listed token's: the opposite side at 1 - p, the same order and trade ids,
  the client order id from the state file (so a restart knows its complement orders), fees as charged.
- **Orders have no client order id.** An order's id is the EIP-712 hash of the signed order, known
  before it is sent (:func:`order_hash`). The map client order id -> order hash is written to
  ``state_path`` (flushed and synced) before each order is posted and again when it is
  acknowledged, so a place that timed out is looked up by its client id, and a process restarted
  after ``kill -9`` knows its own open orders and fills.
- **Fees.** Takers pay ``C * rate * (p * (1 - p)) ** exponent`` (C shares at price p, rounded down
  to 5 decimals, in USDC), makers nothing; rate and exponent are the market's (``/clob-markets``).
  A trade names the rate it was charged at (``fee_rate_bps``); the cost is computed here.
- **Streams.** The SDK's market and user channels reconnect by themselves and say nothing; a venue
  must know (events were missed), so a replaced connection ends the watch with a
  :class:`ccxt.NetworkError` and the next watch subscribes again (a fresh ``book`` first).
- **Errors** become ccxt's: 429 :class:`ccxt.RateLimitExceeded` (``Retry-After`` in
  ``last_response_headers``), 401/403 :class:`ccxt.AuthenticationError`, 5xx
  :class:`ccxt.ExchangeNotAvailable`, transport failures :class:`ccxt.NetworkError` /
  :class:`ccxt.RequestTimeout`, a post-only order that would cross
  :class:`ccxt.OrderImmediatelyFillable` (an :class:`ccxt.InvalidOrder`), an unknown order
  :class:`ccxt.OrderNotFound`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import ccxt
import httpx
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from polymarket import AsyncSecureClient
from polymarket._internal.actions.orders.allowance import resolve_order_balance_allowance_target
from polymarket.environments import PRODUCTION, Environment
from polymarket.errors import (
    RateLimitError,
    RequestRejectedError,
    TransportError,
    UnexpectedResponseError,
    UserInputError,
)
from polymarket.models import ApiKeyCreds
from polymarket.streams import MarketSpec, UserSpec

from quotewise.data.polymarket import POLYMARKET_FEES
from quotewise.errors import ConfigError
from quotewise.model.fees import ROUNDING, fee_of

logger = logging.getLogger(__name__)

EXCHANGE_ID = "polymarket"
COLLATERAL = "USDC"
SIZE_STEP = Decimal("0.01")  # the SDK rounds order sizes to 2 decimals at every tick size
DEFAULT_TIMEOUT_MS = 10_000
WATCHDOG_S = 0.1  # how often a stream's connection is looked at (a replaced one is a drop)
KEEP_IDS = 10_000  # client order ids kept in the state file (the oldest are forgotten)
ORDER_TYPE = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,"
    "bytes32 builder)"
)
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
EXCHANGE_NAME = "Polymarket CTF Exchange"
ORDER_STATUS = {"LIVE": "open", "DELAYED": "open", "MATCHED": "closed", "UNMATCHED": "rejected"}
FLIP = {"buy": "sell", "sell": "buy"}
UNITS = Decimal(1_000_000)  # balances are in 6-decimal base units
NOT_ENOUGH = "not enough balance"  # Polymarket's refusal of an order the account cannot fund
T = TypeVar("T")


# -- the protocol's own numbers ----------------------------------------------------------------------
def order_hash(order: dict[str, Any], chain_id: int, exchange: str, version: str = "2") -> str:
    """The id Polymarket gives an order: the EIP-712 hash of its ``order`` body (as posted) under the
    exchange contract's domain."""
    struct = keccak(
        abi_encode(
            [
                "bytes32",
                "uint256",
                "address",
                "address",
                "uint256",
                "uint256",
                "uint256",
                "uint8",
                "uint8",
                "uint256",
                "bytes32",
                "bytes32",
            ],
            [
                keccak(ORDER_TYPE.encode()),
                int(order["salt"]),
                order["maker"],
                order["signer"],
                int(order["tokenId"]),
                int(order["makerAmount"]),
                int(order["takerAmount"]),
                0 if str(order["side"]).upper() == "BUY" else 1,
                int(order["signatureType"]),
                int(order["timestamp"]),
                bytes.fromhex(str(order["metadata"]).removeprefix("0x")),
                bytes.fromhex(str(order["builder"]).removeprefix("0x")),
            ],
        )
    )
    domain = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(DOMAIN_TYPE.encode()),
                keccak(EXCHANGE_NAME.encode()),
                keccak(version.encode()),
                chain_id,
                exchange,
            ],
        )
    )
    return "0x" + keccak(b"\x19\x01" + domain + struct).hex()


def order_domain(config: Any, token: str, neg_risk: bool = False) -> tuple[int, str, str]:
    """Chain id, verifying contract and protocol version an order on ``token`` is signed for, under
    an SDK environment's configuration."""
    from polymarket._internal.actions.orders.context import resolve_order_exchange_address
    from polymarket._internal.protocol import is_v2_position_id

    exchange = resolve_order_exchange_address(config, asset_id=token, neg_risk=neg_risk)
    return config.chain_id, exchange, "3" if is_v2_position_id(token) else "2"


def taker_fee(shares: float, price: float, rate: float, exponent: float) -> float:
    """Polymarket's platform fee on a taker fill, in USDC (makers pay none)."""
    if rate <= 0 or not 0 < price < 1:
        return 0.0
    step, rounding = POLYMARKET_FEES["fee_step"], ROUNDING[POLYMARKET_FEES["fee_rounding"]]
    return float(fee_of(rate, 0.0, shares, True, price, exponent, step, rounding))


def environment_at(host: str | None) -> Environment:
    """Production, or every host of it (REST, websockets, relayer, RPC, gamma, data) moved to ``host``
    (``http://127.0.0.1:PORT``: a local emulator), the contracts and chain kept."""
    if host is None:
        return PRODUCTION
    from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment

    origin = host.rstrip("/")
    ws = "ws" + origin.removeprefix("http")
    hosts = {f.name: origin for f in dataclasses.fields(PRODUCTION_CONFIG) if f.name.endswith("_url")}
    hosts.update(
        clob_market_ws_url=f"{ws}/ws/market",
        clob_user_ws_url=f"{ws}/ws/user",
        rpc_url=f"{origin}/rpc",
        rtds_ws_url=f"{ws}/ws/rtds",
        sports_ws_url=f"{ws}/ws/sports",
        rfq_quoter_ws_url=f"{ws}/ws/rfq",
        perps_ws_url=f"{ws}/ws/perps",
        realtime_ws_url=f"{ws}/ws/realtime",
    )
    return create_environment(name="emulator", config=dataclasses.replace(PRODUCTION_CONFIG, **hosts))


def _ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else int(time.time() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(value: Decimal | float | None) -> float:
    return float(value) if value is not None else 0.0


# -- errors -------------------------------------------------------------------------------------------
def ccxt_error(exc: Exception) -> Exception:
    """The ccxt exception an SDK failure stands for (the SDK's own is kept as the cause)."""
    if isinstance(exc, RateLimitError):
        return ccxt.RateLimitExceeded(f"{EXCHANGE_ID} 429: {exc}")
    if isinstance(exc, RequestRejectedError):
        text = f"{EXCHANGE_ID} {exc.status}: {exc}"
        message = str(exc).lower()
        if exc.status in (401, 403):
            return ccxt.AuthenticationError(text)
        if exc.status == 429:
            return ccxt.RateLimitExceeded(text)
        if exc.status >= 500 or exc.status == 425:
            return ccxt.ExchangeNotAvailable(text)
        if "crosses book" in message or "post-only" in message:
            return ccxt.OrderImmediatelyFillable(text)
        if NOT_ENOUGH in message:
            return ccxt.InsufficientFunds(text)
        if exc.status == 404 or "not found" in message:
            return ccxt.OrderNotFound(text)
        return ccxt.InvalidOrder(text) if "order" in message else ccxt.BadRequest(text)
    if isinstance(exc, TransportError):
        timed_out = isinstance(exc.__cause__, httpx.TimeoutException)
        return (ccxt.RequestTimeout if timed_out else ccxt.NetworkError)(f"{EXCHANGE_ID}: {exc}")
    if isinstance(exc, UserInputError):
        return ccxt.InvalidOrder(f"{EXCHANGE_ID}: {exc}")
    if isinstance(exc, UnexpectedResponseError):
        return ccxt.BadResponse(f"{EXCHANGE_ID}: {exc}")
    return exc


# -- the client order ids -----------------------------------------------------------------------------
class OrderIds:
    """Client order id <-> order hash, kept in a JSON file that survives the process."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.by_client: dict[str, str] = {}
        if path is not None and path.exists():
            try:
                self.by_client = dict(json.loads(path.read_text())["orders"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}: not a Polymarket order-id file ({exc})") from exc
        self.by_hash = {h: c for c, h in self.by_client.items()}

    def remember(self, client_id: str, order_id: str) -> None:
        if self.by_client.get(client_id) == order_id:
            return
        self.by_client[client_id] = order_id
        self.by_hash[order_id] = client_id
        while len(self.by_client) > KEEP_IDS:
            old = next(iter(self.by_client))
            self.by_hash.pop(self.by_client.pop(old), None)
        self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(self.path.name + ".tmp")
        with temp.open("w") as fh:
            json.dump({"orders": self.by_client}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, self.path)


# -- the streams --------------------------------------------------------------------------------------
class _Channel:
    """One SDK subscription (the market or the user channel) read into queues by kind; a replaced
    connection ends it with a NetworkError in every queue, and the next read subscribes again."""

    def __init__(
        self,
        name: str,
        subscribe: Callable[[], Awaitable[Any]],
        connection: Callable[[], Any],
        route: Callable[[Any], list[tuple[str, Any]]],
    ) -> None:
        self.name = name
        self._subscribe, self._connection, self._route = subscribe, connection, route
        self.queues: dict[str, asyncio.Queue[Any]] = {}
        self._handle: Any = None
        self._tasks: list[asyncio.Task] = []
        self._errors: dict[str, Exception] = {}
        self._opening = asyncio.Lock()
        self.drops = 0

    async def next(self, kind: str) -> list[Any]:
        """The items of ``kind`` that arrived since the last call (waiting for one); a drop is raised
        once the items before it are handed out."""
        queue = self.queues.setdefault(kind, asyncio.Queue())
        error = self._errors.pop(kind, None)
        if error is not None:
            raise error
        await self._open()
        items: list[Any] = []
        item = await queue.get()
        while True:
            if isinstance(item, Exception):
                if not items:
                    raise item
                self._errors[kind] = item
                return items
            items.append(item)
            if queue.empty():
                return items
            item = queue.get_nowait()

    async def _open(self) -> None:
        async with self._opening:
            if self._handle is not None:
                return
            try:
                self._handle = await self._subscribe()
            except Exception as exc:
                raise ccxt_error(exc) from exc
            socket = self._connection()
            self._tasks = [
                asyncio.create_task(self._pump(self._handle)),
                asyncio.create_task(self._watch(self._handle, socket)),
            ]

    async def _pump(self, handle: Any) -> None:
        try:
            async for event in handle:
                for kind, item in self._route(event):
                    queue = self.queues.get(kind)
                    if queue is not None:
                        queue.put_nowait(item)
            reason = "stream ended"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = repr(exc)
        await self._drop(handle, reason)

    async def _watch(self, handle: Any, socket: Any) -> None:
        """A connection the SDK replaced (or lost) is a drop: events may have been missed."""
        while self._connection() is socket:
            await asyncio.sleep(WATCHDOG_S)
        await self._drop(handle, "connection lost")

    async def _drop(self, handle: Any, reason: str) -> None:
        if self._handle is not handle:
            return
        self._handle = None
        self.drops += 1
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._tasks = []
        for queue in self.queues.values():
            queue.put_nowait(ccxt.NetworkError(f"{EXCHANGE_ID} {self.name} channel: {reason}"))
        with contextlib.suppress(Exception):
            await handle.close()

    async def close(self) -> None:
        handle, self._handle = self._handle, None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if handle is not None:
            with contextlib.suppress(Exception):
                await handle.close()


def _socket_of(manager: Any) -> Any:
    """The SDK stream manager's live websocket (None while it has none)."""
    return getattr(getattr(manager, "_connection", None), "_socket", None)


@dataclasses.dataclass
class _Book:
    """One token's book as the market channel builds it: price -> size per side."""

    bids: dict[Decimal, Decimal] = dataclasses.field(default_factory=dict)
    asks: dict[Decimal, Decimal] = dataclasses.field(default_factory=dict)
    timestamp: int = 0
    known: bool = False

    def snapshot(self, levels_bids: Sequence[Any], levels_asks: Sequence[Any], ts: int) -> None:
        self.bids = {lv.price: lv.size for lv in levels_bids if lv.size > 0}
        self.asks = {lv.price: lv.size for lv in levels_asks if lv.size > 0}
        self.timestamp, self.known = ts, True

    def change(self, side: str, price: Decimal, size: Decimal, ts: int) -> None:
        levels = self.bids if side == "BUY" else self.asks
        if size > 0:
            levels[price] = size
        else:
            levels.pop(price, None)
        self.timestamp = ts

    def ccxt(self, symbol: str) -> dict[str, Any]:
        bids = [[float(p), float(q)] for p, q in sorted(self.bids.items(), reverse=True)]
        asks = [[float(p), float(q)] for p, q in sorted(self.asks.items())]
        dt = _iso(self.timestamp) if self.timestamp else None
        return {
            "symbol": symbol,
            "bids": bids,
            "asks": asks,
            "timestamp": self.timestamp,
            "datetime": dt,
            "nonce": None,
        }


@dataclasses.dataclass
class _Sell:
    """An open SELL of ours: the shares of its token it holds back."""

    token: str
    size: Decimal
    traded: Decimal = Decimal(0)  # its fills counted here
    matched: Decimal = Decimal(0)  # its fills as the venue last reported them
    since: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def left(self) -> Decimal:
        return self.size - max(self.traded, self.matched)


# -- the exchange -------------------------------------------------------------------------------------
class PolymarketExchange:
    """The ccxt-shaped Polymarket; see the module docstring. ``host`` moves every SDK host to one
    origin (a local emulator); None is production. ``tokens`` are the markets ``load_markets`` lists."""

    id = EXCHANGE_ID
    precisionMode = ccxt.TICK_SIZE

    def __init__(
        self,
        private_key: str,
        api_key: str | None,
        secret: str | None,
        passphrase: str | None,
        host: str | None = None,
        state_path: Path | None = None,
        *,
        tokens: Sequence[str] = (),
    ) -> None:
        if not private_key:
            raise ConfigError("Polymarket needs the wallet's private key to sign orders")
        self.private_key = private_key
        given = (api_key, secret, passphrase)
        if any(given) and not all(given):
            raise ConfigError("Polymarket API credentials are a key, a secret and a passphrase: all three")
        self.credentials = (
            ApiKeyCreds(key=api_key, secret=secret, passphrase=passphrase) if all(given) else None
        )
        self.apiKey = api_key or ""
        self.host = host
        self.environment = environment_at(host)
        config = self.environment._config
        self.urls: dict[str, Any] = {
            "api": {
                "clob": config.clob_url,
                "market_ws": config.clob_market_ws_url,
                "user_ws": config.clob_user_ws_url,
            }
        }
        self.has: dict[str, bool] = {
            "fetchTime": False,  # /time is in whole seconds: too coarse to measure a clock offset
            "cancelAllOrdersAfter": False,
            "watchOrderBook": True,
            "watchTrades": True,
            "watchOrders": True,
            "watchMyTrades": True,
            "fetchMyTrades": True,
            "fetchOpenOrders": True,
            "fetchOrder": True,
            "createPostOnlyOrder": True,
        }
        self.timeout = DEFAULT_TIMEOUT_MS  # ms, every REST call (a place that takes longer is looked up)
        self.ids = OrderIds(state_path)
        self.markets: dict[str, dict[str, Any]] = {}
        self.last_response_headers: dict[str, str] = {}
        self._tokens = list(tokens)
        self._client: AsyncSecureClient | None = None
        self._creating = asyncio.Lock()
        self._books: dict[str, _Book] = {}
        self._market_channel: _Channel | None = None
        self._user_channel: _Channel | None = None
        self._complements: dict[str, str] = {}  # listed token -> the other token of its market
        self._listed_of: dict[str, str] = {}  # that other token -> the listed one
        self._held: dict[str, Decimal] = {}  # our shares of each (from the venue, then our fills)
        self._counted: set[str] = set()  # the trades (our parts) already in _held
        self._sells: dict[str, _Sell] = {}  # order id (or a place in flight) -> an open SELL of ours
        self._pending = 0

    # -- the SDK client ---------------------------------------------------------------------------------
    async def client(self) -> AsyncSecureClient:
        """The SDK client, created (credentials checked, derived when missing or refused) once."""
        async with self._creating:
            if self._client is None:
                self._client = await self._call(
                    AsyncSecureClient.create(
                        private_key=self.private_key,
                        environment=self.environment,
                        credentials=self.credentials,
                    )
                )
                self.apiKey = self._client.credentials.key
        return self._client

    async def _call(self, call: Awaitable[T]) -> T:
        """An SDK call with the timeout, its failure as ccxt's."""
        try:
            return await asyncio.wait_for(call, self.timeout / 1000)
        except TimeoutError as exc:
            raise ccxt.RequestTimeout(f"{EXCHANGE_ID}: no answer within {self.timeout} ms") from exc
        except RateLimitError as exc:
            self.last_response_headers = {"Retry-After": f"{exc.retry_after or 1:g}"}
            raise ccxt_error(exc) from exc
        except RequestRejectedError as exc:
            if exc.status == 429:
                self.last_response_headers = {"Retry-After": f"{exc.retry_after or 1:g}"}
            raise ccxt_error(exc) from exc
        except (TransportError, UserInputError, UnexpectedResponseError) as exc:
            raise ccxt_error(exc) from exc

    async def _pages(self, paginator: Any) -> list[Any]:
        items: list[Any] = []

        async def collect() -> None:
            async for item in paginator.iter_items():
                items.append(item)

        await self._call(collect())
        return items

    # -- markets ----------------------------------------------------------------------------------------
    async def load_markets(self, reload: bool = False, params: dict | None = None) -> dict[str, dict]:
        for token in self._tokens:
            if reload or token not in self.markets:
                await self.add_market(token)
        if self._complements:
            await self._sync_holdings()
        return self.markets

    async def add_market(self, token: str) -> dict[str, Any]:
        """List one outcome token as a market: tick, minimum size, fees, neg-risk."""
        client = await self.client()
        book = await self._call(client.get_order_book(asset_id=token))
        rate, exponent, others = await self._fee_info(client, token)
        if len(others) == 1 and others[0] not in self._tokens:  # a binary market: netted (see above)
            self._complements[token] = others[0]
            self._listed_of[others[0]] = token
        tick = float(book.tick_size)
        market = {
            "id": token,
            "symbol": token,
            "base": token,
            "quote": COLLATERAL,
            "settle": COLLATERAL,
            "baseId": token,
            "quoteId": COLLATERAL,
            "type": "option",
            "spot": False,
            "option": True,
            "contract": False,
            "linear": None,
            "inverse": None,
            "active": True,
            "contractSize": None,
            "maker": 0.0,
            "taker": rate,  # the rate of the fee curve, not a share of notional (see taker_fee)
            "precision": {"price": tick, "amount": float(SIZE_STEP)},
            "limits": {
                "amount": {"min": float(book.min_order_size), "max": None},
                "price": {"min": tick, "max": round(1 - tick, 12)},
                "cost": {"min": None, "max": None},
            },
            "quotewise": {  # the instrument's fields ccxt's market has none for
                "min_price": tick,
                "max_price": round(1 - tick, 12),
                "fee_curve": "probability",
                "fee_exponent": exponent if exponent > 0 else 1.0,
                "size_unit": "shares",
            },
            "info": {
                "condition_id": book.condition_id,
                "neg_risk": book.neg_risk,
                "fee_rate": rate,
                "fee_exponent": exponent,
                "min_order_size": str(book.min_order_size),
                "tick_size": str(book.tick_size),
                "complement": self._complements.get(token),
            },
        }
        self.markets[token] = market
        if token not in self._tokens:
            self._tokens.append(token)
        return market

    async def _fee_info(self, client: AsyncSecureClient, token: str) -> tuple[float, float, list[str]]:
        """The market's fee curve and its other tokens, from the SDK's own order metadata (what it
        signs orders with)."""
        ctx = client._ctx
        info = await self._call(ctx.order_metadata.resolve_market(ctx, token_id=token))
        others = sorted(str(t) for t in info.token_ids if str(t) != token)
        return float(info.fee_info.rate), float(info.fee_info.exponent), others

    # -- netting ----------------------------------------------------------------------------------------
    async def _sync_holdings(self) -> None:
        """Our shares of each netted token, from the venue; the trades of ours listed after it are taken
        as counted in them (the fills they miss leave us holding less than we think: a SELL is refused
        and this runs again)."""
        client = await self.client()
        held: dict[str, Decimal] = {}
        for token in [*self._complements, *self._complements.values()]:
            kind = resolve_order_balance_allowance_target(side="SELL", asset_id=token)[0]
            answer = await self._call(client.get_balance_allowance(asset_type=kind, asset_id=token))
            held[token] = Decimal(answer.balance) / UNITS
        counted = {t["id"] for token in self._complements for t in await self._listed_trades(token)}
        self._held, self._counted = held, counted

    def _free(self, token: str) -> Decimal:
        """The shares of ``token`` a new SELL may offer: held, less what our open SELLs offer."""
        offered = sum((s.left for s in self._sells.values() if s.token == token), Decimal(0))
        return self._held.get(token, Decimal(0)) - offered

    def _route(self, symbol: str, side: str, amount: Decimal, price: Decimal) -> tuple[str, str, Decimal]:
        """The token, side and price an order on a listed token goes out as: a sell of shares we hold,
        else a buy of the other token at 1 - p (its shares and ours make 1 USDC); a buy is a sell of
        the other token's shares when we hold them."""
        other = self._complements.get(symbol)
        if other is None:
            return symbol, side.upper(), price
        if side == "sell":
            return (symbol, "SELL", price) if self._free(symbol) >= amount else (other, "BUY", 1 - price)
        return (other, "SELL", 1 - price) if self._free(other) >= amount else (symbol, "BUY", price)

    def _listed(self, token: str, side: str, price: Decimal | float) -> tuple[str, str, float]:
        """An order or trade on a token as the listed market's: on the other token of a netted market,
        the opposite side at 1 - p."""
        listed = self._listed_of.get(token)
        if listed is None:
            return token, side.lower(), float(price)
        return listed, FLIP[side.lower()], float(1 - Decimal(str(price)))

    def _scope(self, symbol: str | None) -> dict[str, str]:
        """The listing filter for a market: a netted one's condition (both tokens), else the token."""
        if symbol is None:
            return {}
        if symbol in self._complements:
            return {"market": str(self.markets[symbol]["info"]["condition_id"])}
        return {"asset_id": symbol}

    def _track(self, order_id: str, token: str, side: str, state: str, size: Any, matched: Any) -> None:
        """An open SELL of ours as the venue reports it (ended: forgotten)."""
        if side.upper() != "SELL" or state != "open":
            self._sells.pop(order_id, None)
            return
        sell = self._sells.setdefault(order_id, _Sell(token, Decimal(str(size))))
        sell.matched = max(sell.matched, Decimal(str(matched)))

    def _count(self, trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Our fills into the holdings, each once (a netted token's only)."""
        for t in trades:
            token = t["info"]["asset_id"]
            if token not in self._held or t["id"] in self._counted:
                continue
            self._counted.add(t["id"])
            side = t["side"] if token == t["symbol"] else FLIP[t["side"]]
            amount = Decimal(str(t["amount"]))
            self._held[token] += amount if side == "buy" else -amount
            sell = self._sells.get(t["order"])
            if sell is not None:
                sell.traded += amount
        return trades

    def market(self, symbol: str) -> dict[str, Any]:
        if symbol not in self.markets:
            raise ccxt.BadSymbol(f"{EXCHANGE_ID} has no market {symbol!r} loaded")
        return self.markets[symbol]

    # -- time -------------------------------------------------------------------------------------------
    async def fetch_time(self, params: dict | None = None) -> int:
        """The CLOB's clock (``/time``, whole seconds) in ms."""
        client = await self.client()
        seconds = await self._call(client._ctx.clob.get_json("/time"))
        return int(seconds) * 1000

    async def load_time_difference(self, params: dict | None = None) -> int:
        return 0  # orders are signed with the SDK's own timestamps; nothing to adjust

    # -- market data ------------------------------------------------------------------------------------
    async def fetch_order_book(
        self, symbol: str, limit: int | None = None, params: dict | None = None
    ) -> dict:
        client = await self.client()
        book = await self._call(client.get_order_book(asset_id=symbol))
        bids = [[float(lv.price), float(lv.size)] for lv in reversed(book.bids)]  # best first
        asks = [[float(lv.price), float(lv.size)] for lv in reversed(book.asks)]
        ts = _ms(book.timestamp)
        if limit:
            bids, asks = bids[:limit], asks[:limit]
        return {
            "symbol": symbol,
            "bids": bids,
            "asks": asks,
            "timestamp": ts,
            "datetime": _iso(ts),
            "nonce": None,
        }

    async def watch_order_book(
        self, symbol: str, limit: int | None = None, params: dict | None = None
    ) -> dict:
        channel = await self._market()
        while True:
            await channel.next("book")
            book = self._books.get(symbol)
            if book is not None and book.known:
                return book.ccxt(symbol)

    async def watch_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None, params: dict | None = None
    ) -> list:
        channel = await self._market()
        while True:
            trades = [t for t in await channel.next("trades") if t["symbol"] == symbol]
            if trades:
                return trades

    async def _market(self) -> _Channel:
        if self._market_channel is None:
            client = await self.client()
            tokens = list(self._tokens)
            self._market_channel = _Channel(
                "market",
                lambda: client.subscribe(MarketSpec(asset_ids=tokens)),
                lambda: _socket_of(client._market_manager),
                self._market_event,
            )
        return self._market_channel

    def _market_event(self, event: Any) -> list[tuple[str, Any]]:
        p = event.payload
        ts = _ms(getattr(p, "timestamp", None))
        if event.type == "book":
            self._books.setdefault(p.asset_id, _Book()).snapshot(p.bids, p.asks, ts)
            return [("book", p.asset_id)]
        if event.type == "price_change":
            changed = []
            for c in p.price_changes:
                book = self._books.get(c.asset_id)
                if book is not None and book.known:  # an update before the token's first book: unknown book
                    book.change(c.side, c.price, c.size, ts)
                    changed.append(("book", c.asset_id))
            return changed
        if event.type == "last_trade_price":
            amount = _num(p.size)
            trade = {
                "id": None,
                "symbol": p.asset_id,
                "timestamp": ts,
                "datetime": _iso(ts),
                "side": p.side.lower(),  # the taker's: a BUY lifted the ask
                "price": float(p.price),
                "amount": amount,
                "cost": float(p.price) * amount,
                "info": p.model_dump(mode="json"),
            }
            return [("trades", trade)]
        return []

    # -- our orders -------------------------------------------------------------------------------------
    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict | None = None,
    ) -> dict[str, Any]:
        params = dict(params or {})
        if type != "limit" or price is None:
            raise ccxt.InvalidOrder(f"{EXCHANGE_ID}: limit orders only (got {type})")
        client_id = params.get("clientOrderId")
        post_only = bool(params.get("postOnly")) or params.get("timeInForce") == "PO"
        size = Decimal(repr(amount))
        token, token_side, token_price = self._route(symbol, side.lower(), size, Decimal(repr(price)))
        self._pending += 1
        key = f"placing-{self._pending}"  # what it offers is held back from the moment it is decided
        if token_side == "SELL":
            self._sells[key] = _Sell(token, size, since=float("inf"))  # no listing drops it
        try:
            answer = await self._post(token, token_side, token_price, size, post_only, client_id)
        except ccxt.InsufficientFunds:
            with contextlib.suppress(ccxt.BaseError):
                await self._sync_holdings()  # we held less than we thought
            raise
        finally:
            self._sells.pop(key, None)
        if token_side == "SELL":
            self._sells.setdefault(answer.order_id, _Sell(token, size))
        filled = 0.0 if answer.status == "live" else None
        order = self._order(
            answer.order_id,
            client_id,
            "open",
            side.lower(),
            float(price),
            float(amount),
            filled,
            int(time.time() * 1000),
            answer.model_dump(mode="json"),
        )
        order["symbol"] = symbol
        order["info"]["asset_id"] = token
        return order

    async def _post(
        self, token: str, side: str, price: Decimal, size: Decimal, post_only: bool, client_id: str | None
    ) -> Any:
        """Sign and post one order on ``token``; the venue's acceptance (a refusal raised)."""
        client = await self.client()
        signed = await self._call(
            client.create_limit_order(asset_id=token, price=price, size=size, side=side, post_only=post_only)
        )
        expected = order_hash(self._order_body(signed), *self._domain(client, token))
        if client_id:
            self.ids.remember(client_id, expected)  # before it is sent: a lost answer is looked up by it
        answer = await self._call(client.post_order(signed))
        if not answer.ok:
            error = {
                "post_only_would_cross": ccxt.OrderImmediatelyFillable,
                "not_enough_balance": ccxt.InsufficientFunds,
            }.get(answer.code, ccxt.InvalidOrder)
            raise error(f"{EXCHANGE_ID}: {answer.code}: {answer.message}")
        if client_id:
            self.ids.remember(client_id, answer.order_id)
        return answer

    @staticmethod
    def _order_body(signed: Any) -> dict[str, Any]:
        return {
            "salt": signed.salt,
            "maker": signed.maker,
            "signer": signed.signer,
            "tokenId": signed.token_id,
            "makerAmount": signed.maker_amount,
            "takerAmount": signed.taker_amount,
            "side": signed.side,
            "signatureType": signed.signature_type,
            "timestamp": signed.timestamp,
            "metadata": signed.metadata,
            "builder": signed.builder,
        }

    def _domain(self, client: AsyncSecureClient, token: str) -> tuple[int, str, str]:
        listed = self._listed_of.get(token, token)
        neg_risk = bool(self.markets.get(listed, {}).get("info", {}).get("neg_risk"))
        return order_domain(client._ctx.environment_config, token, neg_risk)

    async def cancel_order(
        self, id: str | None, symbol: str | None = None, params: dict | None = None
    ) -> dict:
        params = params or {}
        order_id = id or self.ids.by_client.get(params.get("clientOrderId") or "")
        if not order_id:
            raise ccxt.OrderNotFound(f"{EXCHANGE_ID}: no order for {params.get('clientOrderId')!r}")
        client = await self.client()
        answer = await self._call(client.cancel_order(order_id=order_id))
        if order_id not in answer.canceled:
            why = answer.not_canceled.get(order_id, "not canceled")
            raise ccxt.OrderNotFound(f"{EXCHANGE_ID}: order {order_id}: {why}")
        self._sells.pop(order_id, None)
        return {
            "id": order_id,
            "clientOrderId": self.ids.by_hash.get(order_id),
            "status": "canceled",
            "info": answer.model_dump(mode="json"),
        }

    async def cancel_all_orders(self, symbol: str | None = None, params: dict | None = None) -> list:
        client = await self.client()
        if symbol is None:
            answer = await self._call(client.cancel_all())
        else:
            answer = await self._call(client.cancel_market_orders(**self._scope(symbol)))
        for oid in answer.canceled:
            self._sells.pop(oid, None)
        return [{"id": oid, "status": "canceled"} for oid in answer.canceled]

    async def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list:
        client = await self.client()
        asked = time.monotonic()
        orders = [
            self._open_order(o) for o in await self._pages(client.list_open_orders(**self._scope(symbol)))
        ]
        listed = {o["id"] for o in orders}
        for oid, sell in list(self._sells.items()):  # not open at the venue: no longer offered
            in_scope = symbol is None or self._listed_of.get(sell.token, sell.token) == symbol
            if in_scope and sell.since < asked and oid not in listed:
                del self._sells[oid]
        return [o for o in orders if symbol is None or o["symbol"] == symbol]

    async def fetch_order(
        self, id: str | None, symbol: str | None = None, params: dict | None = None
    ) -> dict:
        params = params or {}
        order_id = id or self.ids.by_client.get(params.get("clientOrderId") or "")
        if not order_id:  # never acknowledged nor about to be sent: it was not placed
            raise ccxt.OrderNotFound(f"{EXCHANGE_ID}: no order for {params.get('clientOrderId')!r}")
        client = await self.client()
        try:
            found = await self._call(client.get_order(order_id=order_id))
        except ccxt.BadResponse as exc:  # no order by that id answers null
            raise ccxt.OrderNotFound(f"{EXCHANGE_ID}: order {order_id} not found") from exc
        return self._open_order(found)

    def _open_order(self, o: Any) -> dict[str, Any]:
        status = str(o.status).upper()
        state = "canceled" if status.startswith("CANCELED") else ORDER_STATUS.get(status, "rejected")
        return self._our_order(o, state, _ms(o.created_at))

    def _our_order(self, o: Any, state: str, ts: int) -> dict[str, Any]:
        """An order of ours (the SDK's open order or order event) in ccxt's shape, as the listed
        market's; an open SELL is kept as holding back its shares."""
        self._track(o.id, o.asset_id, o.side, state, o.original_size, o.size_matched)
        symbol, side, price = self._listed(o.asset_id, o.side, o.price)
        order = self._order(
            o.id,
            self.ids.by_hash.get(o.id),
            state,
            side,
            price,
            float(o.original_size),
            float(o.size_matched),
            ts,
            o.model_dump(mode="json"),
        )
        order["symbol"] = symbol
        return order

    def _order(
        self,
        order_id: str,
        client_id: str | None,
        status: str,
        side: str,
        price: float,
        amount: float,
        filled: float | None,
        ts: int,
        info: dict[str, Any],
    ) -> dict[str, Any]:
        remaining = None if filled is None else max(amount - filled, 0.0)
        return {
            "id": order_id,
            "clientOrderId": client_id,
            "timestamp": ts,
            "datetime": _iso(ts),
            "status": status,
            "type": "limit",
            "side": side,
            "price": price,
            "amount": amount,
            "filled": filled,
            "remaining": remaining,
            "info": info,
        }

    # -- our trades -------------------------------------------------------------------------------------
    async def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list:
        after = str(max(since // 1000, 0)) if since else None
        ours = self._count(await self._listed_trades(symbol, after))
        ours = sorted(
            (t for t in ours if since is None or t["timestamp"] >= since), key=lambda t: t["timestamp"]
        )
        return ours[:limit] if limit else ours

    async def _listed_trades(self, symbol: str | None, after: str | None = None) -> list[dict[str, Any]]:
        """Our trades on a listed market (a netted one's on both tokens), as its own."""
        client = await self.client()
        trades = await self._pages(client.list_account_trades(**self._scope(symbol), after=after))
        return [
            t
            for trade in trades
            for t in self._my_trades(trade.model_dump(mode="json"), _ms(trade.matched_at))
            if symbol is None or t["symbol"] == symbol
        ]

    async def watch_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list:
        channel = await self._user()
        while True:
            orders = [o for o in await channel.next("orders") if symbol is None or o["symbol"] == symbol]
            if orders:
                return orders

    async def watch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict | None = None,
    ) -> list:
        channel = await self._user()
        while True:
            trades = [t for t in await channel.next("trades") if symbol is None or t["symbol"] == symbol]
            if trades:
                return trades

    async def _user(self) -> _Channel:
        if self._user_channel is None:
            client = await self.client()
            markets = sorted({str(m["info"]["condition_id"]) for m in self.markets.values()}) or None
            self._user_channel = _Channel(  # a market's condition: both its tokens
                "user",
                lambda: client.subscribe(UserSpec(markets=markets)),
                lambda: _socket_of(client._user_manager),
                self._user_event,
            )
        return self._user_channel

    def _user_event(self, event: Any) -> list[tuple[str, Any]]:
        p = event.payload
        if event.type == "trade":
            trades = self._count(self._my_trades(p.model_dump(mode="json"), _ms(p.matched_at or p.timestamp)))
            return [("trades", t) for t in trades]
        status = str(p.status or "").upper()
        if p.order_event_type == "CANCELLATION" or status.startswith("CANCELED"):
            state = "canceled"
        elif status in ORDER_STATUS:
            state = ORDER_STATUS[status]
        else:
            state = "open"
        return [("orders", self._our_order(p, state, _ms(p.timestamp or p.created_at)))]

    def _my_trades(self, t: dict[str, Any], ts: int) -> list[dict[str, Any]]:
        """Our part of a trade: the taker order when it was ours, else each maker order of ours."""
        key = self.apiKey
        market = self.markets.get(self._listed_of.get(t["asset_id"], t["asset_id"]), {}).get("info", {})
        rate, exponent = float(market.get("fee_rate") or 0.0), float(market.get("fee_exponent") or 1.0)
        parts: list[tuple[str, str, float, float, bool]] = []  # order, side, price, amount, taker
        if t.get("trader_side") == "TAKER" and t.get("owner") == key:
            parts.append((t["taker_order_id"], t["side"], float(t["price"]), float(t["size"]), True))
        for m in t.get("maker_orders") or ():
            if m.get("owner") == key:
                parts.append((m["order_id"], m["side"], float(m["price"]), float(m["matched_amount"]), False))
        out = []
        for i, (order_id, token_side, token_price, amount, taker) in enumerate(parts):
            fee = taker_fee(amount, token_price, rate, exponent) if taker else 0.0  # as charged
            client_id = self.ids.by_hash.get(order_id)
            symbol, side, price = self._listed(t["asset_id"], token_side, token_price)
            out.append(
                {
                    "id": str(t["id"]) if i == 0 else f"{t['id']}:{i}",  # one trade, several orders of ours
                    "order": order_id,
                    "clientOrderId": client_id,
                    "symbol": symbol,
                    "timestamp": ts,
                    "datetime": _iso(ts),
                    "side": side,
                    "price": price,
                    "amount": amount,
                    "cost": price * amount,
                    "type": "limit",
                    "takerOrMaker": "taker" if taker else "maker",
                    "fee": {"cost": fee, "currency": COLLATERAL, "rate": rate if taker else 0.0},
                    "info": {**t, "clientOrderId": client_id},
                }
            )
        return out

    # -- the end ----------------------------------------------------------------------------------------
    async def close(self) -> None:
        for channel in (self._market_channel, self._user_channel):
            if channel is not None:
                await channel.close()
        self._market_channel = self._user_channel = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
