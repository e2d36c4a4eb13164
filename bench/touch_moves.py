"""How often the touch moves: the share of book messages after which the best bid or ask has changed
(what bench/tick_to_quote.py --touch-moves stands for). One message is the events sharing a local
timestamp, as a feed delivers them.

    .venv/bin/python bench/touch_moves.py ../shared/data/binance/spot/btcusdt_20240808.gz [...]
"""

from __future__ import annotations

import argparse

import numpy as np

from quotewise.book.orderbook import OrderBook
from quotewise.data.convert import load_source
from quotewise.errors import DataError
from quotewise.model.events import CLEAR, TRADE


def touch_moves(events: np.ndarray) -> tuple[int, float, float]:
    """Book messages, their rate per second, and the share after which the touch moved."""
    book_events = events[events["kind"] != TRADE]
    priced = book_events["price"][book_events["kind"] != CLEAR]
    if not len(priced):
        raise ValueError("no book updates (only trades)")
    book = OrderBook(int(priced.min()), int(priced.max()))
    local = book_events["local_ts"]
    starts = np.flatnonzero(np.r_[True, local[1:] != local[:-1]])
    ends = np.r_[starts[1:], len(book_events)]
    before = None
    moved = 0
    for s, e in zip(starts, ends, strict=True):
        book.apply(book_events[s:e])
        touch = (book.best_bid, book.best_ask)
        moved += before is not None and touch != before
        before = touch
    seconds = (local[-1] - local[0]) / 1e9
    messages = len(starts) - 1
    return messages, messages / seconds, moved / messages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="market data files (any format mm data reads)")
    for path in ap.parse_args().files:
        try:
            messages, rate, share = touch_moves(load_source(path).events)
        except DataError as exc:  # a file the readers refuse, e.g. depth updates with no snapshot
            print(exc)  # it names the file
            continue
        except ValueError as exc:
            print(f"{path}: {exc}")
            continue
        print(f"{path}: {messages:,} book messages ({rate:.1f}/s), touch moved after {share:.1%}")


if __name__ == "__main__":
    main()
