"""A backtest's output tables (fills, orders, equity), written batch by batch as the run goes.

With an output directory each batch goes straight to its Parquet file, so memory does not grow with
the length of the history; without one the batches are kept and joined at the end. Both decision
paths produce the same rows (``tests/sim/test_compiled.py``): the Python path converts what its
order manager logged; the compiled path builds the same rows from the engine's raw buffers in one
compiled pass per batch (:class:`CompiledLog`), following the order manager's rules: sends and
cancel requests with their reasons, then every response it hears about an order until that order's
final report.
"""

from __future__ import annotations

from pathlib import Path

import numba as nb
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


SENT_DTYPE = np.dtype([("side", np.int64), ("price", np.int64), ("size", np.int64)])


@nb.njit(cache=True)
def _order_rows(a, r, sent, final, out):
    """The order log's rows of one batch, in the engine's order (actions and responses merged by
    step), into the columns of ``out`` (ts, order id, side, price, size, filled, status, reason);
    returns how many and how many are rejections. Follows the order manager: an order's rows stop at
    its final report (rejected, cancelled, filled), so a response after it (a cancel rejected because
    the order had just filled) is not logged; ``sent`` and ``final`` (by order id) carry across batches.
    """
    i = j = n = rejects = 0
    while i < len(a) or j < len(r):
        if j >= len(r) or (i < len(a) and a[i]["step"] <= r[j]["at"]):
            x = a[i]
            i += 1
            oid = x["order_id"]
            if x["kind"] == E.ACT_SUBMIT:
                sent[oid]["side"] = x["side"]
                sent[oid]["price"] = x["price"]
                sent[oid]["size"] = x["size"]
                status, reason = SUBMITTED, WANTED
            else:
                status, reason = CANCEL_REQUESTED, NOT_WANTED
            ts, side, price, size, left = x["ts"], x["side"], x["price"], x["size"], x["left"]
        else:
            x = r[j]
            j += 1
            oid = x["order_id"]
            status = x["kind"]
            if status == E.K_FILL:
                status = FILLED if x["left"] <= 0 else PARTIAL
            reason = CONFIRMED if status == E.K_CANCELLED else x["reason"]
            o = sent[oid]
            ts, side, price, size, left = x["exch_ts"], o["side"], o["price"], o["size"], x["left"]
        if final[oid]:
            continue
        if status == E.K_REJECTED or status == E.K_CANCELLED or status == FILLED:
            final[oid] = True
            rejects += status == E.K_REJECTED
        out[0, n] = ts
        out[1, n] = oid
        out[2, n] = side
        out[3, n] = price
        out[4, n] = size
        out[5, n] = size - left
        out[6, n] = status
        out[7, n] = reason
        n += 1
    return n, rejects


class CompiledLog:
    """Output rows of the compiled path, built batch by batch from the engine's raw rows.

    Carries across batches what an order's later rows need: each order's side, price and size (from
    its send) and whether its final report was already logged.
    """

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.sent = np.zeros(1, SENT_DTYPE)  # by order id: side, price and size of its send
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
        top = int(max(a["order_id"].max(initial=-1), r["order_id"].max(initial=-1)))
        if top >= len(self.final):
            grow = top + 1 - len(self.final)
            self.final = np.concatenate([self.final, np.zeros(grow, bool)])
            self.sent = np.concatenate([self.sent, np.zeros(grow, self.sent.dtype)])
        cols = np.zeros((8, len(a) + len(r)), np.int64)
        n, rejects = _order_rows(a, r, self.sent, self.final, cols)
        sends = int(np.count_nonzero(a["kind"] == E.ACT_SUBMIT))
        self.placed += sends
        self.cancels += len(a) - sends
        self.rejects += rejects
        ts, order_id, side, price, size, filled, status, reason = cols[:, :n]
        inst = self.inst
        return make_table(
            [
                ts,
                order_id,
                side.astype(np.int8),
                price * inst.tick_size,
                size * inst.lot_size,
                filled * inst.lot_size,
                STATUS.take(pa.array(status.astype(np.int8))),  # narrow indices: a faster take
                REASONS.take(pa.array(reason.astype(np.int16))),
            ],
            ORDER_SCHEMA,
        )

    @staticmethod
    def equity_samples(rec: CompiledRecord) -> list[np.ndarray]:
        q = rec.samples
        return [q[name] for name in ("ts", "pos", "cash", "bid", "ask", "quote_bid", "quote_ask")]
