"""The embedded synthetic market: a seedable L3 order-flow simulator, the default backtest data.

Why it exists: every Quotewise backtest must run without downloading anything, and a market maker
tested on it must be able to both earn the spread and lose to adverse selection. The simulator is
therefore a zero-intelligence order book (so queues, spreads and fills behave like a real book)
driven partly by an informed fair value (so prices trend and passive quotes get picked off).

Model (all rates per second of market time, prices in ticks, sizes in lots):

- **Fair value.** A latent price ``v`` follows a jump-diffusion (Merton 1976): a Gaussian random
  walk with ``volatility_ticks`` per square-root second plus jumps at rate ``jump_rate`` with a
  random sign and an exponential size of mean ``jump_mean_ticks`` (capped at ``max_jump_ticks``).
- **Limit orders** arrive at rate ``limit_rate`` (half per side). They are placed around the fair
  value but never through the opposite best: a buy goes to ``ref_b - d`` with
  ``ref_b = min(best_ask - 1, floor(v - fair_half_spread_ticks))`` (a sell symmetrically), so a
  buy at ``d = 0`` may improve the bid inside the spread. The distance ``d`` follows a truncated
  power law ``P(d) ~ (d + 1)^-placement_alpha`` on ``0..placement_max_ticks - 1``, the placement
  profile measured by Bouchaud, Mezard & Potters (2002) and used by Cont, Stoikov & Talreja
  (2010). Sizes are lognormal (median ``limit_size_median``, log-sd ``limit_size_sigma``).
- **Cancellations.** Every resting order is cancelled at rate ``cancel_rate``, so a level with
  ``n`` orders loses them at rate ``n * cancel_rate`` (Smith et al. 2003; Cont et al. 2010). A
  cancellation is partial (``REDUCE`` of a uniform 1..size-1 lots) with probability
  ``reduce_prob`` when the order has two lots or more, else a ``DELETE`` of the whole order.
- **Market orders.** Noise traders send market orders at rate ``market_rate``, buy or sell with
  equal odds and no limit price. Informed traders know ``v``: when it is above the best ask (below
  the best bid) they buy (sell) at rate ``informed_rate * min(1, edge / informed_saturation_ticks)``
  where ``edge`` is how far ``v`` lies beyond that quote, with a limit price of ``v`` (they never
  pay more than it is worth). This is the adverse selection of Glosten & Milgrom (1985) in the
  stale-quote-sniping form of Budish, Cramton & Shim (2015): whoever still rests on the wrong side
  of a fair-value move is picked off, and the book follows the fair value with a short lag. Sizes
  are lognormal (``market_size_*``). A market order walks the book in price-time priority and
  produces one ``EXECUTE`` per resting order it hits (the last one possibly partial), each
  carrying the resting order's id, side and price. It never takes the last lot of a side; an
  informed order that finds nothing at or inside its limit leaves no event.
- **Minimum depth.** When a side holds fewer than ``min_side_orders`` orders, liquidity providers
  refill it (one ordinary placement per event, same timestamp) before anything else happens, so
  after the opening build-up neither side is ever empty and the book never crosses.
- **Event times.** The competing Poisson processes are simulated with the Gillespie (1977)
  algorithm: the next event comes after an exponential wait at the summed rate (rates are held
  at their values at the previous event, the fair value moves over the wait), its type is drawn
  in proportion to its rate.
  ``exch_ts`` is int64 nanoseconds from ``start_ns`` (non-decreasing; the executions of one market
  order share a timestamp), ``local_ts = exch_ts + feed_delay_ns``.
- **Opening.** The stream starts with ``initial_orders_per_side`` ADDs per side (alternating,
  first a bid) at ``start_ns``: the book is pure L3 from the first event, no SET/CLEAR.

Bounded state: orders live in a fixed pool of ``max_orders`` slots (free list; a dense list of live
slots makes a uniform draw among resting orders O(1)). When the pool is full an arriving order
first displaces a random order of the fuller side (emitted as ``DELETE``). Price levels are FIFO
linked lists over a dense window of ``window_ticks`` ticks; when the mid leaves the middle half of
the window it is recentred on the mid, orders falling outside are deleted (``DELETE`` events)
and placements beyond the window edge are moved onto the edge; both are counted in the report and
do not happen with the defaults in any realistic run.

Randomness comes from xoshiro256** (Blackman & Vigna 2021) seeded by splitmix64 (Steele, Lea &
Flood 2014), held in the simulator state: a seed gives byte-identical output, and the stream cut
into chunks of any size equals the one-shot stream.

Defaults are tuned to a liquid stock near 100.00 with a one-cent tick: about 1,500 events per
second, one- or two-tick spreads, ~75 lots at the touch, ~1.5 ticks of mid volatility per second,
and resting orders that on average keep only a fraction of the half-spread after the trade.

References: Bouchaud, Mezard & Potters, Quantitative Finance 2 (2002) 251-256; Budish, Cramton &
Shim, Quarterly J. Economics 130 (2015) 1547-1621; Cont, Stoikov & Talreja, Operations Research 58
(2010) 549-563; Smith, Farmer, Gillemot & Krishnamurthy, Quantitative Finance 3 (2003) 481-514;
Glosten & Milgrom, J. Financial Economics 14 (1985) 71-100; Merton, J. Financial Economics 3
(1976) 125-144; Gillespie, J. Physical Chemistry 81 (1977) 2340-2361; Blackman & Vigna, ACM TOMS
47 (2021) 36; Steele, Lea & Flood, OOPSLA 2014 (splitmix).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numba as nb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quotewise.data.store import EventData
from quotewise.errors import ConfigError
from quotewise.model.events import ADD, ASK, BID, CLEAR, DELETE, EVENT_DTYPE, EXECUTE, REDUCE, EventKind
from quotewise.model.instrument import Instrument

SYNTH_INSTRUMENT = Instrument(
    symbol="SYNTH",
    venue="synthetic",
    tick_size=0.01,
    lot_size=1,
    maker_fee=0.0,
    taker_fee=0.0,
    base="SYNTH",
    quote="USD",
    size_unit="units",
)


class SyntheticParams(BaseModel):
    """Every knob of the synthetic market; the defaults give a liquid large-tick stock near 100.00."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    start_price_ticks: int = Field(10_000, ge=1, description="initial fair value, in ticks (100.00)")
    start_ns: int = Field(
        1_704_205_800_000_000_000, ge=0, description="exchange time of the first event, ns since epoch"
    )
    feed_delay_ns: int = Field(0, ge=0, description="local_ts - exch_ts, a fixed feed latency in ns")
    limit_rate: float = Field(700.0, gt=0, description="limit-order arrivals per second, both sides")
    market_rate: float = Field(20.0, ge=0, description="noise market orders per second")
    informed_rate: float = Field(
        150.0, ge=0, description="informed market orders per second at full mispricing"
    )
    informed_saturation_ticks: float = Field(
        1.0, gt=0, description="mispricing beyond the best quote at which informed flow is full"
    )
    cancel_rate: float = Field(2.5, gt=0, description="cancellation rate of each resting order, per second")
    reduce_prob: float = Field(0.15, ge=0, le=1, description="share of cancellations that are partial")
    fair_half_spread_ticks: float = Field(
        0.6, ge=0, description="offset of the best limit-order price from the fair value"
    )
    placement_alpha: float = Field(1.0, gt=0, description="power-law exponent of placement distances")
    placement_max_ticks: int = Field(
        40, ge=1, description="limit orders are placed at most this many ticks behind the reference"
    )
    volatility_ticks: float = Field(1.5, ge=0, description="fair-value diffusion, ticks per sqrt(second)")
    jump_rate: float = Field(0.02, ge=0, description="fair-value jumps per second")
    jump_mean_ticks: float = Field(4.0, gt=0, description="mean absolute jump size, ticks")
    max_jump_ticks: float = Field(50.0, gt=0, description="largest jump, ticks")
    limit_size_median: float = Field(4.0, ge=1, description="median limit-order size, lots")
    limit_size_sigma: float = Field(0.8, ge=0, description="log-standard deviation of limit-order sizes")
    market_size_median: float = Field(4.0, ge=1, description="median market-order size, lots")
    market_size_sigma: float = Field(1.0, ge=0, description="log-standard deviation of market-order sizes")
    max_order_lots: int = Field(1_000, ge=1, description="largest limit order, lots")
    max_market_lots: int = Field(2_000, ge=1, description="largest market order, lots")
    min_side_orders: int = Field(10, ge=2, description="a side thinner than this is refilled at once")
    initial_orders_per_side: int = Field(150, ge=1, description="orders per side in the opening book")
    max_orders: int = Field(65_536, ge=64, description="order-pool capacity (bounds the simulator's memory)")
    window_ticks: int = Field(4_096, ge=64, description="width of the dense price window the book lives in")

    @model_validator(mode="after")
    def _consistent(self) -> SyntheticParams:
        if self.initial_orders_per_side < self.min_side_orders:
            raise ValueError(
                f"initial_orders_per_side ({self.initial_orders_per_side}) must be at least "
                f"min_side_orders ({self.min_side_orders})"
            )
        if 4 * self.initial_orders_per_side > self.max_orders:
            raise ValueError(
                f"max_orders ({self.max_orders}) must be at least 4 x initial_orders_per_side "
                f"({4 * self.initial_orders_per_side})"
            )
        if self.window_ticks < 8 * (self.placement_max_ticks + 1):
            raise ValueError(
                f"window_ticks ({self.window_ticks}) must be at least 8 x (placement_max_ticks + 1) "
                f"= {8 * (self.placement_max_ticks + 1)}"
            )
        if self.start_price_ticks <= self.window_ticks:
            raise ValueError(
                f"start_price_ticks ({self.start_price_ticks}) must exceed window_ticks "
                f"({self.window_ticks}) so that prices stay positive"
            )
        if self.max_jump_ticks < self.jump_mean_ticks:
            raise ValueError(
                f"max_jump_ticks ({self.max_jump_ticks}) must be at least jump_mean_ticks "
                f"({self.jump_mean_ticks})"
            )
        return self


