"""A backtest's output tables (fills, orders, equity), written batch by batch as the run goes.

With an output directory each batch goes straight to its Parquet file, so memory does not grow with
the length of the history; without one the batches are kept and joined at the end. Both decision
paths produce the same rows (``tests/sim/test_compiled.py``): the Python path converts what its
order manager logged; the compiled path builds the same rows from the engine's raw buffers with
numpy (:class:`CompiledLog`), following the order manager's rules: sends and cancel requests with
their reasons, then every response it hears about an order until that order's final report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from quotewise.model.instrument import Instrument
from quotewise.sim import records as E
from quotewise.sim.exchange import CompiledRecord

FILL_SCHEMA = pa.schema(
    [
        ("exch_ts", pa.int64()),
        ("local_ts", pa.int64()),
        ("order_id", pa.int64()),
        ("side", pa.int8()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("fee", pa.float64()),
        ("liquidity", pa.string()),
        ("position", pa.float64()),
        ("cash", pa.float64()),
        ("mid", pa.float64()),
    ]
)
ORDER_SCHEMA = pa.schema(
    [
        ("ts", pa.int64()),
        ("order_id", pa.int64()),
        ("side", pa.int8()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("filled", pa.float64()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)
EQUITY_SCHEMA = pa.schema(
    [
        (name, pa.int64() if name == "ts" else pa.float64())
        for name in ("ts", "position", "cash", "mid", "pnl", "best_bid", "best_ask", "bid_quote", "ask_quote")
    ]
)
SCHEMAS = {"fills": FILL_SCHEMA, "orders": ORDER_SCHEMA, "equity": EQUITY_SCHEMA}

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


def make_table(columns: list, schema: pa.Schema) -> pa.Table:
    arrays = [
        c if isinstance(c, pa.Array) else pa.array(c, type=f.type)
        for c, f in zip(columns, schema, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def rows_table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    """A table from row tuples in the schema's column order."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return make_table(list(columns), schema)


