"""Fair value from a leading instrument (the USD-M perpetual for spot BTCUSDT): what the compiled
quoting rule centres on with ``lead=FILE`` (docs/models.md, "Fair value from a lead").

    fair(t) = M_lead(t) + B(t),   B(t) = B(t - dt) + a (M_own(t) - M_lead(t) - B(t - dt)),
    a = 1 - 2^(-dt / halflife)

sampled on the strategy's decision grid: ``M`` is each book's mid after every event received (local
time) at or before the sample time, the basis ``B`` an exponential average of the gap between the
two mids (its first value the first gap seen). A move of the lead passes into the fair value at once
and into the basis only over ``halflife``, so while our own book lags the lead the fair value is
ahead of our mid. Sample times are on the local clock; the engine uses a sample once the strategy's
clock has passed it by the feed latency, as it uses a model's predictions.
"""

from __future__ import annotations

import math

import numpy as np

from quotewise.book.orderbook import replay_mids
from quotewise.model.events import EventSource, empty_events

BOOK_PAD_TICKS = 1_000


def all_events(source: EventSource) -> np.ndarray:
    """Every event of ``source`` in one array (read once)."""
    chunks = [c for c in source.chunks() if len(c)]
    return np.concatenate(chunks) if chunks else empty_events(0)


def mids_at(source: EventSource, events: np.ndarray, tick_size: float, times: np.ndarray) -> np.ndarray:
    """The source's mid (price units) after every event of it received at or before each of ``times``
    (NaN while a side is empty or before the first event)."""
    lo = max(source.price_lo - BOOK_PAD_TICKS, 0)
    return replay_mids(events, lo, source.price_hi + BOOK_PAD_TICKS, tick_size, times, "local_ts")


def basis_average(own: np.ndarray, lead: np.ndarray, step_ns: int, halflife_ns: int) -> np.ndarray:
    """The exponential average of ``own - lead`` per grid step (NaN until both are known; a step
    where either is unknown keeps the last value)."""
    a = 1.0 - 2.0 ** (-step_ns / halflife_ns)
    out = np.full(len(own), np.nan)
    basis = math.nan
    for k, gap in enumerate((own - lead).tolist()):
        if not math.isnan(gap):
            basis = gap if math.isnan(basis) else basis + a * (gap - basis)
        out[k] = basis
    return out


def lead_fair_value(
    lead: EventSource,
    lead_tick: float,
    own: EventSource,
    own_tick: float,
    origin_ns: int,
    interval_ns: int,
    halflife_ns: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample times (local ns, ``origin + k x interval`` to the own data's last event) and the fair
    value there in the own instrument's ticks, from the first time it is known."""
    own_events = all_events(own)
    last = int(own_events["local_ts"].max()) if len(own_events) else origin_ns
    times = np.arange(origin_ns, last + interval_ns, interval_ns, dtype=np.int64)
    lead_mid = mids_at(lead, all_events(lead), lead_tick, times)
    own_mid = mids_at(own, own_events, own_tick, times)
    fair = lead_mid + basis_average(own_mid, lead_mid, interval_ns, halflife_ns)
    known = ~np.isnan(fair)
    return times[known], fair[known] / own_tick
