"""The simulated venue: the compiled engine's state plus the venue calls a strategy stack makes.

:class:`SimExchange` owns the arrays that :func:`quotewise.sim.loop.run_segment` advances, turns
the engine's response records into :class:`Response` objects, and takes orders and cancels. It has
the same ``place``/``cancel`` shape as a live venue adapter, so the order manager does not know
whether it is trading a replay or a market. It is the only Python code that reads the engine's
registers (``quotewise.sim.records``); everything else asks it by name.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from quotewise.book import core, window
from quotewise.book.orderbook import OrderBook
from quotewise.errors import ConfigError
from quotewise.execution.kernel import LOCAL_DTYPE, best_working
from quotewise.model.events import EVENT_DTYPE
from quotewise.model.fees import ROUNDING
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.quoting.kernel import QUOTE_PARAMS
from quotewise.sim import decide, loop, matching, tape
from quotewise.sim import records as E

QueueModel = Literal["fifo", "risk-averse", "prob"]
BRIDGE_EVENTS = 4_096  # events of a new chunk copied behind the previous chunk's tail (see feed)
QUEUE_CODES = {"fifo": E.FIFO, "risk-averse": E.RISK_AVERSE, "prob": E.PROBABILISTIC}
_RESPONSE_FIELDS = E.RESPONSE_DTYPE.names


def set_fee_registers(freg: np.ndarray, instrument: Instrument) -> np.ndarray:
    """Write the instrument's fee schedule into the float registers :func:`matching.fill_fee` reads."""
    freg[E.F_MAKER_FEE] = instrument.maker_fee
    freg[E.F_TAKER_FEE] = instrument.taker_fee
    freg[E.F_FEE_PROBABILITY] = 1.0 if instrument.fee_curve == "probability" else 0.0
    freg[E.F_FEE_EXPONENT] = instrument.fee_exponent
    freg[E.F_FEE_STEP] = instrument.fee_step
    freg[E.F_FEE_ROUNDING] = ROUNDING[instrument.fee_rounding]
    freg[E.F_PRICE_PER_TICK] = instrument.tick_size
    freg[E.F_SHARES_PER_LOT] = instrument.lot_size * instrument.contract_size
    return freg


