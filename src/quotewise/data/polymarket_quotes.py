"""The many-market Polymarket top-of-book table (``quotes.parquet`` with ``labels.parquet`` and
``markets.parquet`` beside it, e.g. ../shared/data/polymarket/quotes_2026-07-16/) as one binary
market per slug.

Each row is a snapshot of one market's best bid and best ask (no sizes, no trades), polled about
every two minutes. A snapshot becomes a ``CLEAR`` and one ``SET`` per quoted side, each level holding
:data:`NOMINAL_SHARES`: far more than any order of ours, so a quote at the touch waits behind the
whole level and fills only when the market quotes *through* it (a later snapshot's ask at or below
our bid, or its bid at or above our ask). That is the conservative rule for data without depth or
prints: no fill is ever assumed from a touch. A side that is empty in the snapshot (NaN) is empty in
the book. Rows of different ``segment`` (the dataset's collector outages) are kept, with a warning:
the backtest sees a long quiet gap there.

The resolution comes from ``labels.parquet`` (``y`` 1: YES won), trusted only where
``source == 'api'`` (the dataset's own advice): it goes in the report as ``settlement_price``, which
the backtest settles at (docs/prediction-markets.md). Prices are the YES token's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quotewise.data.polymarket import POLYMARKET_FEES
from quotewise.data.store import EventData, add_warning
from quotewise.errors import DataError
from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE, SET
from quotewise.model.instrument import Instrument

QUOTE_COLUMNS = ("ts", "slug", "bid", "ask")
NOMINAL_SHARES = 1_000_000
LABELS_FILE = "labels.parquet"
MARKETS_FILE = "markets.parquet"


def is_quotes_table(path: str | Path) -> bool:
    """Whether ``path`` is a Parquet file with the top-of-book table's columns."""
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, ValueError):
        return False
    return set(QUOTE_COLUMNS) <= names


@dataclass(frozen=True)
class Market:
    """One market of the table: its slug, question, snapshot count and (trusted) outcome."""

    slug: str
    question: str
    snapshots: int
    outcome: int | None  # 1: YES won, 0: NO won, None: unresolved or not trusted


def _outcomes(folder: Path) -> dict[str, int]:
    path = folder / LABELS_FILE
    if not path.exists():
        return {}
    labels = pq.read_table(path, columns=["slug", "y", "source"]).to_pandas()
    trusted = labels[labels["source"] == "api"]
    return dict(zip(trusted["slug"], trusted["y"].astype(int), strict=True))


def _questions(folder: Path) -> dict[str, str]:
    path = folder / MARKETS_FILE
    if not path.exists():
        return {}
    markets = pq.read_table(path, columns=["slug", "question"]).to_pandas()
    return dict(zip(markets["slug"], markets["question"], strict=True))


def list_markets(path: str | Path) -> list[Market]:
    """Every market of the table, the most snapshots first (ties by slug): resolved ones are what a
    settled backtest can use."""
    table = pq.read_table(path, columns=["slug"])
    counts = table.group_by("slug").aggregate([("slug", "count")]).to_pandas()
    folder = Path(path).parent
    outcomes, questions = _outcomes(folder), _questions(folder)
    markets = [
        Market(slug, questions.get(slug, ""), int(n), outcomes.get(slug))
        for slug, n in zip(counts["slug"], counts["slug_count"], strict=True)
    ]
    return sorted(markets, key=lambda m: (-m.snapshots, m.slug))


def table_info(path: str | Path) -> dict:
    """What ``mm data info`` says of a table: markets, resolved ones, snapshots, the fullest five."""
    markets = list_markets(path)
    return {
        "markets": len(markets),
        "resolved": sum(m.outcome is not None for m in markets),
        "snapshots": sum(m.snapshots for m in markets),
        "most_snapshots": [{"slug": m.slug, "snapshots": m.snapshots} for m in markets[:5]],
    }


