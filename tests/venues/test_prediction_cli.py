"""The prediction-market done-when check through ``mm``, as a user runs it: ``mm venue serve
polymarket|kalshi`` on a synthetic prediction market, the engine trades it with ``mm start``, is
killed with SIGKILL and restarted, and in the end every fill the venue made is stored once; without
credentials ``mm start`` refuses in one line."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from venuekit import Emulator, Session, serve, stored_equals_venue, trade_through_a_crash

from live.livekit import MM
from quotewise.live.client import EngineClient

MAKER = "pm1"
KALSHI_TICKER = "KXQWCLI-26DEC31-B50"
KALSHI_KEY_ID = "kalshi-cli-key"
FIRST_RUN_S = 20.0
DOWN_S = 4.0
SECOND_RUN_S = 15.0


@dataclass
class Venue:
    """One prediction venue as the test drives it: the emulator, the market, the credentials in the
    environment, and how to list our trades at the venue."""

    name: str
    market: str
    env: dict[str, str]
    trade_ids: Callable[[str], list[str]]


def kalshi_venue(mm: MM, folder: Path) -> Iterator[tuple[Venue, Emulator]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private = folder / "kalshi.pem"
    private.write_bytes(pem)
    private.chmod(0o600)
    public = folder / "kalshi.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    def trade_ids(url: str) -> list[str]:
        from quotewise.live.venues.kalshi_exchange import KalshiExchange

        async def fetch() -> list[str]:
            exchange = KalshiExchange(KALSHI_KEY_ID, pem, host=url, tickers=[KALSHI_TICKER])
            try:
                return [str(t["id"]) for t in await exchange.fetch_my_trades(KALSHI_TICKER, 0)]
            finally:
                await exchange.close()

        return asyncio.run(fetch())

    args = ["--data", "synthetic-binary:400000", "--api-key", KALSHI_KEY_ID, "--public-key", str(public)]
    with serve(mm, folder, "kalshi", *args, "--symbol", KALSHI_TICKER) as emulator:
        env = {"KALSHI_API_KEY": KALSHI_KEY_ID, "KALSHI_PRIVATE_KEY_FILE": str(private)}
        yield Venue("kalshi", KALSHI_TICKER, env, trade_ids), emulator


POLY_KEY, POLY_PASSPHRASE = "poly-cli-key", "poly-cli-passphrase"
POLY_SECRET = base64.urlsafe_b64encode(b"quotewise-cli-emulator-secret-32").decode()
POLY_PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
POLY_TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def polymarket_venue(mm: MM, folder: Path) -> Iterator[tuple[Venue, Emulator]]:
    def trade_ids(url: str) -> list[str]:
        from quotewise.live.venues.polymarket_exchange import PolymarketExchange

        async def fetch() -> list[str]:
            exchange = PolymarketExchange(
                POLY_PRIVATE_KEY, POLY_KEY, POLY_SECRET, POLY_PASSPHRASE, url, tokens=[POLY_TOKEN]
            )
            try:
                await exchange.load_markets()
                return [str(t["id"]) for t in await exchange.fetch_my_trades(POLY_TOKEN, 0)]
            finally:
                await exchange.close()

        return asyncio.run(fetch())

    args = ["--data", "synthetic-binary:400000", "--api-key", POLY_KEY, "--secret", POLY_SECRET]
    with serve(
        mm, folder, "polymarket", *args, "--passphrase", POLY_PASSPHRASE, "--symbol", POLY_TOKEN
    ) as em:
        env = {
            "POLY_API_KEY": POLY_KEY,
            "POLY_API_SECRET": POLY_SECRET,
            "POLY_PASSPHRASE": POLY_PASSPHRASE,
            "POLY_PRIVATE_KEY": POLY_PRIVATE_KEY,
        }
        yield Venue("polymarket", POLY_TOKEN, env, trade_ids), em


VENUES = {"kalshi": kalshi_venue, "polymarket": polymarket_venue}


@pytest.fixture(params=sorted(VENUES))
def venue(request: pytest.FixtureRequest, mm: MM, tmp_path: Path) -> Iterator[tuple[Venue, Emulator]]:
    yield from VENUES[request.param](mm, tmp_path)


@pytest.mark.slow
def test_mm_start_trades_on_the_venue_through_a_crash(
    mm: MM, venue: tuple[Venue, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, emulator = venue
    mm("engine", "start", "--db", mm.db)
    refused = mm("start", spec.name, spec.market, "--endpoint", emulator.url, check=False)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs its API credentials" in lines[0], refused.stderr
    assert all(var in lines[0] for var in spec.env), lines[0]

    mm.env.update(spec.env)
    args = [
        spec.name,
        spec.market,
        "--endpoint",
        emulator.url,
        "--strategy",
        "symmetric",
        "--spread",
        "1tick",
    ]
    session = Session(FIRST_RUN_S, DOWN_S, SECOND_RUN_S, first_fill_wait_s=80)
    watch = trade_through_a_crash(mm, MAKER, [*args, "--size", "5", "--max-pos", "100"], session)

    stats = emulator.stats()
    assert stats["open_orders"] == {"bid": 0, "ask": 0}, stats
    monkeypatch.setenv("QUOTEWISE_HOME", str(mm.home))
    client = EngineClient()
    stored = [str(f["trade_id"]) for f in client.fills(MAKER)]
    stored_equals_venue(stored, spec.trade_ids(emulator.url))
    assert stats["peak_open_orders"]["bid"] <= 1 and stats["peak_open_orders"]["ask"] <= 1, stats
    status = client.status(MAKER)
    assert status["status"] == "stopped" and set(watch.seen) == {"running"}
    actions = [row["action"] for row in client.audit(MAKER)]
    assert "resume" in actions and "resume_failed" not in actions, actions
    mm("engine", "stop")
