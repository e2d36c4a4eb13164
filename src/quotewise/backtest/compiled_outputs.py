"""Output tables of a compiled run, built from the engine's raw rows without a Python object per row.

They follow the Python path's rules exactly (``tests/sim/test_compiled.py`` compares both): the order
log has what the order manager records (sends and cancel requests with their reasons, then every
response it hears about an order until that order's final report), fills carry the exchange's
position and cash after each fill, and the equity rows mark the position at the last known mid.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from quotewise.model.instrument import Instrument
from quotewise.sim import engine as E
from quotewise.sim.exchange import CompiledRecord

# status codes: 1-5 are the engine's response kinds (K_*), 6-7 our actions, 8-9 fills by what is left
STATUS = pa.array(
    [
        "",
        "accepted",
        "rejected",
        "fill",
        "cancelled",
        "cancel_rejected",
        "submitted",
        "cancel_requested",
        "filled",
        "partially_filled",
    ]
)
SUBMITTED, CANCEL_REQUESTED, FILLED, PARTIAL = 6, 7, 8, 9
# reason codes: the engine's reject reasons (REASON_*) first, then the order manager's own
REASONS = pa.array(
    [E.REASON_TEXT[c] for c in range(len(E.REASON_TEXT))]
    + ["wanted by strategy", "no longer wanted", "cancel confirmed"]
)
WANTED, NOT_WANTED, CONFIRMED = len(E.REASON_TEXT), len(E.REASON_TEXT) + 1, len(E.REASON_TEXT) + 2
LIQUIDITY = pa.array(["taker", "maker"])


def _table(columns: list, schema: pa.Schema) -> pa.Table:
    arrays = [
        c if isinstance(c, pa.Array) else pa.array(c, type=f.type)
        for c, f in zip(columns, schema, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def fills_table(rec: CompiledRecord, inst: Instrument, schema: pa.Schema) -> tuple[pa.Table, int]:
    r, money = rec.responses, rec.response_money
    f = r[:, E.P_KIND] == E.K_FILL
    r, money = r[f], money[f]
    mid2 = r[:, E.P_MID2]
    columns = [
        r[:, E.P_EXCH_TS],
        r[:, E.P_DELIVER],
        r[:, E.P_ORDER_ID],
        r[:, E.P_SIDE].astype(np.int8),
        r[:, E.P_PRICE] * inst.tick_size,
        r[:, E.P_QTY] * inst.lot_size,
        money[:, E.PF_FEE],
        LIQUIDITY.take(pa.array(r[:, E.P_MAKER])),
        r[:, E.P_POS] * inst.lot_size,
        money[:, E.PF_CASH],
        np.where(mid2 >= 0, mid2 * inst.tick_size / 2, np.nan),
    ]
    table = _table(columns, schema)
    max_abs = int(np.abs(r[:, E.P_POS]).max()) if len(r) else 0
    return table, max_abs


def orders_table(rec: CompiledRecord, inst: Instrument, schema: pa.Schema) -> tuple[pa.Table, int, int, int]:
    a, r = rec.actions, rec.responses
    submits = a[a[:, E.A_KIND] == E.ACT_SUBMIT]
    order_ids = submits[:, E.A_ORDER_ID]
    at = np.searchsorted(order_ids, r[:, E.P_ORDER_ID])
    r_kind = r[:, E.P_KIND]
    r_status = np.where(r_kind == E.K_FILL, np.where(r[:, E.P_LEFT] <= 0, FILLED, PARTIAL), r_kind)
    a_status = np.where(a[:, E.A_KIND] == E.ACT_SUBMIT, SUBMITTED, CANCEL_REQUESTED)
    # one row per logged event: actions first, then responses; sorted below by the engine's step
    order_id = np.concatenate([a[:, E.A_ORDER_ID], r[:, E.P_ORDER_ID]])
    step = np.concatenate([a[:, E.A_STEP], r[:, E.P_AT]])
    ts = np.concatenate([a[:, E.A_TS], r[:, E.P_EXCH_TS]])
    side = np.concatenate([a[:, E.A_SIDE], submits[at, E.A_SIDE]])
    price = np.concatenate([a[:, E.A_PRICE], submits[at, E.A_PRICE]])
    size = np.concatenate([a[:, E.A_SIZE], submits[at, E.A_SIZE]])
    filled = np.concatenate([a[:, E.A_SIZE] - a[:, E.A_LEFT], submits[at, E.A_SIZE] - r[:, E.P_LEFT]])
    status = np.concatenate([a_status, r_status])
    reason = np.concatenate([np.where(a_status == SUBMITTED, WANTED, NOT_WANTED), r[:, E.P_REASON]])
    reason = np.where(status == E.K_CANCELLED, CONFIRMED, reason)
    terminal = np.isin(status, [E.K_REJECTED, E.K_CANCELLED, FILLED])
    # the order manager forgets an order at its final report: later responses (a cancel rejected
    # because the order had just filled) are not logged
    by_order = np.lexsort((step, order_id))
    seen_final = np.zeros(len(step), bool)
    o, t = order_id[by_order], terminal[by_order]
    finals_before = np.cumsum(t) - t
    first_of_order = np.r_[True, o[1:] != o[:-1]]
    finals_at_start = np.maximum.accumulate(np.where(first_of_order, finals_before, 0))
    seen_final[by_order] = (finals_before - finals_at_start) > 0
    keep = np.flatnonzero(~seen_final)
    keep = keep[np.argsort(step[keep], kind="stable")]
    status, reason = status[keep], reason[keep]
    columns = [
        ts[keep],
        order_id[keep],
        side[keep].astype(np.int8),
        price[keep] * inst.tick_size,
        size[keep] * inst.lot_size,
        filled[keep] * inst.lot_size,
        STATUS.take(pa.array(status)),
        REASONS.take(pa.array(reason)),
    ]
    table = _table(columns, schema)
    placed = int(np.count_nonzero(a_status == SUBMITTED))
    cancels = int(np.count_nonzero(a_status == CANCEL_REQUESTED))
    rejects = int(np.count_nonzero(status == E.K_REJECTED))
    return table, placed, cancels, rejects


def equity_columns(
    ts: np.ndarray,
    pos_lots: np.ndarray,
    cash: np.ndarray,
    bb: np.ndarray,
    ba: np.ndarray,
    qb: np.ndarray,
    qa: np.ndarray,
    inst: Instrument,
) -> tuple[np.ndarray, ...]:
    """The equity rows' columns from raw ticks and lots (-1: none), as the Python recorder computes them."""
    tick = inst.tick_size
    both = (bb >= 0) & (ba >= 0)
    mid = np.where(both, (bb + ba) / 2 * tick, np.nan)
    filled_at = np.maximum.accumulate(np.where(both, np.arange(len(mid)), -1))
    last_mid = np.where(filled_at >= 0, mid[np.maximum(filled_at, 0)], np.nan)
    pos = pos_lots * inst.lot_size
    pnl = np.where(np.isnan(last_mid), cash, cash + pos * last_mid)

    def price(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x * tick, np.nan)

    return ts, pos, cash, mid, pnl, price(bb), price(ba), price(qb), price(qa)