def pick_markets(path: str | Path, slugs: list[str] | None, count: int | None) -> list[Market]:
    """The markets asked for by slug, or the ``count`` resolved markets with the most snapshots."""
    markets = list_markets(path)
    if slugs:
        known = {m.slug: m for m in markets}
        missing = [s for s in slugs if s not in known]
        if missing:
            raise DataError(f"{path} has no market {', '.join(missing)} ({len(markets):,} markets in it)")
        return [known[s] for s in slugs]
    if not count:
        raise DataError(f"{path} holds {len(markets):,} markets: pick some with --market SLUG or --markets N")
    resolved = [m for m in markets if m.outcome is not None]
    if len(resolved) < count:
        raise DataError(f"{path}: only {len(resolved):,} markets have a trusted resolution, not {count}")
    return resolved[:count]


def _tick(prices: np.ndarray) -> float:
    """0.001 when any quoted price has a third decimal, else 0.01 (Polymarket's two ticks)."""
    quoted = prices[~np.isnan(prices)]
    thousandths = np.round(quoted * 1000)
    return 0.001 if np.any(thousandths % 10) else 0.01


def read_market(path: str | Path, market: Market) -> EventData:
    """One market's snapshots as events on a binary instrument (see the module docstring)."""
    table = pq.read_table(path, columns=[*QUOTE_COLUMNS, "segment"], filters=[("slug", "=", market.slug)])
    table = table.sort_by("ts")
    if table.num_rows == 0:
        raise DataError(f"{path}: no rows for {market.slug}")
    ts = pc.cast(table["ts"], "timestamp[ns]").cast("int64").to_numpy()
    bid = table["bid"].to_numpy(zero_copy_only=False).astype(np.float64)
    ask = table["ask"].to_numpy(zero_copy_only=False).astype(np.float64)
    tick = _tick(np.concatenate([bid, ask]))
    inst = Instrument(
        symbol=market.slug,
        venue="polymarket",
        tick_size=tick,
        lot_size=1.0,
        min_price=tick,
        max_price=round(1 - tick, 3),
        quote="USDC",
        size_unit="shares",
        **POLYMARKET_FEES,
    )
    events = _snapshot_events(ts, bid, ask, tick)
    report: dict = {"snapshots": table.num_rows, "question": market.question, "rule": "quoted through"}
    if market.outcome is not None:
        report["settlement_price"] = float(market.outcome)
        report["settlement_source"] = f"the data ({LABELS_FILE})"
        report["brier"] = brier(bid, ask, market.outcome)
    segments = np.unique(table["segment"].to_numpy(zero_copy_only=False))
    if len(segments) > 1:
        add_warning(report, f"{market.slug}: {len(segments)} segments (collector outages between them)")
    return EventData(events, inst, str(path), report)


def brier(bid: np.ndarray, ask: np.ndarray, outcome: int) -> float | None:
    """The Brier score of the market's mid as a forecast of the outcome: the mean of (mid - y)^2 over
    the snapshots quoted on both sides (0 is perfect; 0.25 is always saying 50 %)."""
    both = ~np.isnan(bid) & ~np.isnan(ask)
    if not both.any():
        return None
    mid = (bid[both] + ask[both]) / 2
    return float(np.mean((mid - outcome) ** 2))


def _snapshot_events(ts: np.ndarray, bid: np.ndarray, ask: np.ndarray, tick: float) -> np.ndarray:
    """Per snapshot: CLEAR, then SET for each quoted side at :data:`NOMINAL_SHARES`."""
    n = len(ts)
    out = np.zeros(3 * n, dtype=EVENT_DTYPE)
    out["exch_ts"] = out["local_ts"] = np.repeat(ts, 3)
    kinds = out["kind"].reshape(n, 3)
    kinds[:, 0], kinds[:, 1:] = CLEAR, SET
    sides = out["side"].reshape(n, 3)
    sides[:, 1], sides[:, 2] = BID, ASK
    prices = out["price"].reshape(n, 3)
    sizes = out["size"].reshape(n, 3)
    for col, quote in ((1, bid), (2, ask)):
        quoted = ~np.isnan(quote)
        prices[quoted, col] = np.round(quote[quoted] / tick).astype(np.int64)
        sizes[quoted, col] = NOMINAL_SHARES
    keep = (out["kind"] == CLEAR) | (out["size"] > 0)  # an empty side is no level at all
    return out[keep]