def make_params(params: SyntheticParams | None = None, **overrides: Any) -> SyntheticParams:
    """Validated parameters; a bad value raises :class:`ConfigError` naming the field and the rule."""
    try:
        if params is None:
            return SyntheticParams(**overrides)
        return SyntheticParams(**{**params.model_dump(), **overrides}) if overrides else params
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "parameters"
            lines.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid synthetic market parameters: " + "; ".join(lines)) from None


# ---------------------------------------------------------------------------------------------
# Simulator state, as plain arrays so numba can carry it from one chunk to the next:
#   fp / ip   float and integer parameters
#   ist / fst integer and float state (clock, ids, window, best indices, counters; fair value)
#   pool      (max_orders, 6) order slots: id, size, price, side, FIFO prev, FIFO next
#   lists     (3, max_orders): free-slot stack, dense list of live slots, each slot's place in it
#   lv        (2, 2, window): FIFO head / tail slot of every (side, price) level, -1 when empty
#   rng       xoshiro256** state; cdf: placement-distance distribution; pend: overflow events

FP_LIMIT_RATE = 0
FP_MARKET_RATE = 1
FP_INFORMED_RATE = 2
FP_INF_SAT = 3
FP_CANCEL_RATE = 4
FP_REDUCE_PROB = 5
FP_HALF_SPREAD = 6
FP_VOL = 7
FP_JUMP_RATE = 8
FP_JUMP_MEAN = 9
FP_JUMP_MAX = 10
FP_LIM_MU = 11
FP_LIM_SIG = 12
FP_MKT_MU = 13
FP_MKT_SIG = 14
FP_LEN = 15

