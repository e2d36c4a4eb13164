"""Decimal strings to ticks and lots, exactly; epoch time units; clock normalization."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from quotewise.data.units import (
    EpochClock,
    ValueFormatError,
    epoch_unit,
    infer_increment,
    normalize_clocks,
    parse_decimals,
    to_epoch_ns,
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
    normalize_clocks(ev, report, "x.gz")
    assert ev["exch_ts"].tolist() == [100, 120, 120, 130, 130]
    assert report == {"exch_ts_raised": 2, "local_clock_shift_ns": 25}
    assert (ev["local_ts"] - ev["exch_ts"]).min() == 0
    assert ev["local_ts"].tolist() == [115, 120, 125, 153, 156]
    empty_report: dict = {}
    normalize_clocks(np.zeros(0, EVENT_DTYPE), empty_report, "x.gz")
    assert empty_report == {"exch_ts_raised": 0, "local_clock_shift_ns": 0}


NS_2024 = 1_723_161_253_937_085_768  # 2024-08-08 23:54:13.937085768 UTC


@pytest.mark.parametrize(("unit", "scale"), [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)])
def test_epoch_units_are_read_from_the_magnitude(unit: str, scale: int) -> None:
    values = np.array([NS_2024 // scale, NS_2024 // scale + 5])
    assert epoch_unit(values, "t") == unit
    ns, found = to_epoch_ns(values, "t")
    assert found == unit and ns.tolist() == [v * scale for v in values.tolist()]
    clock = EpochClock("t")
    assert [clock.ns(int(v)) for v in values] == ns.tolist() and clock.unit == unit


def test_epoch_values_that_fit_no_unit_or_mix_units_are_named() -> None:
    with pytest.raises(ValueFormatError, match=r"^local 123456 is no epoch time in s, ms, us or ns") as info:
        epoch_unit(np.array([NS_2024, 123_456]), "local")
    assert info.value.index == 1
    with pytest.raises(ValueFormatError, match=r"local 1723161253937085 is not in ns like the first") as info:
        epoch_unit(np.array([NS_2024, NS_2024, NS_2024 // 1000]), "local")
    assert info.value.index == 2
    clock = EpochClock("exchange time")
    clock.ns(1_723_161_255_208)
    with pytest.raises(DataError, match=r"exchange time 1723161255208000 is not in ms .* mixes time units"):
        clock.ns(1_723_161_255_208_000)
    with pytest.raises(DataError, match="no epoch time"):
        EpochClock("t").ns(4_102_444_800_000)  # 2100 in ms: out of range in every unit
    assert epoch_unit(np.zeros(0, np.int64), "t") == "ns"


def test_clocks_more_than_an_hour_apart_are_refused_not_shifted() -> None:
    hour = 3_600 * 10**9
    for offset, words in ((-53 * 365 * 24 * hour, "53.0 years behind"), (2 * hour, "2.0 hours ahead of")):
        ev = np.zeros(2, EVENT_DTYPE)
        ev["exch_ts"] = [NS_2024, NS_2024 + 10]
        ev["local_ts"] = ev["exch_ts"] + offset
        with pytest.raises(DataError, match=f"^x.gz: local receive times are {words} the exchange times"):
            normalize_clocks(ev, {}, "x.gz")
    ev["local_ts"] = ev["exch_ts"] - hour + 1  # just under an hour behind: shifted as before
    report: dict = {}
    normalize_clocks(ev, report, "x.gz")
    assert report["local_clock_shift_ns"] == hour - 1
