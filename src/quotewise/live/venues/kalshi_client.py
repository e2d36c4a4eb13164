"""A thin async client of Kalshi's Trade API v2 (REST with httpx, the websocket with aiohttp), written
from Kalshi's public documentation (docs.kalshi.com); no Kalshi SDK is used.

Signing (docs.kalshi.com, "API Keys" and "Quick start: authenticated requests"): every request
carries ``KALSHI-ACCESS-KEY`` (the key id), ``KALSHI-ACCESS-TIMESTAMP`` (ms since the epoch) and
``KALSHI-ACCESS-SIGNATURE``: base64 of RSA-PSS (SHA-256, MGF1-SHA-256, salt length = digest length)
over ``timestamp + METHOD + path``, the path with its ``/trade-api/v2`` prefix and without the query
string. The websocket's upgrade request is signed the same way over ``GET /trade-api/ws/v2``.

Errors are answered ``{"error": {"code", "message", "details"}}``; they are raised here as
:class:`KalshiError` subclasses: :class:`AuthError` (401), :class:`RateLimited` (429, with the
Retry-After seconds), :class:`NotFound` (404), :class:`InvalidOrder` (400, with Kalshi's code),
:class:`ServerError` (5xx) and :class:`TransportError` / :class:`Timeout` (no answer).

Prices on the wire are cents (``yes_price`` / ``no_price``, 1 to 99); a contract pays 100 cents.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from quotewise.model.fees import ROUNDING, fee_of

PRODUCTION = "https://api.elections.kalshi.com"
API_PREFIX = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"
PAGE_LIMIT = 200  # Kalshi's page size for orders and fills (its maximum is larger)
TAKER_RATE = Decimal("0.07")
MAKER_RATE = Decimal("0.0175")


# -- errors -----------------------------------------------------------------------------------------
class KalshiError(Exception):
    """An error answer (or no answer): the HTTP status (0: none), Kalshi's code and message."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"kalshi {status or 'transport'} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class AuthError(KalshiError):
    """401: the key id, the signature or its timestamp was refused."""


class RateLimited(KalshiError):
    """429: too many requests; ``retry_after`` seconds to wait (Retry-After)."""


class NotFound(KalshiError):
    """404: no such order, market or path."""


class InvalidOrder(KalshiError):
    """400: the request was refused (an invalid order, a post-only order that would cross, ...)."""


class ServerError(KalshiError):
    """5xx: the exchange failed to answer."""


class TransportError(KalshiError):
    """No answer: the connection failed or dropped."""


class Timeout(TransportError):
    """No answer in time: the request may or may not have been processed."""


def error_of(status: int, body: str, headers: Any = None) -> KalshiError:
    """The exception for an error answer."""
    code, message = "", body[:300]
    try:
        err = json.loads(body).get("error") or {}
        code, message = str(err.get("code", "")), str(err.get("message", "")) or message
        if err.get("details"):
            message = f"{message} ({err['details']})"
    except (ValueError, AttributeError):
        pass
    if status == 401:
        return AuthError(status, code or "authentication_error", message)
    if status == 429:
        retry = (headers or {}).get("Retry-After")
        return RateLimited(status, code or "too_many_requests", message, float(retry) if retry else None)
    if status == 404:
        return NotFound(status, code or "not_found", message)
    if status >= 500:
        return ServerError(status, code or "internal_server_error", message)
    return InvalidOrder(status, code or "bad_request", message)


# -- signing ----------------------------------------------------------------------------------------
def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a Kalshi API key is an RSA private key (PEM)")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a Kalshi API key's public half is an RSA public key (PEM)")
    return key


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def signing_text(timestamp_ms: str, method: str, path: str) -> bytes:
    """What is signed: the timestamp, the method and the path without its query string."""
    return f"{timestamp_ms}{method.upper()}{path.split('?', 1)[0]}".encode()