IP_MIN_SIDE = 0
IP_MAX_ORDER_LOTS = 1
IP_MAX_MKT_LOTS = 2
IP_FEED_DELAY = 3
IP_WINDOW = 4
IP_LEN = 5

S_T = 0  # exchange time of the current event, ns
S_NEXT_ID = 1
S_BASE = 2  # tick of window index 0
S_BB = 3  # best bid window index, -1 when the side is empty
S_BA = 4  # best ask window index, window when the side is empty
S_NLIVE = 5
S_NORD_B = 6
S_NORD_A = 7
S_LOTS_B = 8
S_LOTS_A = 9
S_FREE_N = 10
S_PEND_HEAD = 11
S_PEND_N = 12
S_INIT_LEFT = 13
S_HAS_SPARE = 14
S_RECENTRES = 15
S_RECENTRE_DELETES = 16
S_CLAMPED = 17
S_REFILLS = 18
S_JUMPS = 19
S_NOISE_MO = 20
S_INFORMED_MO = 21
S_DISPLACED = 22
S_LEN = 23

SF_V = 0  # fair value, ticks
SF_SPARE = 1  # second normal deviate of the last Box-Muller pair
SF_LEN = 2

O_ID = 0
O_SIZE = 1
O_PRICE = 2
O_SIDE = 3
O_PREV = 4
O_NEXT = 5
O_LEN = 6

L_FREE = 0
L_LIVE = 1
L_LPOS = 2

_STATE_COUNTERS = {
    "recentres": S_RECENTRES,
    "recentre_deletes": S_RECENTRE_DELETES,
    "clamped_placements": S_CLAMPED,
    "refills": S_REFILLS,
    "jumps": S_JUMPS,
    "noise_market_orders": S_NOISE_MO,
    "informed_market_orders": S_INFORMED_MO,
    "displaced_orders": S_DISPLACED,
}

_U64_MASK = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------
# Random numbers: xoshiro256** seeded by splitmix64, state in a uint64[4] array.


def _splitmix64_seed(seed: int) -> np.ndarray:
    """Four well-mixed 64-bit words from one integer seed (splitmix64)."""
    x = seed & _U64_MASK
    out = np.empty(4, np.uint64)
    for i in range(4):
        x = (x + 0x9E3779B97F4A7C15) & _U64_MASK
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64_MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64_MASK
        out[i] = z ^ (z >> 31)
    return out