class OutputSink:
    """Receives the output tables batch by batch: Parquet files in ``out_dir``, or memory."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._batches: dict[str, list[pa.Table]] = {name: [] for name in SCHEMAS}
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.out_dir is None:
            self._batches[name].append(table)
            return
        if name not in self._writers:
            self._writers[name] = pq.ParquetWriter(self.out_dir / f"{name}.parquet", SCHEMAS[name])
        self._writers[name].write_table(table)

    def close(self) -> dict[str, pa.Table | None]:
        """Finish the files (an empty one where nothing came); in memory, the joined tables."""
        if self.out_dir is not None:
            for name, schema in SCHEMAS.items():
                writer = self._writers.pop(name, None)
                if writer is not None:
                    writer.close()
                else:
                    pq.write_table(schema.empty_table(), self.out_dir / f"{name}.parquet")
            return dict.fromkeys(SCHEMAS)
        return {
            name: pa.concat_tables(batches) if batches else SCHEMAS[name].empty_table()
            for name, batches in self._batches.items()
        }


def equity_table(samples: list[np.ndarray], inst: Instrument, last_mid: float) -> tuple[pa.Table, float]:
    """Equity rows from raw samples (ts, position lots, cash, bid, ask, our bid, our ask; ticks, -1 = none).

    The position is marked at the last known mid (``last_mid`` carries it across batches); returns
    the table and the last known mid after it.
    """
    ts, pos_lots, cash, bb, ba, qb, qa = samples
    tick = inst.tick_size
    both = (bb >= 0) & (ba >= 0)
    mid = np.where(both, (bb + ba) / 2 * tick, np.nan)
    known_at = np.maximum.accumulate(np.where(both, np.arange(len(mid)), -1))
    marked = np.where(known_at >= 0, mid[np.maximum(known_at, 0)], last_mid)
    pos = pos_lots * inst.lot_size
    pnl = np.where(np.isnan(marked), cash, cash + pos * inst.unit_value(marked))

    def price(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x * tick, np.nan)

    table = make_table([ts, pos, cash, mid, pnl, price(bb), price(ba), price(qb), price(qa)], EQUITY_SCHEMA)
    return table, (float(marked[-1]) if len(marked) else last_mid)


class CompiledLog:
    """Output rows of the compiled path, built batch by batch from the engine's raw rows.

    Carries across batches what an order's later rows need: each order's side, price and size (from
    its send) and whether its final report was already logged.
    """

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.sent = np.zeros(0, E.ACTION_DTYPE)  # the sends not yet final, ids increasing
        self.final = np.zeros(1, bool)  # by order id: final report already logged
        self.placed = self.cancels = self.rejects = 0
        self.max_abs_pos_lots = 0
        self.fills = 0

    def fills_table(self, rec: CompiledRecord) -> pa.Table:
        inst = self.inst
        r = rec.responses[rec.responses["kind"] == E.K_FILL]
        if len(r):
            self.max_abs_pos_lots = max(self.max_abs_pos_lots, int(np.abs(r["pos"]).max()))
        self.fills += len(r)
        mid2 = r["mid2"]
        return make_table(
            [
                r["exch_ts"],
                r["deliver"],
                r["order_id"],
                r["side"].astype(np.int8),
                r["price"] * inst.tick_size,
                r["qty"] * inst.lot_size,
                r["fee"],
                LIQUIDITY.take(pa.array(r["maker"])),
                r["pos"] * inst.lot_size,
                r["cash"],
                np.where(mid2 >= 0, mid2 * inst.tick_size / 2, np.nan),
            ],
            FILL_SCHEMA,
        )

    def orders_table(self, rec: CompiledRecord) -> pa.Table:
        a, r = rec.actions, rec.responses
        is_send = a["kind"] == E.ACT_SUBMIT
        self.sent = np.concatenate([self.sent, a[is_send]])
        top = int(max(a["order_id"].max(initial=0), r["order_id"].max(initial=0)))
        if top >= len(self.final):
            self.final = np.concatenate([self.final, np.zeros(top + 1 - len(self.final), bool)])
        # a response about an order already final is not logged (below): its row may be gone
        at = np.minimum(np.searchsorted(self.sent["order_id"], r["order_id"]), len(self.sent) - 1)
        sent = self.sent[at] if len(self.sent) else np.zeros(len(r), E.ACTION_DTYPE)
        r_kind = r["kind"]
        r_status = np.where(r_kind == E.K_FILL, np.where(r["left"] <= 0, FILLED, PARTIAL), r_kind)
        a_status = np.where(is_send, SUBMITTED, CANCEL_REQUESTED)
        # one row per logged event (actions, then responses), put in the engine's order below
        order_id = np.concatenate([a["order_id"], r["order_id"]])
        step = np.concatenate([a["step"], r["at"]])
        status = np.concatenate([a_status, r_status])
        reason = np.concatenate([np.where(is_send, WANTED, NOT_WANTED), r["reason"]])
        reason = np.where(status == E.K_CANCELLED, CONFIRMED, reason)
        terminal = np.isin(status, [E.K_REJECTED, E.K_CANCELLED, FILLED])
        # the order manager forgets an order at its final report: later responses about it (a cancel
        # rejected because the order had just filled) are not logged
        by_order = np.lexsort((step, order_id))
        o, t = order_id[by_order], terminal[by_order]
        finals_before = np.cumsum(t) - t
        first_of_order = np.r_[True, o[1:] != o[:-1]]
        finals_at_start = np.maximum.accumulate(np.where(first_of_order, finals_before, 0))
        after_final = np.zeros(len(step), bool)
        after_final[by_order] = (finals_before - finals_at_start) > 0
        keep = np.flatnonzero(~after_final & ~self.final[order_id])
        keep = keep[np.argsort(step[keep], kind="stable")]
        self.final[order_id[keep][terminal[keep]]] = True
        self.sent = self.sent[~self.final[self.sent["order_id"]]]  # only open orders are looked up again
        status, reason = status[keep], reason[keep]
        self.placed += int(np.count_nonzero(is_send))
        self.cancels += int(np.count_nonzero(~is_send))
        self.rejects += int(np.count_nonzero(status == E.K_REJECTED))
        inst = self.inst
        side = np.concatenate([a["side"], sent["side"]])
        price = np.concatenate([a["price"], sent["price"]])
        size = np.concatenate([a["size"], sent["size"]])
        filled = np.concatenate([a["size"] - a["left"], sent["size"] - r["left"]])
        return make_table(
            [
                np.concatenate([a["ts"], r["exch_ts"]])[keep],
                order_id[keep],
                side[keep].astype(np.int8),
                price[keep] * inst.tick_size,
                size[keep] * inst.lot_size,
                filled[keep] * inst.lot_size,
                STATUS.take(pa.array(status)),
                REASONS.take(pa.array(reason)),
            ],
            ORDER_SCHEMA,
        )

    @staticmethod
    def equity_samples(rec: CompiledRecord) -> list[np.ndarray]:
        q = rec.samples
        return [q[name] for name in ("ts", "pos", "cash", "bid", "ask", "quote_bid", "quote_ask")]
