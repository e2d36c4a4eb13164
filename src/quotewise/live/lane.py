"""The market-data lane: book updates of many makers applied in one compiled call per loop pass.

A maker quoting with a built-in strategy and no risk engine needs no decision when an update leaves
the touch where it was at its last decision: its quotes depend on the touch, its position and its
settings only, and the last two change only in its own turn (a fill, ``mm config``). So its updates
are copied into one buffer, every book takes its updates in one compiled call, and only the makers
whose touch moved take a turn. At 1,000 instruments a Python turn per update cost ~15 us, most of it
cache misses over a thousand makers' objects; the lane costs a few. An idle engine does not need it:
there a maker takes an update in its own turn at once (the lowest latency), and the lane carries the
updates that arrive past the engine's inline budget.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

from quotewise.book.core import apply_event, best_ask, best_bid
from quotewise.model.events import EVENT_DTYPE

if TYPE_CHECKING:
    from quotewise.live.maker import Maker

NEVER = -2  # a touch no book has (-1 is an empty side): a maker that has not decided yet


@nb.njit(cache=True)
def _queue(buf, slot_of, n, events, slot):
    """Copy ``events`` to ``buf[n:]`` for ``slot``; the new count. (numpy's copy of a structured slice
    cost ~2 us an update, a fifth of a busy loop at 1,000 instruments; this call ~0.5.)"""
    for i in range(len(events)):
        buf[n + i] = events[i]
        slot_of[n + i] = slot
    return n + len(events)


@nb.njit(cache=True)
def _apply_pass(buf, slot_of, n, bids, asks, sts, decided, seen, touched, moved):
    """Apply ``buf[:n]`` (event k to the book of slot ``slot_of[k]``), in order; write to ``moved``
    the slots whose touch now differs from ``decided[slot]`` and return how many."""
    t = 0
    k = 0
    while k < n:
        # an update's events are queued together: its book's arrays are taken from the typed lists
        # once for all of them (each take counts a reference, atomically; taken per event, the pass
        # cost 57 ns an event at 1,000 books, against 34)
        s = slot_of[k]
        bid, ask, st = bids[s], asks[s], sts[s]
        while k < n and slot_of[k] == s:
            e = buf[k]
            apply_event(bid, ask, st, e["kind"], e["side"], e["price"], e["size"])
            k += 1
        if not seen[s]:
            seen[s] = True
            touched[t] = s
            t += 1
    m = 0
    for i in range(t):
        s = touched[i]
        seen[s] = False
        st = sts[s]
        if best_bid(st) != decided[s, 0] or best_ask(st) != decided[s, 1]:
            moved[m] = s
            m += 1
    return m


class Lane:
    """One engine's lane (see the module docstring): makers join with their book and leave when they
    stop or stop qualifying; ``push`` queues an update, drained on the loop's next pass. A lane
    belongs to one event loop."""

    def __init__(self, capacity: int = 4096) -> None:
        self.makers: list[Maker | None] = []
        self._bids = nb.typed.List.empty_list(nb.types.int64[::1])
        self._asks = nb.typed.List.empty_list(nb.types.int64[::1])
        self._sts = nb.typed.List.empty_list(nb.types.int64[::1])
        self.decided = np.full((0, 2), NEVER, np.int64)
        self._seen = np.zeros(0, np.bool_)
        self._touched = np.zeros(0, np.int64)
        self._moved = np.zeros(0, np.int64)
        self._buf = np.zeros(capacity, EVENT_DTYPE)
        self._slot_of = np.zeros(capacity, np.int64)
        self._n = 0
        self._draining = False
        self._soon: asyncio.Handle | None = None

    # -- membership ----------------------------------------------------------------------------------
    def join(self, maker: Maker) -> int:
        """A slot for ``maker``'s book (a free one if any)."""
        book = maker.book
        for slot, member in enumerate(self.makers):
            if member is None:
                self.makers[slot] = maker
                self._bids[slot], self._asks[slot], self._sts[slot] = book.bid, book.ask, book.st
                self.decided[slot] = NEVER
                return slot
        slot = len(self.makers)
        self.makers.append(maker)
        self._bids.append(book.bid)
        self._asks.append(book.ask)
        self._sts.append(book.st)
        if slot >= len(self.decided):
            self._grow_slots(max(16, 2 * len(self.decided)))
        return slot

    def leave(self, slot: int) -> None:
        """Apply what is pending (the maker's book stays current), then free the slot."""
        self.drain()
        self.makers[slot] = None

    def _grow_slots(self, size: int) -> None:
        decided = np.full((size, 2), NEVER, np.int64)
        decided[: len(self.decided)] = self.decided
        self.decided = decided
        self._seen = np.zeros(size, np.bool_)
        self._touched = np.zeros(size, np.int64)
        self._moved = np.zeros(size, np.int64)

    def decided_at(self, slot: int, bid: int, ask: int) -> None:
        """The maker in ``slot`` decided on this touch (ticks): it takes a turn when the touch leaves it."""
        self.decided[slot, 0] = bid
        self.decided[slot, 1] = ask

    def undecided(self, slot: int) -> None:
        """The maker in ``slot`` must take a turn on its next update, whatever the touch."""
        self.decided[slot] = NEVER

    # -- updates -------------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """Nothing queued: a maker may take an update in its own turn without passing older ones."""
        return self._n == 0 and not self._draining

    def push(self, slot: int, events: np.ndarray) -> None:
        """Queue ``events`` for ``slot``'s book, applied on the loop's next pass."""
        n = self._n
        if n + len(events) > len(self._buf):
            self._grow_buffer(n + len(events))
        self._n = _queue(self._buf, self._slot_of, n, events, slot)
        self._schedule()

    def _grow_buffer(self, need: int) -> None:
        size = max(need, 2 * len(self._buf))
        buf = np.zeros(size, EVENT_DTYPE)
        slot_of = np.zeros(size, np.int64)
        buf[: self._n] = self._buf[: self._n]
        slot_of[: self._n] = self._slot_of[: self._n]
        self._buf, self._slot_of = buf, slot_of

    def _schedule(self) -> None:
        if self._soon is None:
            self._soon = asyncio.get_running_loop().call_soon(self._drain_soon)

    def _drain_soon(self) -> None:
        self._soon = None
        self.drain()

    def drain(self) -> None:
        """Apply every queued update; the makers whose touch moved take their turn."""
        if self._draining or self._n == 0:
            return
        n, self._n = self._n, 0
        self._draining = True
        try:
            moved = _apply_pass(
                self._buf,
                self._slot_of,
                n,
                self._bids,
                self._asks,
                self._sts,
                self.decided,
                self._seen,
                self._touched,
                self._moved,
            )
            makers = self.makers
            for slot in self._moved[:moved].tolist():
                maker = makers[slot]
                if maker is not None:
                    maker.touch_moved()
        finally:
            self._draining = False
