"""Decimal strings to integer ticks and lots without floats, and the clock fixes every reader shares.

Feeds send prices as decimal strings ("61800.20"). Going through ``float`` and rounding silently
accepts an off-grid price, so the digits are turned into integers directly: the strings become a
byte matrix and the digit arithmetic is vectorized with numpy (hundreds of thousands of values in
milliseconds). The tick or lot of a feed that does not publish it is inferred the same way: the
finest significant decimal seen ("61800.20" and "61799.90" give 0.1).

Epoch times come in seconds, milliseconds, microseconds or nanoseconds, and a file rarely says
which. The unit is read from the magnitude: an epoch time of a date in 2000-2100 has a different
number of digits in each unit, so the ranges never overlap and one value is enough to tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from quotewise.errors import ConfigError, DataError

_CHUNK = 1 << 20
_MAX_DIGITS = 18  # 10**18 < 2**63: every mantissa kept fits int64
_POW10 = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)
_ZERO, _NINE, _DOT = ord("0"), ord("9"), ord(".")
NS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_EPOCH_NS = (946_684_800 * NS_PER["s"], 4_102_444_800 * NS_PER["s"])  # 2000-01-01 and 2100-01-01 UTC
_BOUNDS = {unit: (_EPOCH_NS[0] // ns, _EPOCH_NS[1] // ns) for unit, ns in NS_PER.items()}
MAX_CLOCK_OFFSET_NS = 3_600 * NS_PER["s"]  # no capture clock is an hour off; a unit or time zone can be


class ValueFormatError(DataError):
    """A decimal string that cannot be used; ``index`` is its position so callers can name the line."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _as_bytes(values: Sequence[str] | np.ndarray) -> np.ndarray:
    try:
        if isinstance(values, np.ndarray):
            arr = values if values.dtype.kind == "S" else values.astype("S")
        else:
            arr = np.array(values, dtype="S")
    except UnicodeEncodeError as exc:
        raise DataError(f"non-ASCII character in a number: {exc.object!r}") from exc
    return np.ascontiguousarray(arr.ravel())


def _expand_exponents(arr: np.ndarray) -> np.ndarray:
    """Rewrite the rare '1e-07' style strings as plain decimals (exactly, through Decimal)."""
    width = arr.dtype.itemsize
    if width == 0:
        return arr
    m = arr.view(np.uint8).reshape(len(arr), width)
    rows = np.flatnonzero(((m == ord("e")) | (m == ord("E"))).any(axis=1))
    if len(rows) == 0:
        return arr
    out = arr.astype(object)
    for i in rows:
        text = arr[i].decode()
        try:
            out[i] = format(Decimal(text), "f").encode()
        except InvalidOperation:
            raise ValueFormatError(f"not a decimal number: {text!r}", int(i)) from None
    return out.astype("S")


