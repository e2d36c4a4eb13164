"""The L3 tape's live orders for the FIFO queue model: each order's arrival sequence and size left.

An open-addressing hash table (linear probing, Fibonacci hashing) over one ``(capacity, 3)`` int64
array of rows ``[order id, arrival sequence, size left]``, not a typed dict: the event loop is compiled
without reference counting (:mod:`quotewise.sim.loop`), which typed dicts need. A removed order
leaves a tombstone; ``reg[R_TAPE_USED]`` counts filled slots and tombstones together. The loop stops
with a full buffer once half the slots are used, and :func:`grown` rebuilds the table twice as large,
without the tombstones, before it goes on.
"""

import numba as nb
import numpy as np

from quotewise.sim.records import R_TAPE_USED

EMPTY = np.iinfo(np.int64).min  # a slot never used
GONE = EMPTY + 1  # a slot whose order was removed (probing goes on past it)
_GOLDEN = -7046029254386353131  # 2**64 / golden ratio, as int64: spreads consecutive ids
INITIAL_CAPACITY = 1 << 12


def new_table(capacity: int | None = None) -> np.ndarray:
    """An empty table of ``capacity`` slots (a power of two; default ``INITIAL_CAPACITY``)."""
    table = np.zeros((capacity or INITIAL_CAPACITY, 3), np.int64)
    table[:, 0] = EMPTY
    return table


@nb.njit(cache=True, inline="always")
def is_full(table, reg):
    """True once half the slots are used: probes stay short, and an insert always finds room."""
    return 2 * reg[R_TAPE_USED] >= table.shape[0]


@nb.njit(cache=True, inline="always")
def _home(table, oid):
    return ((oid * _GOLDEN) >> 20) & (table.shape[0] - 1)


@nb.njit(cache=True, inline="always")
def _find(table, oid):
    """The slot holding ``oid``, or -1."""
    mask = table.shape[0] - 1
    i = _home(table, oid)
    while table[i, 0] != EMPTY:
        if table[i, 0] == oid:
            return i
        i = (i + 1) & mask
    return -1


@nb.njit(cache=True, inline="always")
def add(table, reg, oid, seq, size):
    """Record order ``oid`` arriving with sequence ``seq`` and ``size`` (a reused id is replaced)."""
    i = _find(table, oid)
    if i < 0:
        mask = table.shape[0] - 1
        i = _home(table, oid)
        while table[i, 0] != EMPTY and table[i, 0] != GONE:
            i = (i + 1) & mask
        if table[i, 0] == EMPTY:
            reg[R_TAPE_USED] += 1
    table[i, 0] = oid
    table[i, 1] = seq
    table[i, 2] = size


@nb.njit(cache=True, inline="always")
def change(table, oid, size, remove):
    """A change of ``size`` to order ``oid`` (``remove``: the order is deleted whatever is left).
    Returns its arrival sequence, -1 for an order never seen added (it counts as the oldest)."""
    i = _find(table, oid)
    if i < 0:
        return -1
    seq = table[i, 1]
    left = table[i, 2] - size
    if left <= 0 or remove:
        table[i, 0] = GONE
    else:
        table[i, 2] = left
    return seq


@nb.njit(cache=True)
def _rehash(old, new):
    """Copy the live rows of ``old`` into the empty table ``new``; returns how many."""
    mask = new.shape[0] - 1
    n = 0
    for k in range(old.shape[0]):
        oid = old[k, 0]
        if oid != EMPTY and oid != GONE:
            i = _home(new, oid)
            while new[i, 0] != EMPTY:
                i = (i + 1) & mask
            new[i, 0] = oid
            new[i, 1] = old[k, 1]
            new[i, 2] = old[k, 2]
            n += 1
    return n


def grown(table: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """The table with room to go on: rebuilt without tombstones, at least four times its live rows."""
    live = int(np.count_nonzero(table[:, 0] > GONE))
    capacity = table.shape[0]
    while capacity < 4 * max(live, 1):
        capacity *= 2
    new = new_table(capacity)
    reg[R_TAPE_USED] = _rehash(table, new)
    return new