def sign(key: rsa.RSAPrivateKey, timestamp_ms: str, method: str, path: str) -> str:
    signature = key.sign(signing_text(timestamp_ms, method, path), _pss(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def verify(key: rsa.RSAPublicKey, signature: str, timestamp_ms: str, method: str, path: str) -> bool:
    """Whether ``signature`` signs this request with the private half of ``key``."""
    try:
        key.verify(
            base64.b64decode(signature), signing_text(timestamp_ms, method, path), _pss(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def auth_headers(key_id: str, key: rsa.RSAPrivateKey, method: str, path: str) -> dict[str, str]:
    stamp = str(time.time_ns() // 1_000_000)
    return {
        "KALSHI-ACCESS-KEY": key_id,
        "KALSHI-ACCESS-TIMESTAMP": stamp,
        "KALSHI-ACCESS-SIGNATURE": sign(key, stamp, method, path),
    }


# -- fees -------------------------------------------------------------------------------------------
def kalshi_fee(count: int, price_cents: int, rate: Decimal = TAKER_RATE) -> Decimal:
    """Kalshi's trading fee of one fill in dollars: ``ceil_to_cent(rate x C x P x (1 - P))``, C
    contracts at P dollars; ``rate`` 0.07 for a taker (:data:`TAKER_RATE`), 0.0175 for a maker on
    the markets that charge makers (:data:`MAKER_RATE`). Kalshi's fee schedule
    (https://kalshi.com/docs/kalshi-fee-schedule.pdf; formulas in effect since 2025-07-01). The
    simulator's fee function (:func:`quotewise.model.fees.fee_of`), which keeps 100 contracts at 0.50
    at 1.75 where a plain float ceiling would say 1.76."""
    fee = fee_of(float(rate), 0.0, float(count), True, int(price_cents) / 100, 1.0, 0.01, ROUNDING["up"])
    return Decimal(f"{fee:.2f}")


# -- the client -------------------------------------------------------------------------------------
def _cents(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if not 1 <= int(value) <= 99:
        raise ValueError(f"{name} must be 1 to 99 cents, got {value}")
    return int(value)


class KalshiClient:
    """Kalshi's Trade API v2 for one API key; see the module docstring. ``base_url`` is the origin
    (``https://api.elections.kalshi.com``, the demo's, or a local emulator's ``http://HOST:PORT``)."""

    def __init__(
        self, api_key_id: str, private_key_pem: bytes, base_url: str = PRODUCTION, timeout: float = 10.0
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be http(s)://HOST[:PORT], got {base_url!r}")
        self.api_key_id = api_key_id
        self.key = load_private_key(private_key_pem)
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.ws_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}{WS_PATH}"
        self.timeout = timeout
        self.last_headers: dict[str, str] = {}
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.base_url)
        return self._http

    async def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """A signed request to ``API_PREFIX + path``; the JSON answer, or a :class:`KalshiError`."""
        full = API_PREFIX + path
        headers = auth_headers(self.api_key_id, self.key, method, full)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            answer = await self._client().request(
                method, full, params=query, json=body, headers=headers, timeout=self.timeout
            )
        except httpx.TimeoutException as exc:
            raise Timeout(0, "timeout", f"{method} {full}: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise TransportError(0, "transport", f"{method} {full}: {exc!r}") from exc
        self.last_headers = dict(answer.headers)
        if answer.status_code >= 400:
            raise error_of(answer.status_code, answer.text, answer.headers)
        return answer.json() if answer.content else {}

    # -- market data ----------------------------------------------------------------------------------
    async def get_market(self, ticker: str) -> dict[str, Any]:
        return (await self.request("GET", f"/markets/{ticker}"))["market"]

    async def get_markets(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every market (with ``status``: unopened, open, closed, settled), all pages."""
        return await self._pages("/markets", "markets", {"status": status, "limit": 1000})

    async def get_orderbook(self, ticker: str, depth: int | None = None) -> dict[str, Any]:
        """``{"yes": [[cents, qty], ...], "no": [...]}``: the bids for YES and for NO."""
        return (await self.request("GET", f"/markets/{ticker}/orderbook", {"depth": depth}))["orderbook"]

    async def get_exchange_status(self) -> dict[str, Any]:
        return await self.request("GET", "/exchange/status")

    async def exchange_time_ms(self) -> int:
        """The exchange's clock, from the HTTP Date header of the status answer (whole seconds:
        Kalshi has no time endpoint)."""
        await self.get_exchange_status()
        date = self.last_headers.get("date") or self.last_headers.get("Date")
        if not date:
            return time.time_ns() // 1_000_000
        return int(parsedate_to_datetime(date).timestamp() * 1000)

    # -- orders ---------------------------------------------------------------------------------------
    async def create_order(
        self,
        ticker: str,
        side: str,
        action: str,
        count: int,
        yes_price: int | None = None,
        no_price: int | None = None,
        client_order_id: str | None = None,
        post_only: bool = False,
        time_in_force: str | None = None,
    ) -> dict[str, Any]:
        """A limit order: ``side`` yes/no, ``action`` buy/sell, one of ``yes_price`` / ``no_price``
        in cents. The order as Kalshi answers it."""
        if side not in ("yes", "no") or action not in ("buy", "sell"):
            raise ValueError(f"side must be yes/no and action buy/sell, got {side!r} {action!r}")
        if (yes_price is None) == (no_price is None):
            raise ValueError("give exactly one of yes_price and no_price")
        body: dict[str, Any] = {
            "ticker": ticker,
            "side": side,
            "action": action,
            "count": int(count),
            "type": "limit",
        }
        if yes_price is not None:
            body["yes_price"] = _cents(yes_price, "yes_price")
        else:
            body["no_price"] = _cents(no_price, "no_price")
        if client_order_id:
            body["client_order_id"] = client_order_id
        if post_only:
            body["post_only"] = True
        if time_in_force:
            body["time_in_force"] = time_in_force
        return (await self.request("POST", "/portfolio/orders", body=body))["order"]

    async def cancel_order(self, order_id: str) -> dict[str, Any]:
        """The order as cancelled (what was left of it is ``reduced_by``)."""
        return (await self.request("DELETE", f"/portfolio/orders/{order_id}"))["order"]

    async def batch_cancel(self, order_ids: list[str]) -> list[dict[str, Any]]:
        """Cancel several orders in one request; one answer per order (``order`` or ``error``)."""
        if not order_ids:
            return []
        answer = await self.request("DELETE", "/portfolio/orders/batched", body={"ids": list(order_ids)})
        return list(answer.get("orders") or [])

    async def cancel_all(self, ticker: str | None = None, client_prefix: str = "") -> int:
        """Cancel every resting order (of ``ticker``; whose client id starts with ``client_prefix``):
        how many were asked to be cancelled."""
        ids = [
            o["order_id"]
            for o in await self.get_orders(ticker, status="resting")
            if str(o.get("client_order_id") or "").startswith(client_prefix)
        ]
        for start in range(0, len(ids), 20):  # Kalshi's batch limit is 20 orders
            await self.batch_cancel(ids[start : start + 20])
        return len(ids)

    async def get_orders(self, ticker: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Every order (of ``ticker``, with ``status`` resting/canceled/executed), all pages."""
        params = {"ticker": ticker, "status": status, "limit": PAGE_LIMIT}
        return await self._pages("/portfolio/orders", "orders", params)

    async def get_order(self, order_id: str) -> dict[str, Any]:
        return (await self.request("GET", f"/portfolio/orders/{order_id}"))["order"]

    async def get_order_by_client_id(self, client_order_id: str, ticker: str | None = None) -> dict[str, Any]:
        """The latest order with this client id (resting ones first); :class:`NotFound` if none."""
        for status in ("resting", None):
            found = [
                o
                for o in await self.get_orders(ticker, status)
                if o.get("client_order_id") == client_order_id
            ]
            if found:
                return found[-1]
        raise NotFound(404, "not_found", f"no order with client_order_id {client_order_id!r}")

    async def get_fills(
        self, ticker: str | None = None, min_ts: int | None = None, order_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Our fills (of ``ticker``, at or after ``min_ts`` seconds), all pages, oldest first."""
        params = {"ticker": ticker, "min_ts": min_ts, "order_id": order_id, "limit": PAGE_LIMIT}
        fills = await self._pages("/portfolio/fills", "fills", params)
        return sorted(fills, key=lambda f: (fill_time_ms(f), str(f.get("trade_id"))))

    async def get_balance(self) -> dict[str, Any]:
        return await self.request("GET", "/portfolio/balance")

    async def get_positions(self, ticker: str | None = None) -> list[dict[str, Any]]:
        answer = await self.request("GET", "/portfolio/positions", {"ticker": ticker})
        return list(answer.get("market_positions") or [])

    async def _pages(self, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            answer = await self.request("GET", path, {**params, "cursor": cursor})
            out += answer.get(key) or []
            cursor = answer.get("cursor")
            if not cursor:
                return out

    # -- the websocket --------------------------------------------------------------------------------
    async def connect_ws(self, heartbeat: float = 10.0) -> KalshiStream:
        """A websocket connection, its upgrade signed (``GET /trade-api/ws/v2``)."""
        session = aiohttp.ClientSession()
        headers = auth_headers(self.api_key_id, self.key, "GET", WS_PATH)
        try:
            ws = await session.ws_connect(
                self.ws_url,
                headers=headers,
                heartbeat=heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_close=self.timeout),
            )
        except aiohttp.WSServerHandshakeError as exc:
            await session.close()
            raise error_of(exc.status, exc.message, exc.headers) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            await session.close()
            raise TransportError(0, "transport", f"websocket {self.ws_url}: {exc!r}") from exc
        return KalshiStream(session, ws)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


class KalshiStream:
    """One websocket connection: ``subscribe`` to channels, then iterate its messages (dicts)."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws = session, ws
        self._next_id = 0

    async def subscribe(self, channels: list[str], market_tickers: list[str] | None = None) -> int:
        """Ask for ``channels`` (orderbook_delta, trade, fill, user_orders) of these markets; the
        command's id (the ``subscribed`` answers carry it, with each channel's ``sid``)."""
        self._next_id += 1
        params: dict[str, Any] = {"channels": list(channels)}
        if market_tickers:
            params["market_tickers"] = list(market_tickers)
        await self.ws.send_str(json.dumps({"id": self._next_id, "cmd": "subscribe", "params": params}))
        return self._next_id

    async def unsubscribe(self, sids: list[int]) -> int:
        self._next_id += 1
        await self.ws.send_str(
            json.dumps({"id": self._next_id, "cmd": "unsubscribe", "params": {"sids": sids}})
        )
        return self._next_id

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                yield json.loads(msg.data)
            elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
        raise TransportError(0, "ws_closed", f"websocket closed ({self.ws.close_code})")

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


def fill_time_ms(fill: dict[str, Any]) -> int:
    """A fill's time in ms: ``created_time`` (ISO 8601) where given, else ``ts`` (seconds)."""
    created = fill.get("created_time")
    if created:
        from datetime import datetime

        return int(datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp() * 1000)
    return int(fill.get("ts") or 0) * 1000


def iso_ms(ms: int) -> str:
    """``ms`` since the epoch as Kalshi writes times (ISO 8601, UTC, ms)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def floor_seconds(ms: int) -> int:
    return math.floor(ms / 1000)
