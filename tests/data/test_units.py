"""Decimal strings to ticks and lots, exactly; clock normalization."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from quotewise.data.units import (
    ValueFormatError,
    infer_increment,
    normalize_clocks,
    parse_decimals,
    to_units,
    units_and_step,
)
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import EVENT_DTYPE


def test_parse_keeps_only_significant_decimals() -> None:
    mantissa, places = parse_decimals(
        ["61800.20", "0.014", "5", "100.", "0.00000000", "61837.63000000", ".5"]
    )
    assert mantissa.tolist() == [618002, 14, 5, 100, 0, 6183763, 5]
    assert places.tolist() == [1, 3, 0, 0, 0, 2, 1]


def test_exponent_notation_is_exact() -> None:
    assert parse_decimals(["1e-7", "2.5E+3"])[0].tolist() == [1, 2500]
    assert parse_decimals(["1e-7", "2.5E+3"])[1].tolist() == [7, 0]


def test_infer_increment() -> None:
    assert infer_increment(["61800.20", "61799.90"]) == 0.1
    assert infer_increment(["0.014", "1.000"]) == 0.001
    assert infer_increment(["1001", "9000"]) == 1.0
    assert infer_increment(np.array([b"0.00000100"])) == 1e-6


def test_to_units_matches_decimal_arithmetic() -> None:
    rng = np.random.default_rng(7)
    ticks = rng.integers(0, 10**9, 5000)
    for step in (0.1, 0.5, 0.25, 0.01, 1e-8, 5.0):
        text = [format(Decimal(int(t)) * Decimal(repr(step)), "f") for t in ticks]
        assert to_units(text, step).tolist() == ticks.tolist()


def test_off_grid_and_malformed_values_are_named() -> None:
    with pytest.raises(ValueFormatError, match=r"price '61800.25' is off the price grid of 0.1") as info:
        to_units(["61800.20", "61800.25"], 0.1)
    assert info.value.index == 1
    for bad in ("61800.2x", "1.2.3", "", ".", "-1", " 1"):
        with pytest.raises(DataError, match="not a non-negative decimal number"):
            to_units(["1.0", bad], 0.1)
    with pytest.raises(DataError, match="more than 18 significant digits"):
        parse_decimals(["1234567890123456789"])
    with pytest.raises(DataError, match="too many digits"):
        to_units(["123456789012345.6"], 1e-8)
    with pytest.raises(ConfigError):
        to_units(["1"], 0.0)
    with pytest.raises(DataError, match="non-ASCII"):
        to_units(["1.5€"], 0.1)


def test_units_and_step_parses_once() -> None:
    units, step = units_and_step(["0.014", "0.2"])
    assert step == 0.001 and units.tolist() == [14, 200]
    assert units_and_step([], 0.5)[0].tolist() == []


def test_normalize_clocks() -> None:
    ev = np.zeros(5, EVENT_DTYPE)
    ev["exch_ts"] = [100, 120, 110, 130, 125]
    ev["local_ts"] = [90, 95, 100, 128, 131]
    report: dict = {}
    normalize_clocks(ev, report)
    assert ev["exch_ts"].tolist() == [100, 120, 120, 130, 130]
    assert report == {"exch_ts_raised": 2, "local_clock_shift_ns": 25}
    assert (ev["local_ts"] - ev["exch_ts"]).min() == 0
    assert ev["local_ts"].tolist() == [115, 120, 125, 153, 156]
    empty_report: dict = {}
    normalize_clocks(np.zeros(0, EVENT_DTYPE), empty_report)
    assert empty_report == {"exch_ts_raised": 0, "local_clock_shift_ns": 0}
