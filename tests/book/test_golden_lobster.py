"""Golden replay: LOBSTER events rebuild the published orderbook file at every row and level.

Only levels entering the window from beyond it (and levels beyond it proved gone) come from the
book file; everything inside the previous window must come from the messages, so equality at every
row checks the reader's event mapping and the core book together.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from quotewise.book import L3Book, OrderBook, event_price_range, replay_top_levels
from quotewise.data.lobster import LobsterRead, read_lobster_book, read_lobster_with_rows
from quotewise.model.events import ADD, CLEAR, DELETE, EXECUTE, REDUCE, SET

CASES = {
    "AAPL_L10_first999": ("AAPL_2012-06-21_10_first999", 10, 999),
    "AMZN_L5": ("LOBSTER_SampleFile_AMZN_2012-06-21_5.zip", 5, 155_935),
    "GOOG_L10": ("LOBSTER_SampleFile_GOOG_2012-06-21_10.zip", 10, 147_916),
}
COLUMNS = ("ask price", "ask size", "bid price", "bid size")


def _first_difference(read: LobsterRead, got: np.ndarray, want: np.ndarray) -> str:
    """Where the replay first departs from the file: row, its events, and the level."""
    row = int(np.flatnonzero((got != want).any(axis=1))[0])
    col = int(np.flatnonzero(got[row] != want[row])[0])
    start = int(read.row_ends[row - 1]) + 1 if row else 0
    events = read.data.events[start : read.row_ends[row] + 1]
    return (
        f"orderbook line {row + 1} (message line {row + 1}) differs at level {col // 4 + 1} "
        f"{COLUMNS[col % 4]}: replay {got[row, col]} vs file {want[row, col]}\n"
        f"events of that row: {events.tolist()}\n"
        f"replay row: {got[row].tolist()}\nfile row:   {want[row].tolist()}"
    )


def _reveals(read: LobsterRead) -> tuple[np.ndarray, np.ndarray]:
    """Event indices and rows (k >= 1) of SETs of levels entering the window (size > 0)."""
    ev = read.data.events
    idx = np.flatnonzero((ev["kind"] == SET) & (ev["size"] > 0))
    idx = idx[idx > read.row_ends[0]]
    return idx, np.searchsorted(read.row_ends, idx)


@pytest.mark.parametrize("case", CASES)
def test_replay_matches_every_orderbook_row(case: str) -> None:
    name, levels, rows = CASES[case]
    path = shared_path("lobster", name)
    t0 = time.perf_counter()
    read = read_lobster_with_rows(path)
    events, report = read.data.events, read.data.report
    lo, hi = event_price_range(events)
    got = replay_top_levels(events, read.row_ends, levels, lo, hi)
    want = read_lobster_book(path)
    elapsed = time.perf_counter() - t0

    assert want.shape == (rows, 4 * levels)
    assert got.shape == want.shape
    if not np.array_equal(got, want):
        pytest.fail(_first_difference(read, got, want))
    assert report["rows_not_matching_book_file"] == 0
    assert report["clamps"] == report["cross_fixes"] == report["out_of_range"] == 0

    # the snapshot opens the stream, then one event per message row (no halts in the samples)
    assert events["kind"][0] == CLEAR
    n_snap = report["snapshot_levels"]
    assert np.all(events["kind"][1 : 1 + n_snap] == SET)
    assert (
        report["events"]
        == len(events)
        == 1 + n_snap + rows + report["reveals"] + report["stale_levels_cleared"]
    )
    assert np.all(np.diff(events["exch_ts"]) >= 0)
    assert np.array_equal(events["local_ts"], events["exch_ts"])

    # reveals are explained by the messages: at most one level enters per row, and only after a
    # message that emptied a visible level on that same side
    reveal_idx, reveal_rows = _reveals(read)
    assert len(reveal_rows) == report["reveals"] == report["reveal_rows"]
    assert np.all(np.diff(reveal_rows) > 0)
    msg = events[read.row_ends[reveal_rows - 1] + 1]
    assert np.all(np.isin(msg["kind"], (REDUCE, DELETE, EXECUTE)))
    assert np.array_equal(msg["side"], events["side"][reveal_idx])
    side_prices = np.where((msg["side"] == 1)[:, None], want[reveal_rows, 2::4], want[reveal_rows, 0::4])
    assert not np.any(side_prices == msg["price"][:, None]), "a reveal followed a message that left its level"
    print(
        f"{case}: {rows:,} rows, {len(events):,} events, {report['reveals']:,} reveals "
        f"({report['reveals'] / rows:.1%} of rows), {report['stale_levels_cleared']:,} stale levels cleared, "
        f"{report['clamps']} clamps; {elapsed:.2f}s"
    )


def test_first_timestamps_and_instrument() -> None:
    read = read_lobster_with_rows(shared_path("lobster", "AAPL_2012-06-21_10_first999"))
    ev = read.data.events
    # 34200.004241176 s after New York midnight, EDT (UTC-4) in June
    assert ev["exch_ts"][0] == pd.Timestamp("2012-06-21 13:30:00.004241176", tz="UTC").value
    first_add = ev[ev["kind"] == ADD][0]
    assert (first_add["price"], first_add["size"], first_add["order_id"], first_add["side"]) == (
        58533,
        18,
        16113575,
        1,
    )
    inst = read.data.instrument
    assert (inst.symbol, inst.venue, inst.tick_size, inst.lot_size) == ("AAPL", "nasdaq", 0.01, 1)


def test_l3_book_tracks_the_fixture_row_by_row() -> None:
    """The order-level book, fed row by row, shows the file's levels and accounts for every lot."""
    read = read_lobster_with_rows(shared_path("lobster", "AAPL_2012-06-21_10_first999"))
    events, want = read.data.events, read.book
    l3 = L3Book.for_events(events)
    l2 = OrderBook.for_events(events)
    start = 0
    for row, end in enumerate(read.row_ends):
        l3.apply(events[start : end + 1])
        l2.apply(events[start : end + 1])
        start = end + 1
        for side, col in ((-1, 0), (1, 2)):
            prices, sizes = l3.l2.levels(side, 10)
            assert np.array_equal(prices, want[row, col::4][: len(prices)]), row
            assert np.array_equal(sizes, want[row, col + 1 :: 4][: len(sizes)]), row
            for p, q in zip(prices.tolist(), sizes.tolist(), strict=True):
                anon = l3.anonymous(side, p)
                assert anon >= 0
                assert anon + sum(r for _, r in l3.orders_at(side, p)) == q
    assert np.array_equal(l3.l2.bid, l2.bid) and np.array_equal(l3.l2.ask, l2.ask)
    assert l3.counters.size_mismatches == l3.counters.duplicate_adds == l3.counters.mismatched_orders == 0
    # ids seen only being removed are orders from before the file began (in the snapshot volume)
    assert 0 < l3.counters.unknown_orders < 0.02 * len(events)


