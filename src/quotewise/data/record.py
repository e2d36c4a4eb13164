"""Record a venue's market channel to the capture format the readers take: one line per message,
``<local receive time, ns> <message text as the websocket sent it>`` (gzip when the name ends in
.gz). Messages are written as received, untouched, so a capture is evidence of what the venue said;
a dropped connection is reopened (the channel starts each subscription with a fresh ``book``) and
counted. Keep-alive frames (``PONG``) are not messages and are not written."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from quotewise.data.capture import open_for_writing
from quotewise.errors import ConfigError
from quotewise.logs import kv

logger = logging.getLogger(__name__)

POLYMARKET_MARKET_WS = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
PING_EVERY_S = 10.0  # Polymarket closes a market-channel connection that sends nothing for longer
RECONNECT_S = (0.5, 1.0, 2.0, 5.0)


@dataclass
class Recording:
    """What a recording wrote: messages, connections opened after the first, bytes."""

    messages: int = 0
    reconnects: int = 0
    bytes: int = 0


def market_ws_url(endpoint: str | None) -> str:
    """The market channel's URL: Polymarket's, or the same path on ``endpoint`` (an emulator's
    ``http://host:port``, or a full ``ws(s)://`` URL used as it is)."""
    if endpoint is None:
        return POLYMARKET_MARKET_WS
    if endpoint.startswith(("ws://", "wss://")):
        return endpoint
    if endpoint.startswith(("http://", "https://")):
        return "ws" + endpoint.removeprefix("http").rstrip("/") + "/ws/market"
    raise ConfigError(f"--endpoint {endpoint!r}: give http://HOST:PORT or a ws:// URL")


async def record_polymarket(
    tokens: list[str],
    out: Path,
    url: str = POLYMARKET_MARKET_WS,
    duration_s: float | None = None,
    on_message: Callable[[Recording], None] | None = None,
    stats: Recording | None = None,
) -> Recording:
    """Subscribe to ``tokens`` on the market channel and write every message to ``out`` until
    ``duration_s`` passes (None: until cancelled), counting in ``stats`` (kept by a caller that may be
    interrupted)."""
    if not tokens:
        raise ConfigError("name at least one token id to record")
    stats = stats if stats is not None else Recording()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    with open_for_writing(out) as fh:
        task = asyncio.create_task(_connections(tokens, url, fh, stats, on_message))
        try:
            if deadline is None:
                await task
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), max(deadline - time.monotonic(), 0))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return stats


async def _connections(tokens: list[str], url: str, fh, stats: Recording, on_message) -> None:
    attempt, opened = 0, False
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.ws_connect(url, heartbeat=None) as ws:
                    await ws.send_json({"assets_ids": tokens, "type": "market"})
                    stats.reconnects += opened
                    attempt, opened = 0, True
                    pinger = asyncio.create_task(_ping(ws))
                    try:
                        await _read(ws, fh, stats, on_message)
                    finally:
                        pinger.cancel()
            except (aiohttp.ClientError, OSError) as exc:
                if not opened and attempt >= len(RECONNECT_S):
                    raise ConfigError(f"cannot open the market channel at {url}: {exc}") from exc
                logger.warning("market channel dropped", extra=kv(url=url, error=repr(exc)))
            await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
            attempt += 1


async def _read(ws: aiohttp.ClientWebSocketResponse, fh, stats: Recording, on_message) -> None:
    async for frame in ws:
        if frame.type != aiohttp.WSMsgType.TEXT:
            continue
        text = frame.data.strip()
        if not text or text in ("PONG", "PING"):
            continue
        line = f"{time.time_ns()} {text}\n"
        fh.write(line)
        fh.flush()
        stats.messages += 1
        stats.bytes += len(line)
        if on_message is not None:
            on_message(stats)


async def _ping(ws: aiohttp.ClientWebSocketResponse) -> None:
    while True:
        await asyncio.sleep(PING_EVERY_S)
        await ws.send_str("PING")
