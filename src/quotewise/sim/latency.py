"""Latency: how long our requests take to reach the exchange and its answers to reach us.

The one place the simulator asks (hftbacktest's ``LatencyModel`` is the example of the seam). The
model so far is constant latency (``--latency-entry``, ``--latency-response``). The event loop
orders the exchange's work on the strategy's clock with :func:`earliest_entry`, the least time a
request can take; a model with varying latency must keep every entry delay at or above it for the
single pass to stay exact (docs/fill-rules.md rule 4).
"""

import numba as nb

from quotewise.sim.records import R_ENTRY_LAT, R_RESP_LAT


@nb.njit(cache=True, inline="always")
def entry_delay(reg, now):
    """How long a request sent at local time ``now`` takes to reach the exchange."""
    return reg[R_ENTRY_LAT]


@nb.njit(cache=True, inline="always")
def response_delay(reg, exch_ts):
    """How long a response the exchange makes at ``exch_ts`` takes to reach the strategy."""
    return reg[R_RESP_LAT]


@nb.njit(cache=True, inline="always")
def earliest_entry(reg):
    """The least time any request takes to reach the exchange (the loop's ordering bound)."""
    return reg[R_ENTRY_LAT]