def test_sources_agree() -> None:
    """A directory, a message CSV and an orderbook CSV of the same pair give the same events."""
    folder = shared_path("lobster", "AAPL_2012-06-21_10_first999")
    by_dir = read_lobster_with_rows(folder).data.events
    message = next(folder.glob("*_message_10.csv"))
    orderbook = next(folder.glob("*_orderbook_10.csv"))
    assert np.array_equal(read_lobster_with_rows(message).data.events, by_dir)
    assert np.array_equal(read_lobster_with_rows(orderbook).data.events, by_dir)


# A hand-made level-2 day (prices in dollars x 10000) covering what the samples never show:
# half-empty windows, a level pushed out and cancelled unseen, an unseen order revealed and hit.
E_ASK, E_BID = "9999999999,0", "-9999999999,0"
HAND_MADE = [
    ("1,1,10,1000000,1", f"{E_ASK},1000000,10,{E_ASK},{E_BID}"),
    ("1,2,5,1010000,-1", f"1010000,5,1000000,10,{E_ASK},{E_BID}"),
    ("1,3,6,1020000,-1", f"1010000,5,1000000,10,1020000,6,{E_BID}"),
    ("1,4,7,1005000,-1", f"1005000,7,1000000,10,1010000,5,{E_BID}"),  # 102.00 leaves the window
    ("3,4,7,1005000,-1", f"1010000,5,1000000,10,{E_ASK},{E_BID}"),  # ...and was cancelled unseen
    ("1,5,2,1030000,-1", f"1010000,5,1000000,10,1030000,2,{E_BID}"),
    ("1,6,1,1008000,-1", f"1008000,1,1000000,10,1010000,5,{E_BID}"),  # 103.00 leaves the window
    ("3,6,1,1008000,-1", f"1010000,5,1000000,10,1025000,9,{E_BID}"),  # an unseen 102.50 shows up
    ("4,99,9,1025000,-1", f"1010000,5,1000000,10,1030000,2,{E_BID}"),  # and trades: 103.00 again
]


def test_hand_made_windows(tmp_path: Path) -> None:
    stem = "TEST_2012-06-21_34200000_57600000"
    msg = [f"{34200 + k / 10:.1f},{m}" for k, (m, _) in enumerate(HAND_MADE)]
    book = [b for _, b in HAND_MADE]
    (tmp_path / f"{stem}_message_2.csv").write_text("\n".join(msg) + "\n")
    (tmp_path / f"{stem}_orderbook_2.csv").write_text("\n".join(book) + "\n")
    read = read_lobster_with_rows(tmp_path)
    report, events = read.data.report, read.data.events
    lo, hi = event_price_range(events)
    got = replay_top_levels(events, read.row_ends, 2, lo, hi)
    if not np.array_equal(got, read_lobster_book(tmp_path)):
        pytest.fail(_first_difference(read, got, read.book))
    assert (report["reveals"], report["stale_levels_cleared"], report["clamps"]) == (2, 1, 0)
    cleared = events[read.row_ends[3] + 1 : read.row_ends[4] + 1]
    assert cleared[["kind", "side", "price", "size"]].tolist() == [
        (DELETE, -1, 10050, 7),
        (SET, -1, 10200, 0),
    ]
    l3 = L3Book.for_events(events)
    l3.apply(events)
    assert l3.counters.unknown_orders == 1 and l3.anonymous(-1, 10250) == 0
    assert l3.orders_at(-1, 10300) == [(5, 2)] and l3.queue_ahead(5) == 0
