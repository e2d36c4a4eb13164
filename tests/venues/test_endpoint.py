"""Pointing a stock ccxt client somewhere else: every host moved, paths kept; a bad origin refused."""

from __future__ import annotations

import ccxt.pro
import pytest

from quotewise.errors import ConfigError
from quotewise.live.engine import MakerSpec
from quotewise.live.venues.ccxt_venue import open_exchange
from quotewise.live.venues.endpoint import rewrite_urls


def every_url(tree) -> list[str]:
    if isinstance(tree, dict):
        return [u for item in tree.values() for u in every_url(item)]
    return [tree] if isinstance(tree, str) else []


def test_every_rest_and_websocket_host_is_moved_and_every_path_kept():
    original = ccxt.pro.binanceusdm().urls["api"]
    moved = rewrite_urls(original, "http://127.0.0.1:8900")
    pairs = list(zip(every_url(original), every_url(moved), strict=True))
    assert pairs
    for before, after in pairs:
        scheme, rest = before.split("://", 1)
        path = rest[len(rest.split("/", 1)[0]) :]  # what follows the host
        assert after == ("ws" if scheme == "wss" else "http") + "://127.0.0.1:8900" + path
    assert rewrite_urls({"ws": "wss://fstream.binance.com/ws"}, "https://h:1") == {"ws": "wss://h:1/ws"}


@pytest.mark.parametrize("bad", ["127.0.0.1:8900", "ftp://h:1", "http://h:1/fapi", "http://"])
def test_an_endpoint_that_is_not_an_origin_is_refused_by_name(bad):
    with pytest.raises(ConfigError, match="--endpoint"):
        open_exchange("binanceusdm", None, bad)
    with pytest.raises(ValueError, match="--endpoint"):
        MakerSpec(venue="binanceusdm", market="BTC/USDT:USDT", endpoint=bad)


def test_testnet_is_the_exchanges_own_testnet():
    exchange = open_exchange("binanceusdm", None, "testnet")
    assert exchange.urls["api"]["fapiPrivate"].startswith("https://testnet.binancefuture.com/")
    assert exchange.urls["api"]["ws"]["linear"].startswith("wss://fstream.binancefuture.com/")


def test_an_unknown_exchange_is_refused_by_name():
    with pytest.raises(ConfigError, match="unknown exchange 'nowhere'"):
        open_exchange("nowhere")
