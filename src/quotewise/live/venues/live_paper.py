"""Paper trading on an exchange's live streams: our exchange simulator (queue position, latency, fees:
the backtest's fill rules) fed the exchange's own book and trades as they arrive.

A paper order fills when the live market would have filled it by the backtest's rules: it waits its
turn in the queue and fills against real trades and real book changes, not (as in Hummingbot's paper
mode) whole, at its limit price, the moment the price touches it. The market data comes through the
same feeds as the real venue (:mod:`quotewise.live.venues.feeds`: sequence checks, resyncs, reconnects);
the exchange is only read, so no API keys are needed.

Its durability is the paper venue's: fills are numbered and saved before anything is delivered, and
the orders are saved every second; after a restart they are put back (their queue places are kept,
the book is the exchange's fresh snapshot; the market while we were down is not replayed).
"""

from __future__ import annotations

import asyncio
import pickle
import time
from typing import Any

import numpy as np

from quotewise.errors import ConfigError
from quotewise.live.paper import MAX_SLEEP_S, NO_DECISIONS_NS, SimVenue
from quotewise.live.store import Store
from quotewise.live.venues.ccxt_venue import PRICE_BAND, first_book, instrument_of
from quotewise.live.venues.depth import Grid
from quotewise.live.venues.feeds import ExchangeClock, FeedStats, feed_for, keep_clock, link_status
from quotewise.model.events import CLEAR, EVENT_DTYPE
from quotewise.settings import VenueSettings


class LivePaperVenue(SimVenue):
    """See the module docstring. Build it, ``await connect()``, then hand it to a Maker."""

    def __init__(
        self,
        maker_id: str,
        exchange: Any,
        symbol: str,
        store: Store,
        settings: VenueSettings | None = None,
        resume: bool = False,
    ) -> None:
        self.maker_id = maker_id
        self.exchange = exchange
        self.symbol = symbol
        self.store = store
        self.settings = settings or VenueSettings()
        self.resume = resume
        self.clock = ExchangeClock()
        self.stats = FeedStats()
        self.trusted = False
        self.speed = 1.0
        self._last_local = 0

    async def connect(self) -> None:
        """The exchange's listing, its clock, and the price range from its book now."""
        try:
            await self.exchange.load_markets()
        except Exception as exc:
            raise ConfigError(f"cannot load {self.exchange.id} markets: {exc}") from exc
        if self.symbol not in self.exchange.markets:
            raise ConfigError(f"{self.exchange.id} has no market {self.symbol!r} (e.g. BTC/USDT:USDT)")
        self.market = self.exchange.market(self.symbol)
        self.instrument = self.settings.listing(instrument_of(self.exchange, self.market))
        self.grid = Grid(self.instrument.tick_size, self.instrument.lot_size)
        await self.clock.measure(self.exchange)
        book = await first_book(self.exchange, self.symbol)
        self.start_price = (book["bids"][0][0] + book["asks"][0][0]) / 2 / self.instrument.tick_size
        self._range = (int(self.start_price * (1 - PRICE_BAND)), int(self.start_price * (1 + PRICE_BAND)) + 1)
        self.sim = self.settings.sim_config(False, NO_DECISIONS_NS)
        self._start_accounts(time.time_ns)
        if self.resume:
            blob = self.store.load_paper_state(self.maker_id)
            if blob is not None:
                self._restore_orders(pickle.loads(blob))

    @property
    def now(self) -> int:
        return max(self._ex.now, self.clock.now())

    # -- the feed's callbacks ------------------------------------------------------------------------
    def on_book(self, events: np.ndarray) -> None:
        """Live events through the simulator (their receive times never going back: the simulator
        runs in time order), then to the maker with the responses due."""
        local = np.maximum.accumulate(np.maximum(events["local_ts"], self._last_local))
        events = events.copy()
        events["local_ts"] = local
        self._last_local = int(local[-1])
        delivered = self._match(events)
        self._set_now()
        self._deliver(events, delivered + self._ex.responses())

    def on_trust(self, trusted: bool, reason: str) -> None:
        """An untrusted book is emptied (for the simulator and the maker alike) until it is back."""
        self.trusted = trusted
        if not trusted:
            clear = np.zeros(1, dtype=EVENT_DTYPE)
            clear["kind"] = CLEAR
            clear["local_ts"] = clear["exch_ts"] = max(self.clock.now(), self._last_local)
            self.on_book(clear)

    # -- the venue's task ----------------------------------------------------------------------------
    async def run(self) -> None:
        """The feed, the clock, and the responses that come due between market events."""
        feed = feed_for(self.exchange, self.market, self.grid, self.clock, self)
        self.stats = feed.stats
        tasks = [asyncio.create_task(feed.run()), asyncio.create_task(keep_clock(self.clock, self.exchange))]
        try:
            while True:
                await asyncio.sleep(MAX_SLEEP_S)
                self._set_now()
                self._deliver(np.zeros(0, dtype=EVENT_DTYPE), self._ex.responses())
        finally:
            for task in tasks:
                task.cancel()
            self.save()

    async def aclose(self) -> None:
        self.save()
        await self.exchange.close()

    def status(self) -> dict[str, Any]:
        return link_status(self.trusted, self.clock, self.stats)