# -- negative-risk events: mutually exclusive outcomes of one question -------------------------------------
@dataclass(frozen=True)
class Event:
    """The outcome markets of one question of which exactly one resolved YES (a negative-risk event:
    their YES prices should sum to 1, and a NO of one outcome is worth a YES of every other)."""

    question: str
    markets: tuple[Market, ...]

    @property
    def winner(self) -> str:
        return next(m.slug for m in self.markets if m.outcome == 1)


def list_events(path: str | Path) -> list[Event]:
    """Every question of two or more outcome markets, each with a trusted resolution and exactly one
    YES, the most snapshots (of all its outcomes) first."""
    by_question: dict[str, list[Market]] = {}
    for m in list_markets(path):
        if m.question:
            by_question.setdefault(m.question, []).append(m)
    events = [
        Event(q, tuple(ms))
        for q, ms in by_question.items()
        if len(ms) > 1 and all(m.outcome is not None for m in ms) and sum(m.outcome == 1 for m in ms) == 1
    ]
    return sorted(events, key=lambda e: (-sum(m.snapshots for m in e.markets), e.question))


def pick_events(path: str | Path, slugs: list[str] | None, count: int | None) -> list[Event]:
    """The events of the markets named (each whole: every outcome), or the ``count`` events with the
    most snapshots; a market outside any complete event is refused by name."""
    events = list_events(path)
    if slugs:
        of = {m.slug: e for e in events for m in e.markets}
        outside = [s for s in slugs if s not in of]
        if outside:
            raise DataError(
                f"--neg-risk: {', '.join(outside)} is in no complete negative-risk event of {path} (two or "
                "more outcomes of one question, all resolved, exactly one YES)"
            )
        return list(dict.fromkeys(of[s] for s in slugs))
    if not count:
        raise DataError(f"{path} holds {len(events):,} negative-risk events: pick some with --markets N")
    if len(events) < count:
        raise DataError(f"{path}: only {len(events):,} complete negative-risk events, not {count}")
    return events[:count]


def event_prices(path: str | Path, event: Event) -> dict[str, float | None]:
    """How coherent the event's prices were: the sum over its outcomes of the YES mids (each market's
    last snapshot carried forward onto every snapshot time of the event, from the time every outcome
    has been seen; an empty side counts as a bid of 0 or an ask of 1), its mean distance from 1, and
    the share of times when the asks summed below 1 or the bids above it (every YES bought, or sold,
    for a sure profit before fees)."""
    slugs = [m.slug for m in event.markets]
    table = pq.read_table(path, columns=list(QUOTE_COLUMNS), filters=[("slug", "in", slugs)]).to_pandas()
    table = table.assign(seen=1.0, bid=table["bid"].fillna(0.0), ask=table["ask"].fillna(1.0))
    wide = {
        col: table.pivot_table(index="ts", columns="slug", values=col).sort_index().ffill()
        for col in ("bid", "ask", "seen")
    }
    complete = wide["seen"].notna().all(axis=1) & (len(wide["seen"].columns) == len(slugs))
    if not complete.any():
        return {"mean_sum_of_mids": None, "mean_abs_gap": None, "arbitrage_share": None}
    bids, asks = wide["bid"][complete], wide["ask"][complete]
    mids = ((bids + asks) / 2).sum(axis=1)
    sure = (asks.sum(axis=1) < 1) | (bids.sum(axis=1) > 1)
    return {
        "mean_sum_of_mids": float(mids.mean()),
        "mean_abs_gap": float((mids - 1).abs().mean()),
        "arbitrage_share": float(sure.mean()),
    }
