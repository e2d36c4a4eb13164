"""When each maker of an engine takes its turn: the engine's scheduler.

A maker's turn (:meth:`quotewise.live.maker.Maker.step`) applies what arrived and decides. The
scheduler says when it runs, for every maker of one engine (one event loop):

- **inline**: in the venue's callback itself, when the engine is idle, within an engine-wide budget
  of such turns a second (:class:`InlineBudget`). Inline saves the task wake-up, the bulk of
  tick-to-quote on an idle engine.
- **soon**: on the event loop's next pass, when the engine is busy; input that piles up meanwhile is
  applied together (coalesced) in that one turn.
- **the lane** (:class:`quotewise.live.lane.Lane`): past the budget, a maker whose decision depends on
  the touch alone (a built-in strategy, no risk engine) hands its updates to the lane, which applies
  every such maker's updates in one compiled call per loop pass and gives a turn only to those whose
  touch moved since they last decided.
- **the task**: a Python strategy decides in the maker's own task (and in a worker thread once it
  proves slow); the scheduler wakes it.

It also keeps idle makers warm (:func:`keep_warm`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from quotewise.live.lane import Lane

if TYPE_CHECKING:
    from quotewise.live.maker import Maker

KEEP_WARM_MAKERS = 8  # at most this many idle makers rehearse per period
KEEP_WARM_FOR_S = 1.0  # a maker with no turn for this long is left to cool (a quiet market costs ~no CPU)


class InlineBudget:
    """How many turns a second may be taken right inside the venue's callback, all makers together.
    Past the budget, makers take their turns on the loop's next pass, where updates that piled up
    coalesce into one decision."""

    def __init__(self, per_second: float = 5_000.0) -> None:
        self.per_second = per_second
        self.tokens = per_second / 10
        self.t = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.per_second / 10, self.tokens + (now - self.t) * self.per_second)
        self.t = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Scheduler:
    """One engine's turns (see the module docstring)."""

    def __init__(self, budget: InlineBudget | None = None, lane: Lane | None = None) -> None:
        """``lane``: where makers that qualify go past the budget (None: they queue for their turn)."""
        self.budget = budget or InlineBudget()
        self.lane = lane
        self._slot: dict[Maker, int] = {}  # makers in the lane
        self._soon: dict[Maker, asyncio.Handle] = {}  # makers with a turn on the loop's next pass
        self._warmer: asyncio.Task | None = None

    # -- membership --------------------------------------------------------------------------------
    def update(self, maker: Maker) -> None:
        """Put ``maker`` in the lane while its decision depends on the touch alone, out of it otherwise
        (called when it starts, changes settings or stops)."""
        if self.lane is None:
            return
        qualifies = maker.touch_only
        slot = self._slot.get(maker)
        if qualifies and slot is None:
            self._slot[maker] = self.lane.join(maker)
        elif not qualifies and slot is not None:
            del self._slot[maker]
            self.lane.leave(slot)

    # -- input -------------------------------------------------------------------------------------
    def behind(self, maker: Maker) -> bool:
        """``maker`` has input not yet applied: a turn scheduled, or updates the lane holds."""
        if maker in self._soon:
            return True
        lane = self.lane
        return lane is not None and not lane.idle and maker in self._slot

    def market(self, maker: Maker, events: np.ndarray) -> None:
        """A market update for ``maker``: a turn on it at once when the engine is idle, else to the lane,
        else queued for the maker's next turn."""
        # the latency path: every call on it costs microseconds on an idle engine (cold caches), so
        # the common case is tested here rather than through behind()
        lane = self.lane
        idle = maker not in self._soon and (lane is None or lane.idle or maker not in self._slot)
        if idle and not maker.stepping and maker.compiled and self.budget.take():
            maker.step(events)  # this update and the decision on it, at once
            return
        slot = self._slot.get(maker)
        if slot is not None:
            self.lane.push(slot, events)
        else:
            maker.queue(events)
            self.input(maker)

    def input(self, maker: Maker) -> None:
        """``maker`` has something new: a built-in strategy takes its turn right here within the
        budget, else on the loop's next pass; a Python strategy's task is woken."""
        if not maker.compiled:
            maker.wake()
        elif maker in self._soon:
            return  # a turn is already scheduled: it takes this input too
        elif not maker.stepping and self.budget.take():
            maker.step()
        else:
            self.soon(maker)

    def touch_moved(self, maker: Maker) -> None:
        """The lane applied updates that moved ``maker``'s touch since it last decided: a turn now, or on
        the loop's next pass when it is in a turn already."""
        if maker in self._soon:
            return
        if maker.stepping:
            self.soon(maker)
        else:
            maker.step()

    def soon(self, maker: Maker) -> None:
        if maker not in self._soon:
            self._soon[maker] = asyncio.get_running_loop().call_soon(self._turn_soon, maker)

    def _turn_soon(self, maker: Maker) -> None:
        del self._soon[maker]
        maker.step()

    def drain_for(self, maker: Maker) -> None:
        """Apply what the lane holds (it may hold some for ``maker``) before ``maker`` decides."""
        if maker in self._slot and not self.lane.idle:
            self.lane.drain()

    def decided(self, maker: Maker, bid: int, ask: int) -> None:
        """``maker`` decided on this touch (ticks): the lane wakes it when the touch leaves it."""
        slot = self._slot.get(maker)
        if slot is not None:
            self.lane.decided_at(slot, bid, ask)

    def unsettled(self, maker: Maker) -> None:
        """``maker``'s orders are not yet what it decided: the lane wakes it on the next update."""
        slot = self._slot.get(maker)
        if slot is not None:
            self.lane.undecided(slot)

    def forget(self, maker: Maker) -> None:
        """``maker`` stopped: no turn is left scheduled for it."""
        handle = self._soon.pop(maker, None)
        if handle is not None:
            handle.cancel()

    # -- keeping idle makers warm ----------------------------------------------------------------------
    def keep_warm(self, makers: Callable[[], Iterable[Maker]], period_s: float) -> None:
        """Start rehearsing idle makers every ``period_s`` (:func:`keep_warm`)."""
        if self._warmer is None:
            self._warmer = asyncio.create_task(keep_warm(makers, period_s), name="keep-warm")

    async def close(self) -> None:
        for handle in self._soon.values():
            handle.cancel()
        self._soon.clear()
        if self._warmer is not None:
            self._warmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warmer
            self._warmer = None