@dataclass(frozen=True)
class SimConfig:
    """How the simulated venue behaves: latencies (ns), queue model, decision grid."""

    entry_latency_ns: int = 1_000_000
    response_latency_ns: int = 1_000_000
    feed_latency_ns: int = 0
    queue: QueueModel = "risk-averse"
    queue_power: float = 3.0
    interval_ns: int = 100_000_000
    max_orders: int = 256
    response_buffer: int = 16_384
    partial_fills: bool = True  # False: hftbacktest's no-partial rule, for comparisons only
    # True: a market event at the same exchange time as an order's arrival goes first (hftbacktest's
    # tie rule, for comparisons only; by default the order goes first, docs/fill-rules.md rule 3)
    market_first_on_ties: bool = False
    # decisions fall on origin + k x interval; None: the grid starts at the first event the strategy sees
    decision_origin_ns: int | None = None

    def __post_init__(self) -> None:
        for name in ("entry_latency_ns", "response_latency_ns", "feed_latency_ns"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.interval_ns <= 0:
            raise ConfigError(f"decision interval must be > 0 ns, got {self.interval_ns}")
        if self.queue not in QUEUE_CODES:
            raise ConfigError(f"unknown queue model {self.queue!r}; choose one of {', '.join(QUEUE_CODES)}")
        if self.queue_power <= 0:
            raise ConfigError(f"queue power must be > 0, got {self.queue_power}")


@dataclass(frozen=True)
class CompiledRecord:
    """What a compiled run did, as records (``quotewise.sim.records``): the responses delivered (in
    delivery order), the orders and cancels sent (``ACTION_DTYPE``), the equity samples taken at
    decisions (``SAMPLE_DTYPE``), and the best working quotes when taken (-1: none). The arrays are
    views of the exchange's row logs: read them before the exchange runs again."""

    responses: np.ndarray
    actions: np.ndarray
    samples: np.ndarray
    quote_bid: int
    quote_ask: int


def _raw(rows: np.ndarray) -> np.ndarray:
    """Contiguous records as a (rows, bytes) array: copied as one block."""
    return rows.view(np.uint8).reshape(len(rows), rows.dtype.itemsize)


class RowLog:
    """Rows copied out of an engine buffer until taken, in one array kept from take to take.

    Copying each drained batch and joining the copies at the take moved every row twice through
    freshly allocated memory (14% of a 10M-event run); here a row is copied once, into pages already
    mapped, as raw bytes (numpy copies these records field by field, 14x slower). What :meth:`take`
    returns is a view, valid until the next :meth:`append`.
    """

    def __init__(self, dtype: np.dtype) -> None:
        self.rows = np.zeros(0, dtype)
        self.n = 0

    def append(self, part: np.ndarray) -> None:
        end = self.n + len(part)
        if end > len(self.rows):
            grown = np.empty(max(end, 2 * len(self.rows)), self.rows.dtype)
            _raw(grown)[: self.n] = _raw(self.rows)[: self.n]
            self.rows = grown
        _raw(self.rows)[self.n : end] = _raw(np.ascontiguousarray(part))
        self.n = end

    def take(self) -> np.ndarray:
        out = self.rows[: self.n]
        self.n = 0
        return out


class SimExchange:
    """Engine state for one instrument over a price range known in advance (``lo..hi`` ticks)."""

    def __init__(
        self,
        instrument: Instrument,
        lo_tick: int,
        hi_tick: int,
        config: SimConfig,
        seen_limit: int = 100_000,
    ) -> None:
        self.instrument = instrument
        self.config = config
        # the exchange's book (matching) and the strategy's book (what it has seen, feed-delayed)
        self.xbook = loop.Book(*core.new_book(lo_tick, hi_tick))
        self.vbook = loop.Book(*core.new_book(lo_tick, hi_tick))
        # kept up to date in Python mode only: compiled quoting reads the touch (best_bid/best_ask)
        self.book = OrderBook.over(*self.vbook)
        n = self.xbook.bid.shape[0]
        self.footprint = loop.Footprint(
            np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int32), np.zeros(n, np.int32)
        )
        self.ords = np.zeros(config.max_orders, E.ORDER_DTYPE)
        self.ords["cancel_at"] = -1
        self.local = np.zeros(config.max_orders, LOCAL_DTYPE)  # the strategy side's view of them
        self.reg = np.zeros(E.REG_LEN, np.int64)
        self.freg = np.zeros(E.FREG_LEN, np.float64)
        self.resp = np.zeros(config.response_buffer, E.RESPONSE_DTYPE)
        self.l3 = tape.new_table()  # FIFO: each tape order's arrival sequence and size left
        # a wide exchange book is windowed around its first price (quotewise.book.window), placed at
        # the first chunk; its far levels wait in this log until something needs them
        self.far: np.ndarray | None = None  # None: a plain book (the engine compiles without the window)
        self._window_tried = False
        self.quote_params = np.zeros(1, QUOTE_PARAMS)
        # a model's predictions for compiled quoting: sample times (local ns) and P(up); none by default
        self.signal_t = np.zeros(0, np.int64)
        self.signal_p = np.zeros(0, np.float64)
        self.act = np.zeros(config.response_buffer, E.ACTION_DTYPE)
        self.samples = np.zeros(config.response_buffer, E.SAMPLE_DTYPE)
        reg, freg = self.reg, self.freg
        reg[E.R_INTERVAL] = config.interval_ns
        reg[E.R_ENTRY_LAT] = config.entry_latency_ns
        reg[E.R_RESP_LAT] = config.response_latency_ns
        reg[E.R_FEED_LAT] = config.feed_latency_ns
        reg[E.R_QUEUE] = QUEUE_CODES[config.queue]
        reg[E.R_NEXT_ARRIVAL] = E.INT64_MAX
        reg[E.R_PENDING_WAKE] = E.INT64_MAX
        reg[E.R_MIN_LOTS] = instrument.min_size_lots
        reg[E.R_ORDER_LOTS] = instrument.order_lots
        reg[E.R_PRICE_LO] = 0 if instrument.min_price is None else instrument.to_ticks(instrument.min_price)
        reg[E.R_PRICE_HI] = (
            E.INT64_MAX if instrument.max_price is None else instrument.to_ticks(instrument.max_price)
        )
        reg[E.R_TIMER] = E.INT64_MAX
        if config.decision_origin_ns is not None:
            reg[E.R_STARTED] = 1
            reg[E.R_NEXT_DECISION] = config.decision_origin_ns
        reg[E.R_NEXT_ID] = 1
        reg[E.R_WHOLE_FILLS] = 0 if config.partial_fills else 1
        reg[E.R_MARKET_FIRST] = 1 if config.market_first_on_ties else 0
        reg[E.R_OWN_BID] = -1
        reg[E.R_OWN_ASK] = E.INT64_MAX
        reg[E.R_VIEW_BID] = -1
        reg[E.R_VIEW_ASK] = -1
        set_fee_registers(freg, instrument)
        freg[E.F_VALUE_PER_TICK_LOT] = instrument.value_per_tick_lot
        if instrument.inverse:
            freg[E.F_INVERSE_VALUE] = instrument.inverse_value
            freg[E.F_QUOTE_PER_LOT] = instrument.lot_size * instrument.contract_size
        freg[E.F_MIN_NOTIONAL] = instrument.min_notional
        if instrument.price_band is not None:
            freg[E.F_BAND_DOWN], freg[E.F_BAND_UP] = instrument.price_band
        freg[E.F_QUEUE_POWER] = config.queue_power
        self._events = np.zeros(0, dtype=EVENT_DTYPE)
        self._touch = np.zeros((0, 2), np.int64)  # the exchange's touch after each event
        self._touch_buf = self._touch  # one buffer, reused chunk after chunk
        self._next: np.ndarray | None = None  # a chunk entered through a bridge (see feed)
        self._next_last = True
        self._next_used = 0
        self._bridge_tail = 0
        self._bridge_start = 0
        self.seen_limit = seen_limit
        self._seen_parts: list[np.ndarray] = []
        self._seen_count = 0
        self._seen_mark = 0
        self._pending: deque[Response] = deque()
        self._slot_of: dict[int, int] = {}
        self._terminal_seen: set[int] = set()
        # compiled mode: what the engine delivered, sent and sampled, until taken (see take_compiled)
        self._resp_rows = RowLog(E.RESPONSE_DTYPE)
        self._act_rows = RowLog(E.ACTION_DTYPE)
        self._sample_rows = RowLog(E.SAMPLE_DTYPE)
        self.orders_placed = 0
        self.cancels_sent = 0
        # Python mode: called with the responses the exchange just made, before any is delivered
        # (the paper venue stores its fills then)
        self.on_made: Callable[[list[Response]], None] | None = None

    # -- the event stream -------------------------------------------------------------------------
    def feed(self, events: np.ndarray, last: bool = True) -> None:
        """Hand the engine the next chunk of events (the previous one must be finished).

        With ``last=False`` more chunks follow: the engine holds back what the next chunk could
        still come before. The events one of its two clocks has not reached yet (the tail) go in
        front of the new chunk in a short bridge array; once both clocks are past the tail the
        engine goes on in the chunk itself, so a chunk is never copied. :meth:`end` says that
        nothing more comes.
        """
        if len(events) and not self._window_tried:
            self._window_tried = True  # at the first events, before any is applied
            if window.place(self.xbook.st, events):
                self.far = window.new_log()
        done = self._done()
        if done == len(self._events):
            self._rebase(events, done, last)
            self._next = None
            return
        self._next, self._next_last, self._next_used = events, last, 0
        self._extend_bridge(done)

    def _done(self) -> int:
        """Events of the current array both clocks are past."""
        return int(min(self.reg[E.R_CURSOR], self.reg[E.R_XCURSOR]))

    def _extend_bridge(self, done: int) -> None:
        """The unfinished tail, then the next events of the chunk being fed."""
        tail = self._events[done:]
        k = min(len(self._next) - self._next_used, max(BRIDGE_EVENTS, 2 * len(tail)))
        start = self._next_used
        self._next_used += k
        whole = self._next_used == len(self._next)
        bridge = np.concatenate([tail, self._next[start : self._next_used]])
        self._rebase(bridge, done, self._next_last and whole)
        self._bridge_tail, self._bridge_start = len(tail), start
        if whole:
            self._next = None

    def _leave_bridge(self) -> None:
        """The bridge is used up: go on in the chunk itself, or build a longer bridge."""
        done = self._done()
        if done >= self._bridge_tail:
            start = self._bridge_start + done - self._bridge_tail
            self._rebase(self._next[start:], done, self._next_last)
            self._next = None
        else:
            self._extend_bridge(done)

    def _rebase(self, events: np.ndarray, done: int, last: bool) -> None:
        """Make ``events`` the engine's array; it starts with what followed index ``done`` before."""
        reg = self.reg
        if not self.compiled:
            self._keep_seen(int(reg[E.R_CURSOR]))
            self._seen_mark = int(reg[E.R_CURSOR]) - done
        carried = self._touch[done : int(reg[E.R_XCURSOR])].copy()
        if self._touch_buf.shape[0] < len(events):
            self._touch_buf = np.empty((len(events), 2), np.int64)
        self._touch = self._touch_buf[: len(events)]
        self._touch[: len(carried)] = carried
        self._events = events
        for cursor in (E.R_CURSOR, E.R_XCURSOR, E.R_VIEW_DONE):
            reg[cursor] -= done
        reg[E.R_FINAL] = 1 if last else 0

    def end(self) -> None:
        """No more events: the held-back tail of the last chunk is played out by :meth:`advance`."""
        self.feed(np.zeros(0, dtype=self._events.dtype), last=True)

    def _keep_seen(self, upto: int) -> None:
        """Copy the events the strategy saw since the last hand-out (at most ``seen_limit``)."""
        part = self._events[self._seen_mark : upto][-self.seen_limit :]
        if len(part):
            self._seen_parts.append(part.copy())
            self._seen_count += len(part)
            while self._seen_count - len(self._seen_parts[0]) >= self.seen_limit:
                self._seen_count -= len(self._seen_parts.pop(0))
        self._seen_mark = upto

    def take_seen(self) -> np.ndarray:
        """The market events that became visible to the strategy since the last call (the last
        ``seen_limit`` of them), for flow signals; Python mode. A view while they are all in the
        current array (valid until the next call), else a copy."""
        upto = int(self.reg[E.R_CURSOR])
        if not self._seen_parts:
            out = self._events[self._seen_mark : upto][-self.seen_limit :]
            self._seen_mark = upto
            return out
        self._keep_seen(upto)
        parts, self._seen_parts, self._seen_count = self._seen_parts, [], 0
        if not parts:
            return self._events[:0].copy()
        return (parts[0] if len(parts) == 1 else np.concatenate(parts))[-self.seen_limit :]

    def touch_sizes(self) -> tuple[int, int]:
        """Sizes at the best bid and ask the strategy has seen (0 for an empty side); Python mode."""
        view = self.vbook
        base = int(view.st[core.BASE])
        bb, ba = int(self.reg[E.R_VIEW_BID]), int(self.reg[E.R_VIEW_ASK])
        return (
            int(view.bid[bb - base]) if bb >= 0 else 0,
            int(view.ask[ba - base]) if ba >= 0 else 0,
        )

    def advance(self) -> bool:
        """Run until the strategy must wake (True: a decision, response or timer is due at
        :attr:`now`) or the chunk is used up (False)."""
        while True:
            code = loop.run_segment(  # arrays, not tuples: numba types an array argument in C
                self._events,
                self._touch,
                *self.xbook,
                *self.vbook,
                *self.footprint,
                self.ords,
                self.local,
                self.reg,
                self.freg,
                self.resp,
                self.act,
                self.samples,
                self.l3,
                self.far,
                self.quote_params,
                self.signal_t,
                self.signal_p,
            )
            self._drain()
            if code == E.BUFFER_FULL and tape.is_full(self.l3, self.reg):
                self.l3 = tape.grown(self.l3, self.reg)
            if code == E.BUFFER_FULL and self.far is not None and window.is_full(self.xbook.st, self.far):
                self.far = window.compacted(self.xbook.st, self.far)
            if code == E.CHUNK_END and self._next is not None:
                self._leave_bridge()
            elif code != E.BUFFER_FULL:
                return code == E.WAKE

    @staticmethod
    def _responses_of(rows: np.ndarray) -> list[Response]:
        return [
            Response(
                kind=E.RESPONSE_KINDS[r["kind"]],
                order_id=r["order_id"],
                exch_ts=r["exch_ts"],
                deliver_ts=r["deliver"],
                side=r["side"],
                price=r["price"],
                qty=r["qty"],
                left=r["left"],
                maker=bool(r["maker"]),
                reason=E.REASON_TEXT[r["reason"]],
                position=r["pos"],
                cash=r["cash"],
                fee=r["fee"],
                mid2=r["mid2"],
            )
            for r in (dict(zip(_RESPONSE_FIELDS, row, strict=True)) for row in rows.tolist())
        ]

    def _drain(self) -> None:
        """Empty the engine's buffers into Python.

        Python mode: every response goes to the pending queue, delivered by local time in
        :meth:`responses`. Compiled mode: the engine delivered the first ``R_RESP_DONE`` responses
        itself; raw copies of those, of the actions and of the equity rows are kept (no Python
        object per row) and the undelivered responses stay in the buffer.
        """
        reg = self.reg
        n = int(reg[E.R_RESP_N])
        done = int(reg[E.R_RESP_DONE]) if self.compiled else n
        if done:
            if self.compiled:
                self._resp_rows.append(self.resp[:done])
            else:
                made = self._responses_of(self.resp[:done])
                self._pending.extend(made)
                if self.on_made is not None:
                    self.on_made(made)
            self.resp[: n - done] = self.resp[done:n]
            reg[E.R_RESP_N] = n - done
            reg[E.R_RESP_DONE] = 0
        if reg[E.R_ACT_N]:
            self._act_rows.append(self.act[: reg[E.R_ACT_N]])
            reg[E.R_ACT_N] = 0
        if reg[E.R_EQ_N]:
            self._sample_rows.append(self.samples[: reg[E.R_EQ_N]])
            reg[E.R_EQ_N] = 0
        reg[E.R_PENDING_WAKE] = self._pending[0].deliver_ts if self._pending else E.INT64_MAX

    def take_compiled(self) -> CompiledRecord:
        """What the compiled path did since the last call, as arrays (views: read them before the
        exchange runs again)."""
        self._drain()
        slots = int(self.reg[E.R_SLOTS])
        return CompiledRecord(
            responses=self._resp_rows.take(),
            actions=self._act_rows.take(),
            samples=self._sample_rows.take(),
            quote_bid=int(best_working(self.local, slots, 1)),
            quote_ask=int(best_working(self.local, slots, -1)),
        )

    def finish_compiled(self) -> CompiledRecord:
        """After the last event: responses still in flight happened at the exchange, so they are
        delivered now (as the Python path does), then the rest is taken as by :meth:`take_compiled`."""
        self._drain()
        n = int(self.reg[E.R_RESP_N])
        for k in range(n):
            decide.deliver_response(self.reg, self.ords, self.local, self.resp, k)
            self.resp[k]["at"] = self.reg[E.R_STEP]
            self.reg[E.R_STEP] += 1
        self.reg[E.R_RESP_DONE] = n
        return self.take_compiled()

    @property
    def compiled(self) -> bool:
        return bool(self.reg[E.R_MODE] == E.COMPILED_MODE)

    def use_compiled_quoting(self, params: np.ndarray) -> None:
        """Decide inside the engine with the built-in quoting rule (``quotewise.quoting.kernel``)."""
        if params.dtype != QUOTE_PARAMS or params.shape != (1,):
            raise ConfigError(f"compiled quoting needs one {QUOTE_PARAMS} record, got {params.dtype}")
        self.quote_params[:] = params
        self.reg[E.R_MODE] = E.COMPILED_MODE

    def use_signal(self, times: np.ndarray, p_up: np.ndarray) -> None:
        """A model's predictions for compiled quoting (:mod:`quotewise.intelligence.signal`): at each
        decision the latest one whose sample time (local ns) the strategy has seen."""
        if len(times) != len(p_up) or (len(times) > 1 and np.any(np.diff(times) < 0)):
            raise ConfigError("predictions need one time per value, in time order")
        self.signal_t = np.ascontiguousarray(times, np.int64)
        self.signal_p = np.ascontiguousarray(p_up, np.float64)
        self.reg[E.R_SIGNAL] = 0

    def responses(self) -> list[Response]:
        """Responses whose delivery time has come (local clock ``now``), in order."""
        out = []
        now = self.now
        while self._pending and self._pending[0].deliver_ts <= now:
            r = self._pending.popleft()
            self._on_delivered(r)
            out.append(r)
        if out:
            self.reg[E.R_CHANGED] = 1
        self.reg[E.R_PENDING_WAKE] = self._pending[0].deliver_ts if self._pending else E.INT64_MAX
        return out

    def pending_responses(self) -> list[Response]:
        """Responses produced by the exchange but not yet delivered (e.g. at the end of the data)."""
        return list(self._pending)

    def _on_delivered(self, r: Response) -> None:
        slot = self._slot_of.get(r.order_id)
        if slot is None:
            return
        if r.kind in ("cancel_rejected", "cancelled"):
            self.local[slot]["cancel_out"] = 0
        if r.terminal:
            self._terminal_seen.add(r.order_id)
        if r.order_id in self._terminal_seen and self.local[slot]["cancel_out"] == 0:
            del self._slot_of[r.order_id]
            self.ords[slot]["state"] = E.S_FREE
            self._terminal_seen.discard(r.order_id)

    def close_market(self, reason: str) -> None:
        """The market is over (the replay has no more events): every order of ours still alive is
        answered by the exchange itself, due after the response latency: resting orders cancelled,
        orders in flight rejected, with ``reason``; a cancel in flight for an order already finished
        is refused. The engine works requests off only against market events, so with none left to
        come they are answered here (Python mode)."""
        now = self.now
        made = []
        self._clear_footprint()
        for o in self.ords[: int(self.reg[E.R_SLOTS])]:
            state, cancel_sent = o["state"], o["cancel_at"] >= 0
            o["cancel_at"] = -1
            if state in (E.S_INFLIGHT, E.S_RESTING):
                o["state"] = E.S_DONE
                kind = "cancelled" if state == E.S_RESTING else "rejected"
                made.append(self._closing(kind, o, now, reason))
            elif cancel_sent:
                made.append(self._closing("cancel_rejected", o, now, E.REASON_TEXT[E.REASON_ALREADY_DONE]))
        matching.refresh_own(self.reg, self.ords)
        self.reg[E.R_NEXT_ARRIVAL] = E.INT64_MAX
        self._pending = deque(sorted([*self._pending, *made], key=lambda r: r.deliver_ts))
        self.reg[E.R_PENDING_WAKE] = self._pending[0].deliver_ts if self._pending else E.INT64_MAX

    def _resting_levels(self) -> Iterator[tuple[np.ndarray, int]]:
        """The footprint array and index of each of our resting orders (only these levels are ever
        written from Python: on a wide book the footprint spans millions of ticks, and zeroing it
        whole committed 2 x 160 MB on spot BTCUSDT)."""
        fp, base = self.footprint, int(self.xbook.st[core.BASE])
        for o in self.ords[: int(self.reg[E.R_SLOTS])]:
            if o["state"] == E.S_RESTING:
                yield (fp.mine_bid if o["side"] == 1 else fp.mine_ask), int(o["price"]) - base

    def _clear_footprint(self) -> None:
        """Our resting orders leave the footprint."""
        for mine, i in self._resting_levels():
            mine[i] = 0

    def _closing(self, kind: str, order: np.void, now: int, reason: str) -> Response:
        return Response(
            kind=kind,
            order_id=int(order["id"]),
            exch_ts=now,
            deliver_ts=now + self.config.response_latency_ns,
            side=int(order["side"]),
            price=int(order["price"]),
            qty=0,
            left=int(order["left"]),
            maker=False,
            reason=reason,
            position=self.position_lots,
            cash=self.cash,
            fee=0.0,
            mid2=-1,
        )

    # -- our side of the state, for a venue that must survive a restart ------------------------------
    ORDER_REGS = (E.R_POS, E.R_NEXT_ID, E.R_FILLS, E.R_SLOTS, E.R_LOCAL_POS, E.R_NOW, E.R_NEXT_DECISION)
    ORDER_FREGS = (E.F_CASH, E.F_FEES, E.F_VOLUME, E.F_NOTIONAL)

    def snapshot_orders(self) -> dict:
        """Our orders, accounts and undelivered responses (the market part is the data itself)."""
        return {
            "ords": self.ords.copy(),
            "local": self.local.copy(),
            "regs": {int(k): int(self.reg[k]) for k in self.ORDER_REGS},
            "fregs": {int(k): float(self.freg[k]) for k in self.ORDER_FREGS},
            "pending": list(self._pending),
            "slot_of": dict(self._slot_of),
            "terminal_seen": set(self._terminal_seen),
            "counts": (self.orders_placed, self.cancels_sent),
        }

    def restore_orders(self, snap: dict) -> None:
        """Put back what :meth:`snapshot_orders` saved, on an exchange that has replayed the same
        market events with no orders of ours (Python mode)."""
        if snap["ords"].dtype != E.ORDER_DTYPE:
            raise ConfigError("paper venue state saved by an older Quotewise: it cannot be resumed")
        self._clear_footprint()
        self.ords[:] = snap["ords"]
        self.local[:] = snap["local"]
        for k, v in snap["regs"].items():
            self.reg[k] = v
        for k, v in snap["fregs"].items():
            self.freg[k] = v
        for mine, i in self._resting_levels():
            mine[i] += 1
        base = int(self.xbook.st[core.BASE])
        lo, hi = matching.resting_span(self.reg, self.ords)
        st = self.xbook.st
        if self.far is not None and lo <= hi and (lo - base < st[core.WLO] or hi - base >= st[core.WHI]):
            window.open_window(*self.xbook, self.far)  # an order of ours rests outside the window
        matching.refresh_own(self.reg, self.ords)
        self.reg[E.R_NEXT_ARRIVAL] = matching.next_arrival(self.reg, self.ords)
        self._pending = deque(snap["pending"])
        self._slot_of = dict(snap["slot_of"])
        self._terminal_seen = set(snap["terminal_seen"])
        self.orders_placed, self.cancels_sent = snap["counts"]
        self.reg[E.R_PENDING_WAKE] = self._pending[0].deliver_ts if self._pending else E.INT64_MAX

    def live_orders(self) -> list[tuple[int, int, int, int, int]]:
        """(order id, side, price, size, left) of our orders alive at the exchange (in flight or resting)."""
        live = self.ords[: int(self.reg[E.R_SLOTS])]
        live = live[np.isin(live["state"], (E.S_INFLIGHT, E.S_RESTING))]
        return [tuple(map(int, row)) for row in live[["id", "side", "price", "qty", "left"]].tolist()]

    # -- venue calls --------------------------------------------------------------------------------
    def place(self, side: int, price: int, size: int, post_only: bool = True, reject_reason: int = 0) -> int:
        """Send a limit order (ticks, lots) now; it reaches the exchange after the entry latency."""
        slot = decide.place_order(
            self.reg, self.ords, self.local, self.act, side, price, size, 1 if post_only else 0, reject_reason
        )
        self.reg[E.R_ACT_N] = 0  # in Python mode the order manager keeps the order log
        if slot < 0:
            raise ConfigError(
                f"more than {self.config.max_orders} orders in flight or working; raise max_orders"
            )
        oid = int(self.ords[slot]["id"])
        self._slot_of[oid] = slot
        self.orders_placed += 1
        return oid

    def submit(self, side: int, price: float, size: float, post_only: bool = True) -> int:
        """Place by price and size in instrument units; off-grid orders are rejected by the venue."""
        inst = self.instrument
        reason = E.REASON_NONE
        if not inst.on_tick(price):
            reason = E.REASON_OFF_TICK
        elif not inst.on_lot(size):
            reason = E.REASON_OFF_LOT
        return self.place(side, inst.to_ticks(price), inst.to_lots(size), post_only, reason)

    def cancel(self, order_id: int) -> bool:
        """Request a cancel; False when the order is unknown or a cancel is already on its way."""
        slot = self._slot_of.get(order_id)
        if slot is None:
            return False
        sent = decide.cancel_order(self.reg, self.ords, self.local, self.act, slot)
        self.reg[E.R_ACT_N] = 0
        if sent:
            self.cancels_sent += 1
        return bool(sent)

    # -- what the strategy and the accounts read --------------------------------------------------------
    @property
    def now(self) -> int:
        return int(self.reg[E.R_NOW])

    def set_now(self, local_ts: int) -> None:
        """Move the strategy's clock (a venue driven by wall time: orders sent now leave now)."""
        self.reg[E.R_NOW] = local_ts

    @property
    def next_decision(self) -> int:
        return int(self.reg[E.R_NEXT_DECISION])

    def schedule_next_decision(self) -> None:
        """The strategy decided now: the next decision is one interval later (if anything changes)."""
        self.reg[E.R_NEXT_DECISION] = self.now + self.config.interval_ns
        self.reg[E.R_CHANGED] = 0

    @property
    def decision_due(self) -> bool:
        return self.now >= self.next_decision

    def set_timer(self, local_ts: int | None) -> None:
        """Be woken at ``local_ts`` even if no event or response comes (None cancels the timer)."""
        self.reg[E.R_TIMER] = E.INT64_MAX if local_ts is None else local_ts

    @property
    def timer_due(self) -> bool:
        return self.now >= self.reg[E.R_TIMER]

    @property
    def last_event_exchange(self) -> int:
        """Exchange time of the last market event the strategy has seen."""
        return int(self.reg[E.R_LAST_EXCH])

    @property
    def last_event_local(self) -> int:
        """When the most recent market event became visible to the strategy (local clock)."""
        return int(self.reg[E.R_LAST_LOCAL])

    @property
    def position_lots(self) -> int:
        """Exchange-side position (the truth; the strategy learns it with the response latency)."""
        return int(self.reg[E.R_POS])

    @property
    def cash(self) -> float:
        return float(self.freg[E.F_CASH])

    @property
    def fees(self) -> float:
        return float(self.freg[E.F_FEES])

    @property
    def volume_lots(self) -> float:
        return float(self.freg[E.F_VOLUME])

    @property
    def notional(self) -> float:
        return float(self.freg[E.F_NOTIONAL])

    @property
    def events_processed(self) -> int:
        return int(self.reg[E.R_EVENTS])

    @property
    def fills(self) -> int:
        return int(self.reg[E.R_FILLS])

    def best_bid(self) -> int | None:
        """The best bid the strategy has seen (feed-delayed); None when that side is empty."""
        b = self.reg[E.R_VIEW_BID]
        return None if b < 0 else int(b)

    def best_ask(self) -> int | None:
        a = self.reg[E.R_VIEW_ASK]
        return None if a < 0 else int(a)

    def book_counters(self) -> dict[str, int]:
        st = self.xbook.st
        return {
            "cross_fixes": int(st[core.CROSS_FIXES]),
            "out_of_range": int(st[core.OUT_OF_RANGE]),
            "negative_clamps": int(st[core.NEG_CLAMPS]),
        }