@nb.njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@nb.njit(cache=True, inline="always")
def _next_u64(rng):
    s0 = rng[0]
    s1 = rng[1]
    s2 = rng[2]
    s3 = rng[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    rng[0] = s0
    rng[1] = s1
    rng[2] = s2
    rng[3] = s3
    return result


@nb.njit(cache=True, inline="always")
def _uniform(rng):
    """Uniform on the open interval (0, 1): safe for log()."""
    return (np.float64(_next_u64(rng) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True, inline="always")
def _normal(rng, ist, fst):
    """Standard normal by Box-Muller, the second deviate of each pair kept in the state."""
    if ist[S_HAS_SPARE] == 1:
        ist[S_HAS_SPARE] = 0
        return fst[SF_SPARE]
    r = math.sqrt(-2.0 * math.log(_uniform(rng)))
    a = 2.0 * math.pi * _uniform(rng)
    fst[SF_SPARE] = r * math.sin(a)
    ist[S_HAS_SPARE] = 1
    return r * math.cos(a)


@nb.njit(cache=True, inline="always")
def _lognormal_lots(rng, ist, fst, mu, sig, cap):
    """A lognormal size rounded to whole lots in ``1..cap`` (capped before the int conversion)."""
    x = math.exp(mu + sig * _normal(rng, ist, fst)) + 0.5
    if x >= cap:
        return cap
    return max(int(x), 1)


# ---------------------------------------------------------------------------------------------
# Event output: straight into the caller's array; what the last step of a call produces beyond
# its end goes to the pending ring and opens the next call.


@nb.njit(cache=True, inline="always")
def _emit(out, pos, pend, ist, ip, kind, side, price, size, oid):
    if pos < out.shape[0]:
        r = out[pos]
        pos += 1
    else:
        j = ist[S_PEND_HEAD] + ist[S_PEND_N]
        if j >= pend.shape[0]:
            j -= pend.shape[0]
        r = pend[j]
        ist[S_PEND_N] += 1
    t = ist[S_T]
    r["exch_ts"] = t
    r["local_ts"] = t + ip[IP_FEED_DELAY]
    r["price"] = price
    r["size"] = size
    r["order_id"] = oid
    r["kind"] = kind
    r["side"] = side
    return pos


# ---------------------------------------------------------------------------------------------
# Order pool and FIFO levels (side index 0 bid, 1 ask).


@nb.njit(cache=True, inline="always")
def _remove(k, ist, ip, pool, lists, lv):
    """Take slot ``k`` off its level, the live list and the side totals; return it to the pool."""
    si = 0 if pool[k, O_SIDE] == BID else 1
    idx = pool[k, O_PRICE] - ist[S_BASE]
    p = pool[k, O_PREV]
    n = pool[k, O_NEXT]
    if p >= 0:
        pool[p, O_NEXT] = n
    else:
        lv[0, si, idx] = n
    if n >= 0:
        pool[n, O_PREV] = p
    else:
        lv[1, si, idx] = p
    if si == 0:
        ist[S_NORD_B] -= 1
        ist[S_LOTS_B] -= pool[k, O_SIZE]
        if n < 0 and p < 0 and idx == ist[S_BB]:
            i = idx - 1
            while i >= 0 and lv[0, 0, i] < 0:
                i -= 1
            ist[S_BB] = i
    else:
        ist[S_NORD_A] -= 1
        ist[S_LOTS_A] -= pool[k, O_SIZE]
        if n < 0 and p < 0 and idx == ist[S_BA]:
            w = ip[IP_WINDOW]
            i = idx + 1
            while i < w and lv[0, 1, i] < 0:
                i += 1
            ist[S_BA] = i
    last = lists[L_LIVE, ist[S_NLIVE] - 1]
    at = lists[L_LPOS, k]
    lists[L_LIVE, at] = last
    lists[L_LPOS, last] = at
    ist[S_NLIVE] -= 1
    lists[L_FREE, ist[S_FREE_N]] = k
    ist[S_FREE_N] += 1


@nb.njit(cache=True, inline="always")
def _random_live(rng, ist, lists):
    """A uniformly drawn resting order: drawing it cancels each order at the same rate."""
    return lists[L_LIVE, int(_uniform(rng) * ist[S_NLIVE])]


@nb.njit(cache=True)
def _displace(out, pos, pend, ist, ip, rng, pool, lists, lv):
    """Pool full: delete a random order of the fuller side to make room (two draws on average)."""
    fuller = BID if ist[S_NORD_B] >= ist[S_NORD_A] else ASK
    k = _random_live(rng, ist, lists)
    while pool[k, O_SIDE] != fuller:
        k = _random_live(rng, ist, lists)
    pos = _emit(out, pos, pend, ist, ip, DELETE, fuller, pool[k, O_PRICE], pool[k, O_SIZE], pool[k, O_ID])
    _remove(k, ist, ip, pool, lists, lv)
    ist[S_DISPLACED] += 1
    return pos


@nb.njit(cache=True, inline="always")
def _place(side, out, pos, pend, ist, ip, fst, fp, rng, cdf, pool, lists, lv):
    """One limit order on ``side`` around the fair value, never through the opposite best."""
    if ist[S_FREE_N] == 0:
        pos = _displace(out, pos, pend, ist, ip, rng, pool, lists, lv)
    w = ip[IP_WINDOW]
    base = ist[S_BASE]
    d = np.searchsorted(cdf, _uniform(rng), side="right")
    if side == BID:
        si = 0
        idx = math.floor(fst[SF_V] - fp[FP_HALF_SPREAD]) - base
        if ist[S_BA] < w:
            idx = min(idx, ist[S_BA] - 1)
        idx -= d
    else:
        si = 1
        idx = math.ceil(fst[SF_V] + fp[FP_HALF_SPREAD]) - base
        if ist[S_BB] >= 0:
            idx = max(idx, ist[S_BB] + 1)
        idx += d
    if idx < 0 or idx >= w:  # beyond the window edge: moved onto it (away from the touch)
        idx = 0 if idx < 0 else w - 1
        ist[S_CLAMPED] += 1
    size = _lognormal_lots(rng, ist, fst, fp[FP_LIM_MU], fp[FP_LIM_SIG], ip[IP_MAX_ORDER_LOTS])
    ist[S_FREE_N] -= 1
    k = lists[L_FREE, ist[S_FREE_N]]
    oid = ist[S_NEXT_ID]
    ist[S_NEXT_ID] += 1
    t = lv[1, si, idx]
    pool[k, O_ID] = oid
    pool[k, O_SIZE] = size
    pool[k, O_PRICE] = base + idx
    pool[k, O_SIDE] = side
    pool[k, O_PREV] = t
    pool[k, O_NEXT] = -1
    if t >= 0:
        pool[t, O_NEXT] = k
    else:
        lv[0, si, idx] = k
    lv[1, si, idx] = k
    lists[L_LPOS, k] = ist[S_NLIVE]
    lists[L_LIVE, ist[S_NLIVE]] = k
    ist[S_NLIVE] += 1
    if si == 0:
        ist[S_NORD_B] += 1
        ist[S_LOTS_B] += size
        ist[S_BB] = max(ist[S_BB], idx)
    else:
        ist[S_NORD_A] += 1
        ist[S_LOTS_A] += size
        ist[S_BA] = min(ist[S_BA], idx)
    return _emit(out, pos, pend, ist, ip, ADD, side, base + idx, size, oid)


@nb.njit(cache=True, inline="always")
def _market(resting, limit_idx, out, pos, pend, ist, ip, fst, fp, rng, pool, lists, lv):
    """A market order against ``resting``: FIFO walk, one EXECUTE per order hit.

    It stops at the last lot of the side (the book never empties) and at ``limit_idx``: an
    informed order does not trade through the fair value.
    """
    qty = _lognormal_lots(rng, ist, fst, fp[FP_MKT_MU], fp[FP_MKT_SIG], ip[IP_MAX_MKT_LOTS])
    si = 0 if resting == BID else 1
    qty = min(qty, ist[S_LOTS_B + si] - 1)
    while qty > 0:
        best = ist[S_BB + si]
        if (best < limit_idx) if si == 0 else (best > limit_idx):
            break
        k = lv[0, si, best]
        fill = min(pool[k, O_SIZE], qty)
        pos = _emit(out, pos, pend, ist, ip, EXECUTE, resting, pool[k, O_PRICE], fill, pool[k, O_ID])
        qty -= fill
        if fill == pool[k, O_SIZE]:
            _remove(k, ist, ip, pool, lists, lv)
        else:
            pool[k, O_SIZE] -= fill
            ist[S_LOTS_B + si] -= fill
    return pos


@nb.njit(cache=True, inline="always")
def _cancel(out, pos, pend, ist, ip, fp, rng, pool, lists, lv):
    """Cancel (part of) a uniformly drawn resting order."""
    k = _random_live(rng, ist, lists)
    size = pool[k, O_SIZE]
    side = pool[k, O_SIDE]
    if size >= 2 and _uniform(rng) < fp[FP_REDUCE_PROB]:
        cut = 1 + int(_uniform(rng) * (size - 1))
        pool[k, O_SIZE] = size - cut
        ist[S_LOTS_B if side == BID else S_LOTS_A] -= cut
        return _emit(out, pos, pend, ist, ip, REDUCE, side, pool[k, O_PRICE], cut, pool[k, O_ID])
    pos = _emit(out, pos, pend, ist, ip, DELETE, side, pool[k, O_PRICE], size, pool[k, O_ID])
    _remove(k, ist, ip, pool, lists, lv)
    return pos


@nb.njit(cache=True)
def _recentre(out, pos, pend, ist, ip, pool, lists, lv):
    """Centre the window on the mid; orders that fall outside it are deleted."""
    w = ip[IP_WINDOW]
    shift = (ist[S_BB] + ist[S_BA]) // 2 - w // 2
    keep_lo = max(shift, 0)  # old indices that stay in the window: keep_lo .. keep_hi - 1
    keep_hi = min(w + shift, w)
    for si in range(2):
        for idx in range(w):
            if keep_lo <= idx < keep_hi:
                continue
            while lv[0, si, idx] >= 0:
                k = lv[0, si, idx]
                pos = _emit(
                    out, pos, pend, ist, ip, DELETE, pool[k, O_SIDE], pool[k, O_PRICE], pool[k, O_SIZE],
                    pool[k, O_ID],
                )  # fmt: skip
                _remove(k, ist, ip, pool, lists, lv)
                ist[S_RECENTRE_DELETES] += 1
    for end in range(2):
        for si in range(2):
            if shift > 0:
                for i in range(w):
                    lv[end, si, i] = lv[end, si, i + shift] if i + shift < w else -1
            else:
                for i in range(w - 1, -1, -1):
                    lv[end, si, i] = lv[end, si, i + shift] if i + shift >= 0 else -1
    ist[S_BASE] += shift
    ist[S_BB] -= shift
    ist[S_BA] -= shift
    ist[S_RECENTRES] += 1
    return pos


PLACE = 0
MARKET = 1
CANCEL = 2


@nb.njit(cache=True, inline="always")
def _step(out, pos, pend, ist, ip, fst, fp, rng, cdf, pool, lists, lv):
    """Advance the market by one arrival (or one opening / refill order)."""
    w = ip[IP_WINDOW]
    action = PLACE
    limit_idx = 0  # set for market orders only
    thin_b = ist[S_NORD_B] < ip[IP_MIN_SIDE]
    if ist[S_INIT_LEFT] > 0:
        side = BID if ist[S_INIT_LEFT] % 2 == 0 else ASK
        ist[S_INIT_LEFT] -= 1
    elif thin_b or ist[S_NORD_A] < ip[IP_MIN_SIDE]:
        side = BID if thin_b else ASK
        ist[S_REFILLS] += 1
    else:
        # informed traders snipe quotes left on the wrong side of the fair value
        edge_buy = fst[SF_V] - (ist[S_BASE] + ist[S_BA])
        edge = max(edge_buy, ist[S_BASE] + ist[S_BB] - fst[SF_V])
        r_lim = fp[FP_LIMIT_RATE]
        r_mkt = fp[FP_MARKET_RATE]
        r_inf = fp[FP_INFORMED_RATE] * min(1.0, edge / fp[FP_INF_SAT]) if edge > 0.0 else 0.0
        total = r_lim + r_mkt + r_inf + fp[FP_CANCEL_RATE] * ist[S_NLIVE]

        dt = -math.log(_uniform(rng)) / total
        ist[S_T] += int(dt * 1e9)
        fst[SF_V] += fp[FP_VOL] * math.sqrt(dt) * _normal(rng, ist, fst)
        if fp[FP_JUMP_RATE] > 0.0 and _uniform(rng) < -math.expm1(-fp[FP_JUMP_RATE] * dt):
            jump = min(-fp[FP_JUMP_MEAN] * math.log(_uniform(rng)), fp[FP_JUMP_MAX])
            fst[SF_V] += jump if _uniform(rng) < 0.5 else -jump
            ist[S_JUMPS] += 1

        x = _uniform(rng) * total
        if x < r_lim:
            side = BID if x < 0.5 * r_lim else ASK
        elif x < r_lim + r_mkt:
            action = MARKET
            side = ASK if x < r_lim + 0.5 * r_mkt else BID  # the resting side hit
            limit_idx = w if side == ASK else -1  # noise orders have no limit price
            ist[S_NOISE_MO] += 1
        elif x < r_lim + r_mkt + r_inf:
            action = MARKET
            if edge_buy > 0.0:  # buy, paying at most the fair value
                side = ASK
                limit_idx = math.floor(fst[SF_V]) - ist[S_BASE]
            else:
                side = BID
                limit_idx = math.ceil(fst[SF_V]) - ist[S_BASE]
            ist[S_INFORMED_MO] += 1
        else:
            action = CANCEL
            side = BID  # unused: a cancellation draws its order, which carries its side

    if action == PLACE:
        pos = _place(side, out, pos, pend, ist, ip, fst, fp, rng, cdf, pool, lists, lv)
    elif action == MARKET:
        pos = _market(side, limit_idx, out, pos, pend, ist, ip, fst, fp, rng, pool, lists, lv)
    else:
        pos = _cancel(out, pos, pend, ist, ip, fp, rng, pool, lists, lv)

    mid_idx = (ist[S_BB] + ist[S_BA]) // 2
    if ist[S_BB] >= 0 and ist[S_BA] < w and (mid_idx < w // 4 or mid_idx > w - w // 4):
        pos = _recentre(out, pos, pend, ist, ip, pool, lists, lv)
    return pos


@nb.njit(cache=True)
def _fill(out, pend, ist, ip, fst, fp, rng, cdf, pool, lists, lv):
    """Fill ``out`` completely: first what the previous call's last step left over, then new steps."""
    n = out.shape[0]
    cap = pend.shape[0]
    pos = 0
    while pos < n and ist[S_PEND_N] > 0:
        out[pos] = pend[ist[S_PEND_HEAD]]
        pos += 1
        ist[S_PEND_HEAD] = ist[S_PEND_HEAD] + 1 if ist[S_PEND_HEAD] + 1 < cap else 0
        ist[S_PEND_N] -= 1
    if ist[S_PEND_N] == 0:
        ist[S_PEND_HEAD] = 0
    while pos < n:
        pos = _step(out, pos, pend, ist, ip, fst, fp, rng, cdf, pool, lists, lv)


class SyntheticMarket:
    """The simulator with its whole state; successive :meth:`generate` calls continue one stream."""

    def __init__(self, seed: int = 0, params: SyntheticParams | None = None, **overrides: Any) -> None:
        p = make_params(params, **overrides)
        self.params = p
        self.seed = int(seed)
        w = p.window_ticks
        cap = p.max_orders
        fp = np.zeros(FP_LEN, np.float64)
        fp[FP_LIMIT_RATE] = p.limit_rate
        fp[FP_MARKET_RATE] = p.market_rate
        fp[FP_INFORMED_RATE] = p.informed_rate
        fp[FP_INF_SAT] = p.informed_saturation_ticks
        fp[FP_CANCEL_RATE] = p.cancel_rate
        fp[FP_REDUCE_PROB] = p.reduce_prob
        fp[FP_HALF_SPREAD] = p.fair_half_spread_ticks
        fp[FP_VOL] = p.volatility_ticks
        fp[FP_JUMP_RATE] = p.jump_rate
        fp[FP_JUMP_MEAN] = p.jump_mean_ticks
        fp[FP_JUMP_MAX] = p.max_jump_ticks
        fp[FP_LIM_MU] = math.log(p.limit_size_median)
        fp[FP_LIM_SIG] = p.limit_size_sigma
        fp[FP_MKT_MU] = math.log(p.market_size_median)
        fp[FP_MKT_SIG] = p.market_size_sigma
        ip = np.zeros(IP_LEN, np.int64)
        ip[IP_MIN_SIDE] = p.min_side_orders
        ip[IP_MAX_ORDER_LOTS] = p.max_order_lots
        ip[IP_MAX_MKT_LOTS] = p.max_market_lots
        ip[IP_FEED_DELAY] = p.feed_delay_ns
        ip[IP_WINDOW] = w
        ist = np.zeros(S_LEN, np.int64)
        ist[S_T] = p.start_ns
        ist[S_NEXT_ID] = 1
        ist[S_BASE] = p.start_price_ticks - w // 2
        ist[S_BB] = -1
        ist[S_BA] = w
        ist[S_FREE_N] = cap
        ist[S_INIT_LEFT] = 2 * p.initial_orders_per_side
        fst = np.zeros(SF_LEN, np.float64)
        fst[SF_V] = float(p.start_price_ticks)
        weights = (np.arange(p.placement_max_ticks, dtype=np.float64) + 1.0) ** -p.placement_alpha
        cdf = np.cumsum(weights) / weights.sum()
        cdf[-1] = 1.0
        lists = np.zeros((3, cap), np.int64)
        lists[L_FREE] = np.arange(cap - 1, -1, -1)  # slot 0 is handed out first
        self._fp, self._ip, self._ist, self._fst, self._cdf, self._lists = fp, ip, ist, fst, cdf, lists
        self._rng = _splitmix64_seed(self.seed)
        self._pool = np.zeros((cap, O_LEN), np.int64)
        self._lv = np.full((2, 2, w), -1, np.int64)
        # one step emits at most a displacement and an ADD or one market order's executions (a lot
        # each at least), then perhaps a recentring's deletions (at most every resting order)
        self._pend = np.zeros(cap + p.max_market_lots + 2, EVENT_DTYPE)

    def generate(self, n_events: int) -> np.ndarray:
        """The next ``n_events`` events of the stream."""
        out = np.zeros(int(n_events), EVENT_DTYPE)  # zeroed padding: same seed, same bytes
        if n_events > 0:
            _fill(
                out, self._pend, self._ist, self._ip, self._fst, self._fp, self._rng, self._cdf,
                self._pool, self._lists, self._lv,
            )  # fmt: skip
        return out

    @property
    def fair_value(self) -> float:
        """The latent fair value now, in ticks (what informed traders know)."""
        return float(self._fst[SF_V])

    def counters(self) -> dict[str, int]:
        """What the simulator did besides plain arrivals (refills, recentring, jumps...)."""
        return {name: int(self._ist[idx]) for name, idx in _STATE_COUNTERS.items()}


def _check_counts(n_events: int, chunk_size: int = 1) -> None:
    if n_events < 0:
        raise ConfigError(f"n_events must be >= 0, got {n_events}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")


def iter_synthetic_chunks(
    n_events: int,
    seed: int = 0,
    chunk_size: int = 1_000_000,
    params: SyntheticParams | None = None,
    **overrides: Any,
) -> Iterator[np.ndarray]:
    """Stream ``n_events`` events in arrays of ``chunk_size`` (the last may be shorter).

    Memory stays bounded by one chunk plus the simulator state; the concatenation equals
    :func:`generate_synthetic` with the same seed and parameters.
    """
    _check_counts(n_events, chunk_size)
    market = SyntheticMarket(seed, params, **overrides)
    left = int(n_events)
    while left > 0:
        n = min(left, int(chunk_size))
        yield market.generate(n)
        left -= n


def synthetic_report(events: np.ndarray, market: SyntheticMarket) -> dict[str, Any]:
    """Parameters, counts by kind, duration and price range of a generated stream."""
    counts = np.bincount(events["kind"], minlength=len(EventKind) + 1)
    n = len(events)
    duration = float(events["exch_ts"][-1] - events["exch_ts"][0]) / 1e9 if n else 0.0
    tick = SYNTH_INSTRUMENT.tick_size
    report: dict[str, Any] = {
        "model": "zero-intelligence L3 order flow with an informed jump-diffusion fair value",
        "seed": market.seed,
        "params": market.params.model_dump(),
        "n_events": n,
        "counts": {kind.name: int(counts[kind.value]) for kind in EventKind},
        "duration_s": duration,
        "events_per_s": n / duration if duration > 0 else 0.0,
        "simulator": market.counters(),
        "fair_value_end": market.fair_value * tick,
    }
    if n:
        lo, hi = int(events["price"].min()), int(events["price"].max())
        report.update(price_min_ticks=lo, price_max_ticks=hi, price_min=lo * tick, price_max=hi * tick)
    return report


DEFAULT_EVENTS = 2_000_000


def synthetic_events(data: str) -> int | None:
    """How many events a ``--data`` value asks of the synthetic market (``synthetic``: the default,
    ``synthetic:N``: N), or None when it names a file."""
    if data != "synthetic" and not data.startswith("synthetic:"):
        return None
    count = data.partition(":")[2]
    try:
        n = int(count.replace("_", "")) if count else DEFAULT_EVENTS
    except ValueError:
        raise ConfigError(f"--data {data!r}: synthetic:N wants a number of events") from None
    if n <= 0:
        raise ConfigError(f"--data {data!r}: the number of events must be positive")
    return n


def generate_synthetic(
    n_events: int, seed: int = 0, params: SyntheticParams | None = None, **overrides: Any
) -> EventData:
    """``n_events`` events of the synthetic market in one array, with instrument and report."""
    _check_counts(n_events)
    market = SyntheticMarket(seed, params, **overrides)
    events = market.generate(n_events)
    return EventData(
        events=events,
        instrument=SYNTH_INSTRUMENT,
        source=f"synthetic:seed={int(seed)}",
        report=synthetic_report(events, market),
    )


BINARY_INSTRUMENT = Instrument(
    symbol="SYNTH-YES",
    venue="synthetic",
    tick_size=0.01,
    lot_size=1,
    min_price=0.01,
    max_price=0.99,
    base="SYNTH-YES",
    quote="USDC",
    size_unit="shares",
)
BINARY_TICKS = (1, 99)  # the prices a binary market on a 0.01 tick can quote
DEFAULT_BINARY_EVENTS = 1_000_000  # about 11 minutes of the synthetic prediction market


def synthetic_binary(
    n_events: int, seed: int = 0, start: float = 0.5, volatility_ticks: float = 0.2
) -> EventData:
    """A synthetic prediction market (a YES token on a 0.01 tick, prices in [0.01, 0.99]) as level
    events: the synthetic market's order flow, calmer (``volatility_ticks`` per sqrt(second), no
    jumps), written as level totals and trades, shifted to start at ``start`` and cut to the valid
    prices. Level data because the venues it stands for (Polymarket, Kalshi) publish levels only."""
    from quotewise.data.hftbacktest import l2_events

    if not BINARY_TICKS[0] < round(start * 100) < BINARY_TICKS[1]:
        raise ConfigError(f"start={start}: a binary market starts strictly between 0.01 and 0.99")
    base = generate_synthetic(n_events, seed, volatility_ticks=volatility_ticks, jump_rate=0.0)
    events = l2_events(base.events)
    events["price"] += round(start * 100) - make_params().start_price_ticks
    price, kind = events["price"], events["kind"]
    valid = (price >= BINARY_TICKS[0]) & (price <= BINARY_TICKS[1])
    events = events[valid | (kind == CLEAR)]
    report = {"source": "synthetic binary", "seed": int(seed), "start": start, "events": len(events)}
    return EventData(
        events=events, instrument=BINARY_INSTRUMENT, source=f"synthetic-binary:seed={seed}", report=report
    )
