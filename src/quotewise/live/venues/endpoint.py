"""Point a ccxt exchange at another address: every REST host to ``http(s)://HOST:PORT`` and every
websocket host to ``ws(s)://HOST:PORT`` (a testnet, a proxy, or our local emulator)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from quotewise.errors import ConfigError

_ORIGIN = re.compile(r"^(https?|wss?)://[^/?#]+")


def endpoint_origins(endpoint: str) -> tuple[str, str]:
    """``(rest, websocket)`` origins for ``endpoint`` (``http://127.0.0.1:8080`` gives
    ``http://127.0.0.1:8080`` and ``ws://127.0.0.1:8080``; https gives wss)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--endpoint must be http://HOST:PORT or https://HOST:PORT, got {endpoint!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"--endpoint takes an origin only (no path): {endpoint!r}")
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{parts.scheme}://{parts.netloc}", f"{ws_scheme}://{parts.netloc}"


def rewrite_urls(urls: Any, endpoint: str) -> Any:
    """A copy of ccxt's ``urls['api']`` tree with every host replaced (paths kept)."""
    rest, ws = endpoint_origins(endpoint)

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        if isinstance(value, str):
            match = _ORIGIN.match(value)
            if match is not None:
                origin = ws if match.group(1).startswith("ws") else rest
                return origin + value[match.end() :]
        return value

    return swap(urls)


def point_at(exchange: Any, endpoint: str) -> None:
    """Send every request and stream of ``exchange`` (a ccxt or ccxt.pro instance) to ``endpoint``."""
    exchange.urls["api"] = rewrite_urls(exchange.urls["api"], endpoint)
