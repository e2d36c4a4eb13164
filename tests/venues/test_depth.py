"""The diff-stream book (Binance U/u/pu rules): right whenever trusted, never silently wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotewise.live.venues.depth import MAX_AHEAD, MAX_HOLD_NS, DepthSync, Grid, Resync
from quotewise.model.events import CLEAR, SET

GRID = Grid(0.1, 0.001)


def stream(draws: list[tuple[int, list[tuple[int, float, float]]]]) -> list[dict]:
    """depthUpdate messages with chained ids from (id span, [(side, price, qty)]) draws."""
    out, last = [], 1000
    for span, changes in draws:
        first, final = last + 1, last + span
        bids = [[f"{p:.1f}", f"{q:.3f}"] for side, p, q in changes if side == 1]
        asks = [[f"{p:.1f}", f"{q:.3f}"] for side, p, q in changes if side == -1]
        out.append({"e": "depthUpdate", "E": 1, "U": first, "u": final, "pu": last, "b": bids, "a": asks})
        last = final
    return out


def true_book(snapshot: dict, diffs: list[dict]) -> dict[tuple[int, int], int]:
    book = {(1, GRID.ticks(p)): GRID.lots(q) for p, q in snapshot["bids"]}
    book |= {(-1, GRID.ticks(p)): GRID.lots(q) for p, q in snapshot["asks"]}
    for d in diffs:
        for side, key in ((1, "b"), (-1, "a")):
            for p, q in d[key]:
                book[(side, GRID.ticks(p))] = GRID.lots(q)
    return {k: v for k, v in book.items() if v}


def applied(book: dict, events) -> None:
    for e in events:
        if e["kind"] == CLEAR:
            book.clear()
        elif e["kind"] == SET:
            book[(int(e["side"]), int(e["price"]))] = int(e["size"])
    for k in [k for k, v in book.items() if not v]:
        del book[k]


changes = st.lists(
    st.tuples(st.sampled_from([1, -1]), st.integers(100, 120).map(float), st.sampled_from([0.0, 0.5, 1.25])),
    max_size=4,
)
draws = st.lists(st.tuples(st.integers(1, 5), changes), min_size=2, max_size=30)


def snapshot_after(messages: list[dict], k: int) -> dict:
    """The REST snapshot once diffs [0, k) are in (its lastUpdateId: the k-th diff's u)."""
    base = {"lastUpdateId": 1000, "bids": [["99.0", "2.000"]], "asks": [["121.0", "2.000"]]}
    book = true_book(base, messages[:k])
    last = messages[k - 1]["u"] if k else 1000
    return {
        "lastUpdateId": last,
        "bids": [[f"{p * 0.1:.1f}", f"{q * 0.001:.3f}"] for (s, p), q in book.items() if s == 1],
        "asks": [[f"{p * 0.1:.1f}", f"{q * 0.001:.3f}"] for (s, p), q in book.items() if s == -1],
    }


@given(draws, st.data())
def test_a_book_from_a_snapshot_and_diffs_equals_the_exchanges_whenever_it_is_trusted(draws, data):
    messages = stream(draws)
    k = data.draw(st.integers(0, len(messages)))  # where the snapshot was taken
    early = data.draw(st.integers(0, k))  # diffs received before it, some already in it
    sync, book = DepthSync(GRID), {}
    for m in messages[early:k]:
        assert len(sync.diff(m, 0)) == 0 and not sync.trusted  # buffered until the snapshot
    snap = snapshot_after(messages, k)
    applied(book, sync.snapshot(snap, 0))
    base = {"lastUpdateId": 1000, "bids": [["99.0", "2.000"]], "asks": [["121.0", "2.000"]]}
    assert sync.trusted and book == true_book(base, messages[:k])
    for i, m in enumerate(messages[k:], start=k):
        applied(book, sync.diff(m, 0))
        if data.draw(st.booleans()):
            assert len(sync.diff(m, 0)) == 0  # a duplicate changes nothing
        assert book == true_book(base, messages[: i + 1])


@given(draws.filter(lambda d: len(d) >= 3), st.data())
def test_a_missing_diff_is_a_gap_that_untrusts_the_book_until_a_new_snapshot(draws, data):
    messages = stream(draws)
    lost = data.draw(st.integers(2, len(messages) - 1))
    sync = DepthSync(GRID)
    sync.snapshot(snapshot_after(messages, 1), 0)
    for m in messages[1:lost]:
        sync.diff(m, 0)
    later = messages[lost + 1 :]
    raised = False
    for m in later:  # held in case the lost one comes late: nothing past the gap is applied
        try:
            assert len(sync.diff(m, 0)) == 0
        except Resync as exc:
            assert "sequence gap" in str(exc)
            raised = True
            break
    assert raised == (len(later) > MAX_AHEAD)
    if not raised:  # nor does waiting for it go on for ever
        far = messages[-1]["u"] + 10
        with pytest.raises(Resync, match="sequence gap"):
            for t, u in ((1, far), (MAX_HOLD_NS + 2, far + 1)):
                sync.diff({"e": "depthUpdate", "U": u, "u": u, "pu": u - 1, "b": [], "a": []}, t)
    assert not sync.trusted and sync.gaps == 1
    sync.diff(messages[-1], 0)  # buffered for the next snapshot
    book: dict = {}
    applied(book, sync.snapshot(snapshot_after(messages, len(messages) - 1), 0))
    base = {"lastUpdateId": 1000, "bids": [["99.0", "2.000"]], "asks": [["121.0", "2.000"]]}
    assert sync.trusted and book == true_book(base, messages)


@given(draws.filter(lambda d: len(d) >= 4), st.data())
def test_swapped_messages_are_put_back_in_order_without_a_resync(draws, data):
    messages = stream(draws)
    k = data.draw(st.integers(1, len(messages) - 2))
    arrived = [*messages[:k], messages[k + 1], messages[k], *messages[k + 2 :]]
    sync, book = DepthSync(GRID), {}
    applied(book, sync.snapshot(snapshot_after(messages, 1), 0))
    for m in arrived[1:]:
        applied(book, sync.diff(m, 0))
    base = {"lastUpdateId": 1000, "bids": [["99.0", "2.000"]], "asks": [["121.0", "2.000"]]}
    assert sync.trusted and sync.gaps == 0 and sync.reordered == 1
    assert book == true_book(base, messages)


def test_a_snapshot_older_than_the_first_diff_kept_is_stale():
    messages = stream([(2, [(1, 100.0, 1.0)])] * 5)
    sync = DepthSync(GRID)
    for m in messages[3:]:
        sync.diff(m, 0)  # the stream started late: diffs 0-2 were never received
    with pytest.raises(Resync, match="stale snapshot"):
        sync.snapshot(snapshot_after(messages, 1), 0)
    assert not sync.trusted
    sync.diff(messages[4], 0)
    sync.snapshot(snapshot_after(messages, 4), 0)
    assert sync.trusted