def _parse_chunk(arr: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Horner's rule one character column at a time (1-D vector ops, cache friendly).

    Zeros after the point are held back in ``pending`` and only multiplied in when a non-zero digit
    follows, so trailing zeros never count as places nor overflow the mantissa.
    """
    n, width = len(arr), arr.dtype.itemsize
    if width == 0:
        raise ValueFormatError("empty string where a number was expected", offset)
    m = arr.view(np.uint8).reshape(n, width)
    mantissa = np.zeros(n, np.int64)
    places = np.zeros(n, np.int64)
    pending = np.zeros(n, np.int64)
    after_dot = np.zeros(n, bool)
    n_digits = np.zeros(n, np.int64)
    bad = np.zeros(n, bool)
    overflow = np.zeros(n, bool)
    for j in range(width):
        c = m[:, j]
        digit = c.astype(np.int64) - _ZERO
        is_digit = (c >= _ZERO) & (c <= _NINE)
        is_dot = c == _DOT
        bad |= ((c != 0) & ~is_digit & ~is_dot) | (is_dot & after_dot)
        n_digits += is_digit
        whole = is_digit & ~after_dot
        overflow |= whole & (mantissa >= _POW10[_MAX_DIGITS - 1])
        mantissa = np.where(whole, mantissa * 10 + digit, mantissa)
        frac = is_digit & after_dot
        pending += frac & (digit == 0)
        sig = frac & (digit != 0)
        if sig.any():
            grow = pending + 1
            limit = _POW10[np.clip(_MAX_DIGITS - grow, 0, _MAX_DIGITS)]
            overflow |= sig & ((mantissa >= limit) | ((grow > _MAX_DIGITS) & (mantissa > 0)))
            factor = _POW10[np.clip(grow, 0, _MAX_DIGITS)]
            mantissa = np.where(sig, mantissa * factor + digit, mantissa)
            places = np.where(sig, places + grow, places)
            pending = np.where(sig, 0, pending)
        after_dot |= is_dot
    bad |= n_digits == 0
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueFormatError(
            f"not a non-negative decimal number: {arr[i].decode(errors='replace')!r}", offset + i
        )
    if overflow.any():
        i = int(np.argmax(overflow))
        raise ValueFormatError(
            f"number has more than {_MAX_DIGITS} significant digits: {arr[i].decode()!r}", offset + i
        )
    return mantissa, places


def parse_decimals(values: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(mantissa, places)`` int64 arrays with ``value == mantissa * 10**-places``.

    Trailing zeros are not significant ("61800.20" -> 618002, 1). Raises :class:`ValueFormatError`
    (a :class:`DataError` carrying the index) for anything but a plain non-negative decimal.
    """
    arr = _expand_exponents(_as_bytes(values))
    if len(arr) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    parts = [_parse_chunk(arr[s : s + _CHUNK], s) for s in range(0, len(arr), _CHUNK)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _finest(places: np.ndarray) -> float:
    return float(f"1e-{int(places.max()) if len(places) else 0}")


def infer_increment(values: Sequence[str] | np.ndarray) -> float:
    """The finest significant decimal among ``values`` (never coarser than 1), e.g. 0.1 or 0.001.

    This is the tick (or lot) as far as the data shows it: a true tick of 0.5 is seen as 0.1, which
    still puts every price exactly on the integer grid.
    """
    return _finest(parse_decimals(values)[1])


def _increment_digits(step: float, what: str) -> tuple[int, int]:
    """``step`` as ``(mantissa, places)`` read from its shortest repr, so 0.1 means exactly 1/10."""
    if not np.isfinite(step) or step <= 0:
        raise ConfigError(f"{what} increment must be a positive number, got {step!r}")
    _, digits, exponent = Decimal(repr(float(step))).normalize().as_tuple()
    mantissa = int("".join(map(str, digits)))
    if exponent >= 0:
        return mantissa * 10 ** int(exponent), 0
    return mantissa, -int(exponent)


def to_units(values: Sequence[str] | np.ndarray, step: float, *, what: str = "price") -> np.ndarray:
    """Decimal strings as int64 multiples of ``step`` ("61800.20" at 0.1 -> 618002).

    A value that is not an exact multiple raises :class:`ValueFormatError` naming the value, since
    rounding it would invent a price the venue never quoted.
    """
    return units_and_step(values, step, what=what)[0]


def units_and_step(
    values: Sequence[str] | np.ndarray, step: float | None = None, *, what: str = "price"
) -> tuple[np.ndarray, float]:
    """:func:`to_units` with ``step`` inferred (:func:`infer_increment`) when None, parsing once."""
    mantissa, places = parse_decimals(values)
    if step is None:
        step = _finest(places)
    step_m, step_p = _increment_digits(step, what)
    if len(mantissa) == 0:
        return mantissa, step
    scale = max(int(places.max()), step_p)
    shift = scale - places
    if scale - step_p > _MAX_DIGITS or (shift > _MAX_DIGITS).any():
        raise ConfigError(
            f"{what} increment {step!r} and the data's decimals need more than {_MAX_DIGITS} digits"
        )
    too_big = mantissa >= _POW10[_MAX_DIGITS - shift]
    if too_big.any():
        i = int(np.argmax(too_big))
        raise ValueFormatError(
            f"{what} {_text(values, i)!r} has too many digits at {what} increment {step}", i
        )
    units, rest = np.divmod(mantissa * _POW10[shift], step_m * 10 ** (scale - step_p))
    if rest.any():
        i = int(np.argmax(rest != 0))
        raise ValueFormatError(f"{what} {_text(values, i)!r} is off the {what} grid of {step}", i)
    return units, step


def _text(values: Sequence[Any] | np.ndarray, i: int) -> str:
    value = values[i]
    return value.decode() if isinstance(value, bytes) else str(value)


def _unit_of(value: int) -> str | None:
    return next((unit for unit, (lo, hi) in _BOUNDS.items() if lo <= value < hi), None)


def _no_unit(what: str, value: int) -> str:
    return f"{what} {value} is no epoch time in s, ms, us or ns (of a date in 2000-2100)"


def _mixed(what: str, value: int, first: int, first_unit: str) -> str:
    return f"{what} {value} is not in {first_unit} like the first one ({first}): the file mixes time units"


def epoch_unit(values: np.ndarray, what: str) -> str:
    """The one unit in which every value is an epoch time of 2000-2100 ("ns" when there is none).

    Raises :class:`ValueFormatError` at the first value that fits no unit or not the first value's.
    """
    values = np.asarray(values, np.int64)
    if len(values) == 0:
        return "ns"
    codes = np.full(len(values), -1)
    for code, (lo, hi) in enumerate(_BOUNDS.values()):
        codes[(values >= lo) & (values < hi)] = code
    if (codes < 0).any():
        i = int(np.argmax(codes < 0))
        raise ValueFormatError(_no_unit(what, int(values[i])), i)
    unit = list(_BOUNDS)[codes[0]]
    if (codes != codes[0]).any():
        i = int(np.argmax(codes != codes[0]))
        raise ValueFormatError(_mixed(what, int(values[i]), int(values[0]), unit), i)
    return unit


def to_epoch_ns(values: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """``values`` in nanoseconds and the unit they were in (see :func:`epoch_unit`)."""
    unit = epoch_unit(values, what)
    return np.asarray(values, np.int64) * NS_PER[unit], unit


class EpochClock:
    """One file's epoch times to nanoseconds one by one, for line readers: the first value fixes the
    unit and every later one must be in it (:class:`DataError` without the place, which the caller adds)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.unit: str | None = None
        self.first = 0
        self.lo = self.hi = self.scale = 0  # the unit's range: one comparison per value once it is known

    def ns(self, value: int) -> int:
        if not self.lo <= value < self.hi:
            self._fix_unit(value)
        return value * self.scale

    def _fix_unit(self, value: int) -> None:
        unit = _unit_of(value)
        if unit is None:
            raise DataError(_no_unit(self.what, value))
        if self.unit is not None:
            raise DataError(_mixed(self.what, value, self.first, self.unit))
        self.unit, self.first, self.scale = unit, value, NS_PER[unit]
        self.lo, self.hi = _BOUNDS[unit]


def _span(ns: int) -> str:
    for name, size in (("years", 365.25 * 86_400e9), ("days", 86_400e9), ("hours", 3_600e9)):
        if ns >= size:
            return f"{ns / size:.1f} {name}"
    return f"{ns / 1e9:.1f} s"


def check_clock_offset(offset_ns: int, source: str) -> None:
    """Refuse local times more than an hour from the exchange times (``offset_ns`` = smallest
    ``local - exch``): shifting them would hide times read in the wrong unit or time zone."""
    if abs(offset_ns) > MAX_CLOCK_OFFSET_NS:
        where = "behind" if offset_ns < 0 else "ahead of"
        raise DataError(
            f"{source}: local receive times are {_span(abs(offset_ns))} {where} the exchange times "
            "(more than the one hour a capture clock can be off); are they in another unit or time zone?"
        )


def normalize_clocks(events: np.ndarray, report: dict[str, Any], source: str) -> None:
    """Make ``exch_ts`` non-decreasing and put ``local_ts`` on or after it, in place.

    Exchange times of different streams interleave slightly out of order, so a running maximum is
    taken (``exch_ts_raised`` counts the raised events). When the capture clock runs behind the
    exchange clock, local times would precede the events they record; all of them are shifted by one
    constant so that ``min(local_ts - exch_ts) == 0`` (``local_clock_shift_ns``), which keeps every
    measured latency difference while making latencies non-negative. Clocks more than an hour apart
    are refused (:func:`check_clock_offset`), never shifted.
    """
    if len(events) == 0:
        report["exch_ts_raised"] = 0
        report["local_clock_shift_ns"] = 0
        return
    exch = events["exch_ts"]
    running = np.maximum.accumulate(exch)
    report["exch_ts_raised"] = int(np.count_nonzero(exch < running))
    events["exch_ts"] = running
    lag = int((events["local_ts"] - running).min())
    check_clock_offset(lag, source)
    shift = -lag if lag < 0 else 0
    events["local_ts"] += shift
    report["local_clock_shift_ns"] = shift
