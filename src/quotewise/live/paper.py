"""The paper venue: the backtest's exchange simulator, driven in real time by replayed data.

Replay time = data start + (wall time since start) x speed. Each step feeds the events due by then to
a :class:`~quotewise.sim.exchange.SimExchange` (the same fill rules as the backtest), hands out the
responses due by then, and sends the events to the listener as market data.

The venue plays the exchange, so it outlives our process: its state is saved to the store (the
``paper_*`` tables) whenever it made a fill, before any response reaches the maker, and every
second. After a crash it is rebuilt by replaying the data to the saved point with no orders (the
market is the file) and putting back our orders, accounts and undelivered responses; the replay
clock then goes on as if the market had kept going while the process was down, so orders resting
at the venue can fill in the missed stretch. Those fills reach the maker through
:meth:`PaperVenue.fills_since`.

An order reaches the simulated exchange ``entry_latency`` after it is sent, but is matched when the
next market event is processed: with active data that is milliseconds; in a quiet market the ack
waits for the next event.

When the data is used up the replayed market is over, and a request would wait for an event that
never comes: so the venue answers every order still alive itself (resting: cancelled, in flight:
rejected, reason ``data ended``, after the response latency), refuses orders sent later the same
way, and tells the engine (:attr:`PaperVenue.on_end`) before it hands out these answers.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from quotewise.backtest.source import DataSource, data_paths, from_path, synthetic
from quotewise.data.synthetic import synthetic_events
from quotewise.errors import ConfigError, QuotewiseError
from quotewise.live.store import Store
from quotewise.live.venue import NotSupported, VenueFill, VenueListener, VenueOrder
from quotewise.model.events import price_level
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.settings import VenueSettings
from quotewise.sim.exchange import SimExchange

PRICE_PAD_TICKS = 1_000
SAVE_EVERY_NS = 1_000_000_000
MAX_SLEEP_S = 0.05
NO_DECISIONS_NS = 10**17  # the venue makes no decisions: a grid this coarse never wakes it
DATA_ENDED = "data ended"
START_EVENTS = 100_000  # the first events tell the price level orders are sized at


def open_data(data: str, tick_size: float | None = None, lot_size: float | None = None) -> DataSource:
    """A data file any reader accepts, ``a,b`` for consecutive files of one stream, or ``synthetic`` /
    ``synthetic:N`` (the embedded market)."""
    n_synthetic = synthetic_events(data)
    if n_synthetic is not None:
        return synthetic(n_synthetic, seed=0)
    paths = data_paths(data)
    for path in [paths] if isinstance(paths, str) else paths:
        if not Path(path).exists():
            raise ConfigError(f"data file not found: {path}")
    try:
        return from_path(paths, tick_size=tick_size, lot_size=lot_size)
    except QuotewiseError as exc:
        raise ConfigError(f"cannot read {data}: {exc}") from exc


class SimVenue:
    """What every simulated venue shares: our simulator as the exchange (orders, fills numbered and
    saved before anything is delivered, the venue's own accounts). Subclasses feed it the market."""

    maker_id: str
    store: Store
    instrument: Instrument
    sim: Any
    ended: bool = False
    _range: tuple[int, int]

    def _start_accounts(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._listener: VenueListener | None = None
        self.on_end: Callable[[], None] | None = None  # called once the data is used up (set by the engine)
        self._seq = 0  # last fill sequence number given
        self._seq_of: dict[int, int] = {}  # id(fill response) -> its sequence number
        self._unsaved: list[VenueFill] = []
        self._last_save = 0
        self._ex = self._exchange()

    def _exchange(self) -> SimExchange:
        ex = SimExchange(self.instrument, *self._range, self.sim)
        ex.on_made = self._made
        return ex

    @property
    def price_range(self) -> tuple[int, int]:
        return self._range

    # -- order entry -------------------------------------------------------------------------------
    def _set_now(self) -> None:
        self._ex.set_now(self.now)

    @property
    def now(self) -> int:
        raise NotImplementedError

    def place(self, side: int, price: int, size: int, post_only: bool = True, reject_reason: int = 0) -> int:
        self._set_now()
        order_id = self._ex.place(side, price, size, post_only, reject_reason)
        if self.ended:
            self._ex.close_market(DATA_ENDED)  # refused: nothing would ever match it
        return order_id

    def cancel(self, order_id: int) -> bool:
        """False once the data has ended: the venue has answered (or is answering) every order itself."""
        self._set_now()
        return not self.ended and self._ex.cancel(order_id)

    def amend(self, order_id: int, price: int, size: int) -> bool:
        raise NotSupported("the paper venue has no amend: cancel and place instead")

    def open_orders(self) -> list[VenueOrder]:
        return [VenueOrder(*row) for row in self._ex.live_orders()]

    def position(self) -> tuple[int, float, float]:
        return self._ex.position_lots, self._ex.cash, self._ex.fees

    def fills_since(self, seq: int) -> list[VenueFill]:
        return self.store.paper_fills_since(self.maker_id, seq)

    def subscribe(self, listener: VenueListener) -> None:
        self._listener = listener

    def close(self) -> None:
        self.save()

    def _made(self, responses: list[Response]) -> None:
        """The exchange just made these: number the fills (saved before anything is delivered)."""
        for r in responses:
            if r.kind == "fill":
                self._seq += 1
                self._seq_of[id(r)] = self._seq
                self._unsaved.append(
                    VenueFill(
                        self._seq, r.order_id, r.exch_ts, r.side, r.price, r.qty, r.left, r.fee, r.maker
                    )
                )

    def _match(self, batch: np.ndarray) -> list[Response]:
        """Market events through the exchange: the responses due by now."""
        ex = self._ex
        delivered: list[Response] = []
        if len(batch):
            ex.feed(batch, last=True)
            while ex.advance():
                delivered += ex.responses()
                if ex.decision_due:
                    ex.schedule_next_decision()
        return delivered

    def _deliver(self, batch: np.ndarray, delivered: list[Response]) -> None:
        """Save what is new, then hand out market events and responses."""
        if self._unsaved or self._clock() - self._last_save >= SAVE_EVERY_NS:
            self.save()
        if self._listener is not None:
            if len(batch):
                self._listener.on_market(batch)
            if delivered:
                self._listener.on_responses([(r, self._seq_of.pop(id(r), 0)) for r in delivered])

    def _state(self) -> dict[str, Any]:
        snap = self._ex.snapshot_orders()
        seqs = [self._seq_of.get(id(r), 0) for r in snap["pending"]]
        return {"seq": self._seq, "orders": snap, "pending_seqs": seqs}

    def save(self) -> None:
        """The venue's state and its new fills, in one transaction."""
        self.store.save_paper_state(self.maker_id, pickle.dumps(self._state()), self._unsaved)
        self._unsaved = []
        self._last_save = self._clock()

    def _restore_orders(self, state: dict[str, Any]) -> None:
        ex = self._ex
        ex.restore_orders(state["orders"])
        for r, seq in zip(ex.pending_responses(), state["pending_seqs"], strict=True):
            if seq:
                self._seq_of[id(r)] = seq
        self._seq = state["seq"]


class PaperVenue(SimVenue):
    """The simulated exchange for one maker, in real time; see the module docstring."""

    def __init__(
        self,
        maker_id: str,
        data: str,
        store: Store,
        speed: float = 1.0,
        settings: VenueSettings | None = None,
        clock: Callable[[], int] = time.time_ns,
        tick_size: float | None = None,
        lot_size: float | None = None,
        resume: bool = False,
    ) -> None:
        if not speed > 0:
            raise ConfigError(f"--speed must be > 0, got {speed}")
        source = open_data(data, tick_size, lot_size)
        events = [chunk for chunk in source.chunks() if len(chunk)]
        if not events:
            raise ConfigError(f"{data} holds no market events")
        self.maker_id = maker_id
        self.store = store
        self.speed = float(speed)
        settings = settings or VenueSettings()
        self.instrument = settings.listing(source.instrument)
        self._events = np.concatenate(events)
        self._local = self._events["local_ts"]
        self._range = (max(source.price_lo - PRICE_PAD_TICKS, 0), source.price_hi + PRICE_PAD_TICKS)
        self.sim = settings.sim_config(source.l3, NO_DECISIONS_NS)
        self.ended = False  # the data is used up: no order rests or arrives any more
        self._pos = 0  # events fed to the exchange
        self._replay0 = int(self._local[0])
        self._wall0 = clock()
        self._start_accounts(clock)
        if resume:
            self._restore()

    # -- clocks ------------------------------------------------------------------------------------
    def replay_time(self) -> int:
        """Where the replay is now, in the data's local time."""
        return self._replay0 + int((self._clock() - self._wall0) * self.speed)

    @property
    def now(self) -> int:
        """The venue's clock (replay time); never behind the last event processed."""
        return max(self._ex.now, self.replay_time())

    @property
    def start_price(self) -> float | None:
        """The market's price level where the replay starts, in ticks (for sizing orders)."""
        return price_level(self._events[:START_EVENTS])

    @property
    def exhausted(self) -> bool:
        return self._pos >= len(self._events) and not self._ex.pending_responses()

    # -- the replay --------------------------------------------------------------------------------
    def step(self) -> bool:
        """Replay up to now: feed the events due (and end the market once they are used up), save, then
        hand out events and due responses. False once the data is used up and every response
        delivered."""
        target = self.replay_time()
        end = int(np.searchsorted(self._local, target, side="right"))
        batch = self._events[self._pos : end]
        delivered = self._match(batch)
        self._pos = end
        self._set_now()
        ending = self._pos >= len(self._events) and not self.ended
        if ending:
            self.ended = True
            self._ex.close_market(DATA_ENDED)
        delivered += self._ex.responses()
        if ending:
            self.save()
            if self.on_end is not None:
                self.on_end()  # before the last events and answers: the maker stops deciding first
        self._deliver(batch, delivered)
        return not self.exhausted

    def seconds_to_next(self) -> float:
        """Wall seconds until the next event or response is due (capped, so sends are not held long)."""
        due = []
        if self._pos < len(self._events):
            due.append(int(self._local[self._pos]))
        pending = self._ex.pending_responses()
        if pending:
            due.append(pending[0].deliver_ts)
        if not due:
            return MAX_SLEEP_S
        wait = (min(due) - self.replay_time()) / self.speed / 1e9
        return min(max(wait, 0.0), MAX_SLEEP_S)

    async def run(self) -> None:
        """Drive the replay until the data is used up (or the task is cancelled)."""
        while self.step():
            await asyncio.sleep(self.seconds_to_next())
        self.save()

    # -- durability --------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "pos": self._pos, "replay": self.replay_time(), "wall": self._clock()}

    def _restore(self) -> None:
        blob = self.store.load_paper_state(self.maker_id)
        if blob is None:
            return
        state = pickle.loads(blob)
        ex = self._ex
        if state["pos"]:
            ex.feed(self._events[: state["pos"]], last=True)
            while ex.advance():
                ex.responses()
                if ex.decision_due:
                    ex.schedule_next_decision()
        self._restore_orders(state)
        self._pos = state["pos"]
        self._replay0, self._wall0 = state["replay"], state["wall"]