async def keep_warm(makers: Callable[[], Iterable[Maker]], period_s: float) -> None:
    """Every ``period_s``, makers idle that long, but not longer than ``KEEP_WARM_FOR_S``, rehearse
    their decision (:meth:`Maker.rehearse`).

    An idle process loses its code and data from the CPU caches within a millisecond on a shared
    machine, and the first update after a quiet spell pays for it (on the development machine:
    tick-to-quote p50 ~70 us at 50 updates a second against ~30 us kept warm). Rehearsing costs
    about 5% of one CPU while markets move; a busy maker rehearses nothing, and once no maker has
    had a turn for ``KEEP_WARM_FOR_S`` the warmer looks only every tenth of that. asyncio's timers do
    not go below ~1 ms (epoll)."""
    pause = period_s
    while True:
        await asyncio.sleep(pause)
        now = time.perf_counter()
        cooling = (m for m in makers() if now - KEEP_WARM_FOR_S < m.active_at < now - period_s)
        rehearsed = 0
        for maker in itertools.islice(cooling, KEEP_WARM_MAKERS):
            maker.rehearse()
            rehearsed += 1
        quiet = not rehearsed and not any(m.active_at > now - KEEP_WARM_FOR_S for m in makers())
        pause = max(period_s, KEEP_WARM_FOR_S / 10) if quiet else period_s
